"""Stage `evaluate`: base, SFT and RL models side by side on the held-out test split, in the simulator.

Reads: `paths.splits/test.jsonl`, the model folders named in `evaluate.models`, params `evaluate`.
With `evaluate.compare_champion`, also the version holding the `champion` alias of `register.model_name` in the
MLflow registry (`tracking`), downloaded to a temporary folder, as a fourth column `champion`; none yet: a note.
Writes: `paths.reports/evaluate.md` (tables), `paths.reports/evaluate.html` (the same tables and the plots inlined,
one self-contained file), `paths.reports/evaluate/` (accuracy.csv for `dvc plots`, accuracy.png, errors.png,
training_curves.png from the training stages' CSVs in `paths.reports`, <model>_rollouts.jsonl; with
`evaluate.samples` > 1 also pass_k.png and <model>_samples.jsonl); metrics `<model>.<metric>` (metrics/evaluate.json).
Run: `python -m components.evaluate`.

Metrics per model: `single_exact` (first call right: tool and every argument), `single_tool` (right tool),
`irrelevance_no_call`, `unparsable` (share of episodes), `failed_calls` (tool calls the simulator answered with an
error: a rejected or unknown argument, or a tool that broke on a model-made value, `Rollout.failed_calls`) and
`any_failed_call` (share of episodes with at least one), and per pattern `<pattern>_exact` (every step right
and then a final answer) and `<pattern>_completion` (goal state reached, a final answer given, and the answers state
the facts of the tool results the task asks for: `expected.outputs`, as tau-bench checks them); all greedy.
Every rate also has its 95 % Wilson score interval `<rate>_low` / `<rate>_high` and its denominator (`n`,
`<pattern>_n`, `single_first_n`). Models are also compared on the same episodes (sft vs base, rl vs sft, the register
candidate vs the champion: `pairs`) by an exact McNemar test on `exact`, overall and per pattern, at level
`evaluate.alpha`: metrics `paired.<a>_vs_<b>.<metric>_p` and `..._delta` (rate of a - rate of b), a table in the
report (components/evaluation/stats.py).
With `evaluate.samples` = k > 1, each episode is also rolled out k times by sampling (seeded by `project.seed`) for
`pass_at_<j>` / `pass_hat_<j>` (pass@j / pass^j, j = 1..k, see components/evaluation/passk.py), overall and per pattern. That is
a separate pass: the greedy metrics, which `register` gates on, stay as they are with k = 1.
A domain without a simulator (a bring-your-own tool catalog) is scored on single-step episodes instead
(components/evaluation/single_step.py): the same metric names over steps, no `_completion`, no samples, and a note in the report.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from components import domains, toolcalls, tracking
from components.training import models
from components.evaluation import passk, rollout, single_step, stats
from components.config import Params
from components.data.episode import Episode, read_episodes
from components.data.fileio import write_jsonl
from components.result import StageResult

MODEL_PATHS = {"base": "base", "sft": "sft_model", "rl": "rl_model"}


def score(ro: rollout.Rollout, ep: Episode) -> dict[str, Any]:
    """One episode's verdict, with the shared scorer."""
    gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
    answered = ro.final is not None and not ro.unparsable
    verdict = toolcalls.score_episode(ro.steps, gold, toolcalls.tool_index(ep.tool_dicts()), ro.unparsable,
                                      hit_step_limit=ro.final is None and not ro.unparsable,
                                      final_state_ok=ro.goal_reached if ep.expected.goal else None)
    no_call_ok = bool(gold) or not ro.steps
    answers = [m["content"] for m in ro.messages if m["role"] == "assistant" and not m.get("tool_calls")]
    stated = toolcalls.states_outputs([a for a in answers if a], ep.expected.outputs)
    return {"id": ep.id, "pattern": ep.pattern, "exact": verdict.exact, "first_exact": verdict.first_step_exact,
            "tool_ok": verdict.first_step_names_ok, "unparsable": ro.unparsable, "errors": verdict.errors,
            "completion": ro.goal_reached and answered and no_call_ok and stated, "stated": stated, "turns": ro.turns,
            "failed_calls": ro.failed_calls}


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Headline metrics of one model from its per-episode verdicts; each rate with its 95 % Wilson interval
    (`<rate>_low`, `<rate>_high`) and its denominator (`n`, `<pattern>_n`, `single_first_n`)."""
    by = defaultdict(list)
    for r in rows:
        by[r["pattern"]].append(r)
    out: dict[str, float] = {"n": float(len(rows))}
    _rate(out, "unparsable", [r["unparsable"] for r in rows])
    _rate(out, "exact", [r["exact"] for r in rows])
    for pattern, items in sorted(by.items()):
        _rate(out, f"{pattern}_exact", [r["exact"] for r in items])
        if items[0]["completion"] is not None:  # None: not measured (no simulator)
            _rate(out, f"{pattern}_completion", [r["completion"] for r in items])
        out[f"{pattern}_n"] = float(len(items))
    if by.get("single"):
        firsts = [r for r in by["single"] if r["first_exact"] is not None]
        _rate(out, "single_exact", [r["first_exact"] for r in firsts])
        _rate(out, "single_tool", [r["tool_ok"] for r in firsts])
        out["single_first_n"] = float(len(firsts))
    if by.get("irrelevance"):
        _rate(out, "irrelevance_no_call", [r["exact"] for r in by["irrelevance"]])
    failed = [r["failed_calls"] for r in rows if "failed_calls" in r]  # none: no calls were executed (single steps)
    if failed:
        out["failed_calls"] = float(sum(failed))
        _rate(out, "any_failed_call", [n > 0 for n in failed])
    for cls, n in Counter(e for r in rows for e in r["errors"]).items():
        out[f"errors.{cls}"] = float(n)
    return out


def _rate(out: dict[str, float], key: str, flags: list[Any]) -> None:
    """Set `key` to the share of true `flags` and `key_low` / `key_high` to its 95 % Wilson interval."""
    hits = sum(map(bool, flags))
    out[key] = round(hits / len(flags), 4) if flags else 0.0
    out[f"{key}_low"], out[f"{key}_high"] = (round(x, 4) for x in stats.wilson(hits, len(flags)))


Scored = tuple[dict[str, float], list[dict[str, Any]]]  # a model's metrics and its per-episode verdict rows


def evaluate_model(name: str, params: Params, episodes: list[Episode], out_dir: Path,
                   folder: Path | None = None) -> Scored:
    """Roll out and score one model (from `folder`, default its `paths` entry); writes <name>_rollouts.jsonl.

    Returns its metrics and its verdict rows (for the paired tests against the other models)."""
    cfg = params.evaluate
    model, tok = models.load(folder or params.path(MODEL_PATHS[name]))
    domain = domains.of(params)
    start = time.time()
    if domain.simulated:
        rollouts = rollout.run_episodes(model, tok, episodes, domain, params.base.system_prompt, cfg.batch_size,
                                        cfg.max_new_tokens, cfg.max_turns, desc=f"evaluate {name}")
        rows = [score(ro, ep) | {"rollout": ro.__dict__} for ro, ep in zip(rollouts, episodes)]
    else:
        rows = single_step.evaluate(model, tok, episodes, params.base.system_prompt, cfg.batch_size,
                                    cfg.max_new_tokens, desc=f"evaluate {name} (single steps)")
    write_jsonl(out_dir / f"{name}_rollouts.jsonl", rows)
    metrics = summarize(rows) | {"seconds": round(time.time() - start, 1)}
    if cfg.samples > 1 and domain.simulated:
        metrics |= evaluate_samples(name, params, model, tok, episodes, out_dir)
    return metrics, rows


def evaluate_samples(name: str, params: Params, model: Any, tok: Any, episodes: list[Episode],
                     out_dir: Path) -> dict[str, float]:
    """Roll every episode out `evaluate.samples` times by sampling and score each rollout like the greedy one.

    Returns the pass@j / pass^j metrics and `sample_seconds`; writes <name>_samples.jsonl, one line per episode
    with its successes (`exact`) and its k verdicts (rollouts included).
    """
    cfg, k = params.evaluate, params.evaluate.samples
    start = time.time()
    # distinct ids (run_episodes keys by id); an episode's copies share its prompt, so they batch together
    copies = [ep.model_copy(update={"id": f"{ep.id}#{i}"}) for ep in episodes for i in range(k)]
    rollouts = rollout.run_episodes(model, tok, copies, domains.of(params), params.base.system_prompt,
                                    cfg.batch_size, cfg.max_new_tokens, cfg.max_turns, desc=f"sample {name}",
                                    sampling=rollout.Sampling(cfg.temperature, cfg.top_p, params.project.seed))
    groups = [[score(ro, ep) | {"rollout": ro.__dict__} for ro in rollouts[i * k:(i + 1) * k]]
              for i, ep in enumerate(episodes)]
    write_jsonl(out_dir / f"{name}_samples.jsonl",
                [{"id": ep.id, "pattern": ep.pattern, "successes": sum(v["exact"] for v in g), "samples": g}
                 for ep, g in zip(episodes, groups)])
    return passk.summarize(groups) | {"sample_seconds": round(time.time() - start, 1)}


def evaluate_champion(params: Params, episodes: list[Episode], out_dir: Path) -> tuple[Scored | None, str]:
    """The champion's metrics and verdict rows on the same episodes (None when the registry has none yet) and a
    report note."""
    name = params.register_.model_name
    with tempfile.TemporaryDirectory(prefix="tooltune-champion-") as tmp:
        found = tracking.download_champion(params, Path(tmp))
        if found is None:
            return None, f"No `champion` version of {name} in the MLflow registry yet: no champion column."
        version, folder = found
        return (evaluate_model("champion", params, episodes, out_dir, folder),
                f"Column `champion`: {name} v{version} from the MLflow registry (alias `champion`).")


def _sampling_note(params: Params) -> str:
    """The report's note on how the pass@j / pass^j tables were measured."""
    cfg = params.evaluate
    return (f"pass@j / pass^j: {cfg.samples} sampled rollouts per episode (temperature {cfg.temperature}, top_p "
            f"{cfg.top_p}, seed {params.project.seed}), in a pass of their own: every other number comes from the "
            "greedy rollout. Success = `exact` (every step right, then an answer); rows `all (task completed)`: "
            "goal state reached and answered. With c successes in n samples, pass@j = 1 - C(n-c, j)/C(n, j) (at "
            "least one of j samples succeeds; Chen et al. 2021) and pass^j = C(c, j)/C(n, j) (all j succeed; "
            "tau-bench), averaged over episodes.")


