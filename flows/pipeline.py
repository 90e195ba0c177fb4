"""Prefect flow that chains the tooltune stages: ingest ─► validate ─► build ─► sft ─► … ─► register.

Orchestration only: every stage's work is `components.tracking.execute_stage` (the same code DVC's
`cmd` runs), wrapped in a task with a timeout (`orchestration.stage_timeout_minutes`) and one retry
for transient I/O and network errors only (`is_retryable`), one MLflow parent run per flow run, and a
markdown + a table artifact per stage on the Prefect UI. The flow holds the workdir's lock
(components/tracking/workdir.py) from start to end, so no other run or stage can write there meanwhile.

GPU stages (`GPU_STAGES`) run in-process by default. Set `TOOLTUNE_GPU_DEPLOYMENT` to a deployment
of `stage_flow` (e.g. `tooltune-stage/tooltune-stage-gpu` from `prefect.yaml`) and they are sent to
that deployment's work pool instead (`TOOLTUNE_GPU_STAGES=sft,rl`: only those). Their data travels through the
DVC remote, no shared disk: as dvc.lock entries for the run dvc.yaml describes, as transient .dvc pointers for a
run with a profile or `-S` values in a workdir of its own (`--profile gpu`: runs/gpu); a run where neither works is
refused before any stage (see `stage_flow` and flows/remote.py). The wait for such a stage is bounded too: its
timeout plus `orchestration.remote_start_minutes`.

The nightly deployment runs it with `only_changed` (flows/nightly.py: DVC decides which stages are stale) and
posts failures and registry decisions to a webhook (flows/notify.py).

Run: `tooltune run [--profile quick] [--only-changed]`, or `python -m flows.pipeline`.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import requests
import urllib3.exceptions
from botocore.exceptions import ConnectionError as BotoConnectionError
from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.deployments import run_deployment
from prefect.states import Cancelled, Cancelling, State
from prefect.task_engine import TaskRunTimeoutError

from components import STAGES, tracking
from components.config import ConfigError, Params, load_params
from components.data.episode import DataError
from components.tracking.workdir import WorkdirBusy, hold
from flows import nightly, notify, persist, pointers, remote
from flows.remote import dvc_applies

GPU_STAGES = frozenset({"sft", "reward_model", "rl", "evaluate"})
GPU_DEPLOYMENT_ENV = "TOOLTUNE_GPU_DEPLOYMENT"
GPU_STAGES_ENV = "TOOLTUNE_GPU_STAGES"  # e.g. `sft,rl`: only these go to the deployment (empty: all GPU_STAGES)
REPORT_STAGES = ("validate", "evaluate")  # their markdown reports go into the Prefect artifact
MAX_REPORT_CHARS = 60_000

# What a retry cannot fix, even when it is also an OSError: bad input, a busy workdir, a stage out of time.
NEVER_RETRIED = (ConfigError, DataError, WorkdirBusy, TaskRunTimeoutError)
# OSErrors that fail the same way on the same path every time.
PATH_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# Network errors that are not OSErrors (requests' are: its RequestException is an IOError, handled apart).
NETWORK_ERRORS = (urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError,
                  httpx.TransportError, BotoConnectionError)


class StageTimeout(RuntimeError):  # not a TimeoutError: that is an OSError, which `is_transient` would retry
    """A stage ran past its `orchestration.stage_timeout_minutes`, or its remote run did not end in time."""


def is_transient(err: BaseException) -> bool:
    """An I/O or network error that may pass on a second try; anything else fails the same way again.

    Allow-list: OSErrors (EIO, a reset or refused connection, a timeout, a stale NFS handle, ...) except the
    path errors and a full disk, requests' connection/timeout errors and its HTTP 429/5xx, and the network
    errors of urllib3, httpx and botocore. Not retried: `NEVER_RETRIED`, MemoryError (a CUDA OOM too),
    RecursionError, and every other error, which comes from the code or the data.
    """
    if isinstance(err, NEVER_RETRIED):
        return False
    if isinstance(err, requests.RequestException):
        if isinstance(err, requests.HTTPError):
            status = getattr(err.response, "status_code", None)
            return status is not None and (status == 429 or status >= 500)
        return isinstance(err, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))
    if isinstance(err, OSError):
        return not isinstance(err, PATH_ERRORS) and err.errno not in DISK_FULL
    return isinstance(err, NETWORK_ERRORS)


def is_retryable(task: Any, task_run: TaskRun, state: State) -> bool:
    """`retry_condition_fn`: retry only when the error, or the error it was raised from, is transient.

    The chain is the one a traceback shows (`__cause__`, else `__context__`), so a library error wrapping a
    connection error (MLflow's REST client raises MlflowException from requests' Timeout) is retried. Bad
    input anywhere in the chain is never retried.
    """
    err: BaseException | None = state.data if isinstance(state.data, BaseException) else None
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, NEVER_RETRIED):
            return False
        if is_transient(err):
            return True
        seen.add(id(err))
        err = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    return False


@task(task_run_name="{stage}", retries=1, retry_delay_seconds=5, retry_condition_fn=is_retryable,
      cache_policy=NO_CACHE)  # DVC, not Prefect, decides what is stale
def run_stage(stage: str, params_path: str, profile: str | None, parent_run_id: str | None,
              overrides: list[str] | None = None, tags: dict[str, str] | None = None) -> dict:
    """Run one stage in this process, inside a nested MLflow run; returns its `StageResult` as a dict.

    The stage loads the params itself, from the file, profile and `-S` overrides it is given (no global state),
    so a stage in a worker thread, another process or on another machine runs on the same values. `tags` go on
    its MLflow run (default: it ran here, `tooltune.ran_on=local`); the result's details repeat where it ran.
    """
    params = load_params(params_path, profile, overrides or ())
    tags = tags or remote.run_tags(remote.LOCAL)
    result = tracking.execute_stage(stage, params, parent_run_id, tags=tags).model_dump()
    result["details"].update(ran_on=tags[remote.RAN_ON_TAG], host=tags[remote.HOST_TAG])
    return result


def select_stages(stages: list[str] | None) -> list[str]:
    """The requested stages in pipeline order (all when None); unknown names are a `ConfigError`."""
    if stages is None:
        return list(STAGES)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; known: {list(STAGES)}")
    if not stages:
        raise ConfigError("no stages selected")
    return [s for s in STAGES if s in stages]


def gpu_deployment(stage: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The deployment that runs `stage` on the GPU pool, or None to run it in this process.

    Raises:
        ConfigError: `TOOLTUNE_GPU_STAGES` names a stage that is not a GPU stage.
    """
    env = os.environ if environ is None else environ
    name = env.get(GPU_DEPLOYMENT_ENV, "").strip()
    chosen = {s.strip() for s in env.get(GPU_STAGES_ENV, "").split(",") if s.strip()} or GPU_STAGES
    if not chosen <= GPU_STAGES:
        raise ConfigError(f"{GPU_STAGES_ENV}: {sorted(chosen - GPU_STAGES)} are not GPU stages; "
                          f"choose among {sorted(GPU_STAGES)}")
    return name if name and stage in chosen else None


