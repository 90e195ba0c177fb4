"""The `tooltune` command.

    tooltune run [--profile quick] [--params params.yaml] [--stages a,b,c] [-S key=value ...]   # the Prefect flow
    tooltune run --only-changed                      # only the stages DVC finds stale (the nightly deployment)
    tooltune stage NAME [--profile quick] [--params params.yaml] [-S key=value ...]           # one stage, no Prefect
    tooltune stages                                                        # the stage names
    tooltune score --tasks Q --predictions P [--answers A] --out report.json   # score saved predictions
    tooltune ingest --source openai --path P [--answers A] [--out F] [--domain D]   # one dataset -> episodes
    tooltune bfcl --model PATH|base|champion [--model ...] --data DIR [--categories simple,multiple] [--limit N]
    tooltune serve [--model champion|PATH] [--host 127.0.0.1] [--port 8000]   # OpenAI-compatible server
    tooltune chat [--model champion|PATH]                                    # terminal chat, calls simulated
    tooltune stack up|down|status [--dir .stack] [--mlflow-port N] ...       # MLflow + Prefect + S3 on 127.0.0.1

Exit codes: 0 done; 2 user error: bad input (params, data, a failed validation: a `ConfigError` or a
`DataError`, subclasses included) or a workdir another run holds (`WorkdirBusy`), printed as one line
`error: <message>`, no traceback; 1 a stack service that did not come up or stop (one `error:` line naming its
log) and anything else (a bug, a crash, a stage timeout), with its traceback.
`run` and `stage` hold the workdir's lock (components/tracking/workdir.py) while they run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from components import STAGES, tracking
from components.config import ConfigError, load_params
from components.data.episode import DataError
from components.data.importers import SOURCES
from components.ingest import write_source
from components.tracking.workdir import WorkdirBusy, hold

# The flow module imports Prefect, MLflow and the stage code (seconds); it is loaded only to run the flow.

PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
# Library INFO lines on every stage that tell the user nothing they can act on; their WARNINGs and errors still show.
# MLflow's system-metrics monitor: "Started/Stopping monitoring..." four times per stage run; the CPU/memory/GPU
# metrics themselves are still logged to each stage's MLflow run (components/tracking `_system_metrics`).
QUIET_LOGGERS = ("mlflow.system_metrics",)
# Great Expectations: "Created temporary directory ... for ephemeral docs site" per validate/build run. GX sets this
# logger to INFO when it is imported (in the stage), so a level set here would not hold; a filter does.
GX_DOCS_LOGGER, GX_DOCS_NOTE = "great_expectations.data_context.types.base", "for ephemeral docs site"
PREFECT_UI_DEFAULT = "http://127.0.0.1:4200"  # `prefect server start`'s address
USER_ERRORS = (ConfigError, DataError, WorkdirBusy)  # what the user must fix: one line, exit code 2
USER_ERROR_EXIT = 2
RUN_ENV = {
    # The ephemeral Prefect API takes longer than the default 20 s to start on small machines.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no telemetry calls from an offline machine
    "HF_HUB_OFFLINE": "1",
    "TRL_EXPERIMENTAL_SILENCE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tooltune", description="Fine-tune a small LM into a tool-calling agent.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument("--profile", default=None, help="preset under `profiles:` in the params file, e.g. quick")

    def set_param(p: argparse.ArgumentParser) -> None:
        p.add_argument("-S", "--set-param", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a params value for this run, as `dvc exp run -S` does (e.g. "
                            "sft.max_steps=120; the value is read as YAML); repeatable, applied after --profile")

    run = sub.add_parser("run", help="run the pipeline as a Prefect flow")
    common(run)
    set_param(run)
    run.add_argument("--stages", default=None, help="comma-separated subset, run in pipeline order")
    run.add_argument("--only-changed", action="store_true",
                     help="run only the stages whose data, code, params or outputs changed since dvc.lock, and "
                          "those downstream of them (DVC decides; needs the repo's own params.yaml, no --profile)")
    run.set_defaults(func=_run)
    stage = sub.add_parser("stage", help="run one stage without Prefect (what DVC's cmd runs)")
    stage.add_argument("name", choices=STAGES)
    common(stage)
    set_param(stage)
    stage.set_defaults(func=_stage)
    sub.add_parser("stages", help="list the stage names in pipeline order").set_defaults(func=_stages)
    ingest = sub.add_parser("ingest", help="write one source's episodes to an episodes file (atomic)")
    ingest.add_argument("--source", required=True, choices=("synthetic", *SOURCES))
    ingest.add_argument("--path", default=None, help="input file (every source but synthetic)")
    ingest.add_argument("--answers", default=None, help="bfcl only: the possible-answer file")
    ingest.add_argument("--out", default=None, help="episodes file (default: paths.raw of the params file)")
    ingest.add_argument("--domain", default=None,
                        help="domain tag (default: project.domain for synthetic, else the source name)")
    ingest.add_argument("--skip-invalid", action="store_true",
                        help="set bad records aside in <out>.rejected.jsonl (file, line, rule, detail) instead of "
                             "failing")
    common(ingest)
    ingest.set_defaults(func=_ingest)
    score = sub.add_parser("score", help="score saved predictions against tasks (episodes or BFCL) into a report")
    score.add_argument("--tasks", required=True, help="canonical episodes JSONL, or a BFCL question file")
    score.add_argument("--predictions", required=True, help='JSON lines {"id": ..., "result": ...}')
    score.add_argument("--answers", default=None, help="BFCL possible-answer file for --tasks")
    score.add_argument("--out", required=True, help="report JSON to write")
    score.set_defaults(func=_score)
    bfcl = sub.add_parser("bfcl", help="run a model on BFCL's single-turn categories: results, scores, a table")
    bfcl.add_argument("--model", required=True, action="append",
                      help="a model folder, `base` (paths.base) or `champion` (registry); repeat it to compare models "
                           "on the same questions (McNemar per category against the first)")
    bfcl.add_argument("--data", default=None, help="BFCL data folder (default: bfcl.data of the params file)")
    bfcl.add_argument("--categories", default=None, help="comma-separated categories or groups (simple, non_live, "
                                                          "live); default: every one with a file in --data")
    bfcl.add_argument("--out", default=None, help="output folder (default: <paths.reports>/bfcl/<model>, or "
                                                   "<model>_vs_<model> for a comparison)")
    bfcl.add_argument("--limit", type=_positive, default=None, help="first N entries per category (default: "
                                                                    "bfcl.limit)")
    common(bfcl)
    bfcl.set_defaults(func=_bfcl)
    serve = sub.add_parser("serve", help="serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    chat = sub.add_parser("chat", help="chat with the model in the terminal; its tool calls run in the simulator")
    for p in (serve, chat):
        p.add_argument("--model", default="champion", help="`champion` (from the registry) or a model folder")
        common(p)
    serve.set_defaults(func=_serve)
    chat.set_defaults(func=_chat)
    stack = sub.add_parser("stack", help="MLflow, Prefect and S3 servers on 127.0.0.1 for the pipeline (up, down, "
                                          "status)")
    stack.add_argument("action", choices=("up", "down", "status"))
    stack.add_argument("--dir", default=".stack", help="data, logs, stack.json and stack.env (default: .stack)")
    for name in ("mlflow", "prefect", "s3"):
        stack.add_argument(f"--{name}-port", type=int, default=None,
                           help=f"{name} port (default: its usual port when free, else any free one)")
    stack.set_defaults(func=_stack)
    return parser


def _stages(args: argparse.Namespace) -> int:
    print("\n".join(STAGES))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    """One source's episodes to `--out`, written atomically: on bad input the old file stays as it was."""
    params = load_params(args.params, args.profile)
    out = args.out or params.path("raw")
    n, patterns, rejects = write_source(params, out, args.source, args.path, args.domain,
                                        {"answers": args.answers, "skip_invalid": args.skip_invalid})
    counts = ", ".join(f"{p}={c}" for p, c in sorted(patterns.items()))
    print(f"ingest: {n} episodes from {args.source} -> {out}  {counts}")
    if rejects is not None:
        print(f"ingest: {rejects.count} record(s) rejected -> {rejects.path}  "
              + ", ".join(f"{r}={c}" for r, c in sorted(rejects.by_rule.items())))
    return 0