def _notes(params: Params, domain: domains.Domain) -> list[str]:
    """How the models were evaluated, for the report: single steps without a simulator, the sampling settings."""
    notes = [] if domain.simulated else [single_step.NOTE.format(domain=domain.name)]
    if params.evaluate.samples > 1:
        notes.append(_sampling_note(params) if domain.simulated
                     else "evaluate.samples > 1 is ignored: sampled multi-step rollouts need a simulator.")
    return notes


def pairs(models: list[str], evaluated: list[str]) -> list[tuple[str, str]]:
    """The comparisons that matter, (A, B) = "A against B": each model of `evaluate.models` against the one listed
    before it (sft vs base, rl vs sft), and the candidate `register` would register (rl when evaluated, else sft)
    against the registry's champion when that was evaluated."""
    out = list(zip(models[1:], models[:-1]))
    candidate = "rl" if "rl" in models else "sft"
    if "champion" in evaluated and candidate in evaluated:
        out.append((candidate, "champion"))
    return out


def run(params: Params) -> StageResult:
    from components.evaluation import report as eval_report

    episodes = read_episodes(params.path("splits") / "test.jsonl")
    reports = params.path("reports")
    out_dir = reports / "evaluate"
    out_dir.mkdir(parents=True, exist_ok=True)
    scored = {name: evaluate_model(name, params, episodes, out_dir) for name in params.evaluate.models}
    notes = _notes(params, domains.of(params))
    if params.evaluate.compare_champion:
        champion, note = evaluate_champion(params, episodes, out_dir)
        notes.append(note)
        if champion is not None:
            scored["champion"] = champion
    results = {m: metrics for m, (metrics, _) in scored.items()}
    comparisons = [c for a, b in pairs(params.evaluate.models, list(scored))
                   for c in stats.compare(a, b, scored[a][1], scored[b][1], params.evaluate.alpha)]
    files = eval_report.write(results, reports / "evaluate.md", out_dir, notes, comparisons)
    metrics = {f"{m}.{k}": v for m, res in results.items() for k, v in res.items()} | stats.metrics(comparisons)
    return StageResult(stage="evaluate", outputs={"report": str(reports / "evaluate.md"),
                                                  "html": str(reports / "evaluate.html"), "dir": str(out_dir)},
                       metrics=metrics, reports=[str(reports / "evaluate.md"), *files])


def main() -> None:
    from components.tracking import stage_main

    stage_main("evaluate")


if __name__ == "__main__":
    main()