def artifact_key(stage: str, suffix: str = "") -> str:
    """Prefect artifact key: lowercase letters, digits and dashes only."""
    return f"tooltune-{stage}{suffix}".lower().replace("_", "-")


def stage_markdown(result: dict, seconds: float) -> str:
    """Markdown for a stage's artifact: outputs, metrics and, for validate/evaluate, the reports."""
    stage = result["stage"]
    lines = [f"# tooltune · {stage}", "", f"Finished in {seconds:.1f} s.", ""]
    if result.get("outputs"):
        lines += ["| output | path |", "|---|---|"] + [f"| {k} | `{v}` |" for k, v in result["outputs"].items()]
        lines.append("")
    if result.get("metrics"):
        lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v:g} |" for k, v in result["metrics"].items()]
        lines.append("")
    if stage in REPORT_STAGES:
        for report in (r for r in result.get("reports", []) if r.endswith(".md")):
            path = Path(report)
            text = path.read_text(encoding="utf-8") if path.is_file() else "_(not found on this machine)_"
            if len(text) > MAX_REPORT_CHARS:
                text = text[:MAX_REPORT_CHARS] + "\n\n_(truncated)_"
            lines += ["---", f"Report `{report}`:", "", text, ""]
    return "\n".join(lines)


def publish_artifacts(result: dict, seconds: float) -> None:
    """A markdown artifact `tooltune-<stage>` and a metrics table `tooltune-<stage>-metrics`."""
    stage = result["stage"]
    create_markdown_artifact(stage_markdown(result, seconds), key=artifact_key(stage),
                             description=f"tooltune stage {stage}")
    rows = [{"metric": k, "value": v} for k, v in result.get("metrics", {}).items()]
    create_table_artifact(rows or {"metric": [], "value": []}, key=artifact_key(stage, "-metrics"),
                          description=f"tooltune stage {stage}: headline metrics")