def _score(args: argparse.Namespace) -> int:
    from components.toolcalls import score

    report = score.run(args.tasks, args.predictions, args.out, args.answers)
    print(score.markdown(report))
    print(f"\nReport: {args.out}")
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, not {text!r}")
    return int(text)


def _bfcl(args: argparse.Namespace) -> int:
    import time

    from components.evaluation import bfcl, bfcl_compare

    params = load_params(args.params, args.profile)
    categories = [c.strip() for c in args.categories.split(",") if c.strip()] if args.categories else None
    start = time.time()
    if len(args.model) > 1:
        rows, summaries, out = bfcl_compare.run(params, args.model, args.data, categories, args.out, args.limit)
        print(bfcl_compare.markdown(rows, summaries, params.evaluate.alpha))
    else:
        scores, summary, out = bfcl.run(params, args.model[0], args.data, categories, args.out, args.limit)
        print(bfcl.markdown(scores, summary))
    print(f"\nResults and tables: {out}  ({time.time() - start:.0f} s)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from components.serving import server

    server.serve(load_params(args.params, args.profile), args.model, args.host, args.port)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from components.serving import terminal

    terminal.main(load_params(args.params, args.profile), args.model, sys.stdin, sys.stdout)
    return 0


def _stack(args: argparse.Namespace) -> int:
    from flows import stack

    try:
        if args.action == "up":
            ports = {name: getattr(args, f"{name}_port") for name in stack.SERVICES}
            state, started = stack.up(args.dir, ports)
            print(f"stack: started {', '.join(started)}" if started else f"stack: already up in {args.dir}")
            print(stack.table(stack.status(args.dir)))
            print(f"\n# point the pipeline at it: source {os.path.join(args.dir, stack.ENV_FILE)}")
            print("\n".join(stack.env_lines(state)))
        elif args.action == "down":
            stopped = stack.down(args.dir)
            print(f"stack: stopped {', '.join(stopped)}; data kept in {args.dir}" if stopped
                  else f"stack: nothing running in {args.dir}")
        else:
            print(stack.table(stack.status(args.dir)))
    except stack.StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _stage(args: argparse.Namespace) -> int:
    params = load_params(args.params, args.profile, args.overrides)
    result = tracking.execute_stage(args.name, params, os.environ.get(tracking.PARENT_ENV) or None)
    print(f"{result.stage}: ok  {_metrics_text(result.metrics)}")
    for name, path in result.outputs.items():
        print(f"  {name}: {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    unknown = [s for s in stages or [] if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; known: {list(STAGES)}")
    params = load_params(args.params, args.profile, args.overrides)  # fail fast, before the Prefect API starts
    with hold(params.project.workdir, "tooltune run"):  # a busy workdir too; the flow takes it again (re-entrant)
        from flows.pipeline import pipeline

        for name in PREFECT_RUN_LOGGERS:
            logging.getLogger(name).addFilter(_drop_bad_input_traceback)
        for name in QUIET_LOGGERS:  # the stage tasks run in this process, so their loggers are these
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger(GX_DOCS_LOGGER).addFilter(_drop_gx_docs_note)
        results = pipeline(params_path=args.params, profile=args.profile, stages=stages, overrides=args.overrides,
                           only_changed=args.only_changed)
    from prefect.settings import get_current_settings

    if args.only_changed and not results:
        from flows.nightly import UP_TO_DATE

        print(f"tooltune: {UP_TO_DATE} (dvc status: no stage's data, code, params or outputs changed)")
        return 0
    print(summary_table(results))
    print("\n" + run_summary(results, os.environ.get("MLFLOW_TRACKING_URI") or tracking.tracking_uri(params),
                             get_current_settings().api.url))
    return 0


def summary_table(results: dict[str, dict]) -> str:
    """One line per stage: name, wall seconds, headline metrics."""
    rows = [("stage", "seconds", "metrics")]
    for stage, result in results.items():
        seconds = result.get("details", {}).get("seconds", result.get("metrics", {}).get("seconds"))
        rows.append((stage, "" if seconds is None else f"{seconds:.1f}", _metrics_text(result.get("metrics", {}))))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:>{width[1]}}  {r[2]}".rstrip() for r in rows)