def run_remote(deployment: str, parameters: dict[str, Any], timeout_s: float) -> dict:
    """Run `stage_flow` with these parameters on another work pool and wait for its result, at most `timeout_s`.

    Raises:
        StageTimeout: No result in time (no worker on the pool, a stuck run); the run is cancelled, so it
            cannot write outputs later behind the next run's back.
        RuntimeError: The run ended in another state than Completed.
    """
    stage = parameters["stage"]
    flow_run = run_deployment(deployment, parameters=parameters, timeout=timeout_s)
    state = flow_run.state
    if state is None or not state.is_final():
        _cancel(flow_run.id, state)
        raise StageTimeout(f"{stage} on deployment {deployment!r}: no result within {timeout_s / 60:g} min (the "
                           f"stage's timeout + orchestration.remote_start_minutes); flow run {flow_run.id} was "
                           f"{state.name if state else 'without a state'} and is cancelled. Is a worker polling "
                           "the deployment's pool?")
    if not state.is_completed():
        raise RuntimeError(f"{stage} on deployment {deployment!r} ended "
                           f"{state.name if state else 'without a state'}: {state.message if state else ''}")
    return state.result()  # stage_flow persists its result; see MissingResult in the notes


def _cancel(flow_run_id: Any, state: State | None) -> None:
    """Cancel a flow run: at once if it never started, else through its worker (`Cancelling`)."""
    started = state is not None and not (state.is_scheduled() or state.is_pending())
    new_state = Cancelling() if started else Cancelled()
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, new_state, force=True)


@flow(name="tooltune-stage", persist_result=True)
def stage_flow(stage: str, params_path: str = "params.yaml", profile: str | None = None,
               parent_run_id: str | None = None, overrides: list[str] | None = None,
               upstream_entries: dict[str, Any] | None = None,
               upstream_outs: list[dict[str, Any]] | None = None) -> dict:
    """One stage as its own flow, for a worker on another machine (the GPU pool).

    Data travels through the DVC remote (S3 in a real stack), not through Prefect nor a shared disk
    (flows/remote.py has both ways):
    1. the stage's inputs are pulled, the very versions the parent pushed: `upstream_entries` (its dvc.lock entries,
       merged into this checkout's dvc.lock; None: every upstream stage this checkout's dvc.lock records) for the
       run dvc.yaml describes, `upstream_outs` (a .dvc pointer's outs) for a run with a profile or `-S` values;
    2. the stage runs on the same params, profile and overrides (nested under `parent_run_id` when MLflow's
       tracking URI is a shared server), its run tagged with where it ran and what it pulled;
    3. its outputs are recorded and pushed, and what names them returns in the details (`dvc_lock` or `dvc_outs`),
       for the parent to pull; the pushed hashes are tagged on its run.
    Sent neither, and not the run dvc.yaml describes here (a stage flow run by hand): steps 1 and 3 are skipped.
    The returned dict is small (paths, metrics, lock entry or pointer) and persisted, so `run_deployment` can
    read it.
    """
    logger = get_run_logger()
    params = load_params(params_path, profile, overrides or ())
    mode = remote.worker_mode(params_path, params, upstream_entries, upstream_outs)
    ran_on, pool = remote.where_am_i()
    with hold(params.project.workdir, f"tooltune-stage flow {stage}"):  # the worker's checkout: one run at a time
        pulled = remote.worker_pull(stage, mode, params, upstream_entries, upstream_outs)
        if mode:
            logger.info("dvc pull (%s): %s", mode, pointers.describe(pulled))
        result = run_stage.with_options(timeout_seconds=params.orchestration.stage_timeout(stage))(
            stage, params_path, profile, parent_run_id, overrides, remote.run_tags(ran_on, pool, pulled))
        if mode:
            details = remote.worker_push(stage, mode, params)
            logger.info("dvc push (%s): %s", mode, pointers.describe(details["dvc_pushed"]))
            result["details"].update(details, dvc_pulled=pulled)
            tracking.tag_run(result["details"]["mlflow_run_id"],
                             {remote.PUSHED_TAG: json.dumps(details["dvc_pushed"], sort_keys=True)})
    return result


def _summary(result: dict) -> str:
    shown = [f"{k}={v:g}" for k, v in result.get("metrics", {}).items() if k != "seconds"][:4]
    return ", ".join(shown)


def run_one(stage: str, params: Params, params_path: str, parent_run_id: str,
            handover: dict[str, Any] | None = None) -> dict:
    """One stage, here or on the GPU deployment (given `handover`, the parameters naming the versions to pull),
    within its timeout.

    Raises:
        StageTimeout: The stage ran past `orchestration.stage_timeout_minutes.<stage>` (then it is not retried).
    """
    timeout_s = params.orchestration.stage_timeout(stage)
    where = gpu_deployment(stage)
    if where:
        remote_s = timeout_s + 60 * params.orchestration.remote_start_minutes
        parameters = {"stage": stage, "params_path": params_path, "profile": params.profile,
                      "parent_run_id": parent_run_id, "overrides": list(params.overrides), **(handover or {})}
        return run_remote(where, parameters, remote_s)
    try:
        return run_stage.with_options(timeout_seconds=timeout_s)(stage, params_path, params.profile, parent_run_id,
                                                                 list(params.overrides))
    except TaskRunTimeoutError as err:
        raise StageTimeout(f"{stage} ran past its timeout of {timeout_s / 60:g} min "
                           f"(orchestration.stage_timeout_minutes.{stage} in {params_path})") from err


@flow(name="tooltune-pipeline",  # no log_prints: it would capture dill's internal dis.dis output as logs
      on_failure=[notify.on_failure], on_completion=[notify.on_completion])
def pipeline(params_path: str = "params.yaml", profile: str | None = None, stages: list[str] | None = None,
             record_dvc: bool = True, overrides: list[str] | None = None,
             only_changed: bool = False) -> dict[str, dict]:
    """Run the stages in order under one MLflow parent run; returns `{stage: StageResult dict}`.

    `overrides` (`tooltune run -S key=value`) apply after the profile, for every stage: each stage task, and
    `stage_flow` on the GPU deployment, gets them as a parameter and loads the params with them.

    `only_changed` (`tooltune run --only-changed`, the nightly deployment): DVC decides (flows/nightly.py); only the
    stages it finds stale, and those downstream of them, run. Nothing stale: the run ends before any stage, with
    `{}` and the log line "up to date, nothing to retrain". It needs the DVC repo's own params (`dvc_applies`).

    The workdir's lock is held from the first stage to the `dvc commit`: a second run or stage there
    fails at once with `WorkdirBusy`. Each result's `details["seconds"]` holds the stage's wall time as
    the flow measured it. When every stage ran (or, with `only_changed`, every stale one) on the default params in
    a DVC repo, `dvc commit -f` records the outputs so a following `dvc repro` finds the pipeline up to date; with
    `only_changed` and `$TOOLTUNE_NIGHTLY_PUSH=1` (the nightly deployment) the outputs are then `dvc push`ed and
    dvc.lock committed and pushed to the checkout's branch, for the next night's fresh clone (flows/persist.py).
    A failure, and a registry decision, are posted to `$TOOLTUNE_WEBHOOK_URL` when set (flows/notify.py).
    """
    logger = get_run_logger()
    selected = select_stages(stages)
    params = load_params(params_path, profile, overrides or ())
    with hold(params.project.workdir, "tooltune run"):
        if only_changed:
            selected = stale_stages(selected, params_path, params, logger)
            if not selected:
                return {}
        handover = remote.Handover.for_run(params_path, params, [s for s in selected if gpu_deployment(s)])
        with tracking.pipeline_run(params) as parent_run_id:
            logger.info("MLflow parent run %s; stages: %s", parent_run_id, ", ".join(selected))
            results = run_stages(selected, params, params_path, parent_run_id, logger, handover)
            if record_dvc and (only_changed or selected == list(STAGES)) and dvc_applies(params_path, params):
                persist.after_run(logger, selected, only_changed)  # dvc commit; nightly: dvc push, git push
    return results