def run_summary(results: dict[str, dict], tracking_uri: str, prefect_api_url: str | None) -> str:
    """What to look at after `tooltune run`: the registry's decision, the evaluation reports, the MLflow and
    Prefect UIs.

    Args:
        results: The flow's `{stage: StageResult dict}`; register and evaluate lines only when they ran.
        tracking_uri: The MLflow store the run logged to.
        prefect_api_url: `PREFECT_API_URL` (a running Prefect server), or None: the run used a temporary server.
    """
    lines = []
    registered = results.get("register", {}).get("details", {})
    if registered:
        decision = "promoted to" if registered["alias"] == "champion" else "not promoted, alias"
        lines.append(f"Registry: {registered['model_name']} v{registered['version']} {decision} "
                     f"`{registered['alias']}`: {registered['reason']}.")
    evaluated = results.get("evaluate", {}).get("outputs", {})
    lines += [f"{label}: {evaluated[key]}" for key, label in (("html", "Evaluation report"), ("report", "  markdown"))
              if key in evaluated]
    if tracking_uri.startswith(("http://", "https://")):
        lines.append(f"MLflow UI: {tracking_uri}")
    else:
        lines.append(f"MLflow UI: mlflow ui --backend-store-uri {shlex.quote(tracking_uri)} --host 127.0.0.1"
                     "   (then open http://127.0.0.1:5000)")
    if prefect_api_url:
        lines.append(f"Prefect UI: {prefect_api_url.rstrip('/').removesuffix('/api')}")
    else:  # the temporary server wrote to Prefect's database, which `prefect server start` serves
        lines += [f"Prefect UI: prefect server start   (then open {PREFECT_UI_DEFAULT}; this run is there)",
                  f"  to follow runs live, keep it running and run with PREFECT_API_URL={PREFECT_UI_DEFAULT}/api"]
    return "\n".join(lines)