def run_stages(selected: list[str], params: Params, params_path: str, parent_run_id: str, logger: Any,
               handover: remote.Handover) -> dict[str, dict]:
    """Each selected stage in turn, with its artifacts and log lines; the error of the stage that raises carries a
    note naming it (`notify.STAGE_NOTE`), for the failure notification."""
    results: dict[str, dict] = {}
    for i, stage in enumerate(selected, 1):
        where = gpu_deployment(stage)
        tag = f"[{i}/{len(selected)}] {stage}" + (f" (on {where})" if where else "")
        logger.info("%s ...", tag)
        start = time.time()
        try:
            result = _run_and_sync(stage, params, params_path, parent_run_id, handover)
        except Exception as err:
            logger.error("%s ... failed after %.1fs: %s", tag, time.time() - start, err)
            err.add_note(notify.STAGE_NOTE + stage)
            raise
        seconds = time.time() - start
        result.setdefault("details", {})["seconds"] = round(seconds, 1)
        publish_artifacts(result, seconds)
        logger.info("%s ... ok in %.1fs  %s", tag, seconds, _summary(result))
        results[stage] = result
    return results


def _run_and_sync(stage: str, params: Params, params_path: str, parent_run_id: str,
                  handover: remote.Handover) -> dict:
    """`run_one`, and for a remote stage the hand-over (flows/remote.py): push what it reads before, pull what it
    wrote after. Nothing extra for a stage run here."""
    if not gpu_deployment(stage):
        result = run_one(stage, params, params_path, parent_run_id)
        handover.ran_here(stage)
        return result
    result = run_one(stage, params, params_path, parent_run_id, handover.send(stage))
    handover.receive(stage, result)
    return result


def stale_stages(selected: list[str], params_path: str, params: Params, logger: Any) -> list[str]:
    """The selected stages DVC finds stale (`nightly.plan`), after fetching the recorded outputs into a fresh
    checkout; logs what runs and why, or that everything is up to date.

    Raises:
        ConfigError: This run is not the one dvc.yaml describes (a profile, `-S` overrides, another params file or
            workdir, or no DVC repo here), so DVC cannot tell what changed.
    """
    if not dvc_applies(params_path, params):
        raise ConfigError(f"--only-changed asks DVC what changed, so the run must be the one dvc.yaml describes: "
                          f"params.yaml of a DVC repo in the current folder ({Path.cwd()}) as params file and "
                          f"workdir, no --profile, no -S; got {params_path} (profile {params.profile}, "
                          f"{len(params.overrides)} override(s), workdir {params.project.workdir})")
    if nightly.fetch_recorded_outputs():
        logger.info("dvc pull --allow-missing: the outputs dvc.lock records, from the default remote")
    plan = nightly.plan(selected)
    logger.info("%s", plan.describe())
    return plan.run


if __name__ == "__main__":
    pipeline()