def _metrics_text(metrics: dict[str, float], limit: int = 5) -> str:
    shown = [f"{k}={v:g}" for k, v in metrics.items() if k != "seconds"]
    return ", ".join(shown[:limit]) + (f", … (+{len(shown) - limit})" if len(shown) > limit else "")


def _drop_gx_docs_note(record: logging.LogRecord) -> bool:
    """Log filter: drop GX's note on the temporary folder of its default docs site (the validation docs the project
    builds go to `paths.reports`/validation_docs/, named in the validate report)."""
    return GX_DOCS_NOTE not in record.getMessage()


def _drop_bad_input_traceback(record: logging.LogRecord) -> bool:
    """Log filter: Prefect logs a failed flow with its traceback; for bad input the message is enough."""
    if record.exc_info and record.exc_info[1] is not None and user_error(record.exc_info[1]) is not None:
        record.exc_info = record.exc_text = None
    return True


def user_error(exc: BaseException) -> BaseException | None:
    """The user error (`USER_ERRORS`, subclasses included) behind `exc`: itself, or a cause it was wrapped in."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, USER_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tooltune` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    for key, value in RUN_ENV.items():
        os.environ.setdefault(key, value)
    try:
        return args.func(args)
    except Exception as exc:
        bad_input = user_error(exc)
        if bad_input is None:
            raise
        print(f"error: {bad_input}", file=sys.stderr)
        return USER_ERROR_EXIT


if __name__ == "__main__":
    sys.exit(main())
