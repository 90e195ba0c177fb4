"""MLflow tracking for every stage: one parent run per pipeline run, one nested run per stage.

Reads: params `tracking` (URI, experiment, HTTP retry bounds), `$MLFLOW_TRACKING_URI` (overrides the URI), `$TOOLTUNE_PARENT_RUN_ID`
(the pipeline run a stage nests under), git, `paths.raw` and `dvc.lock` (lineage).
Writes: MLflow runs (params, metrics, tags, report artifacts), `metrics/<stage>.json`.
Run: each stage's `python -m components.<stage>` enters through `stage_main`; flows call `execute_stage`.

With the default `sqlite:///mlflow.db` the store is a SQLite file in `project.workdir` and artifacts go to
`mlartifacts/` beside it, so the quick profile (`runs/quick`) never mixes with the default one.

With an MLflow server, `configure` bounds MLflow's HTTP retries by `tracking.http_*` (MLflow's own default retries
for ~4 minutes) and fails with a one-line `TrackingUnavailable` when the server does not answer.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking.context import registry as context_registry
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from components import distributed
from components.tracking import workdir
from components.config import ConfigError, Params, load_params, stage_params
from components.data.episode import DataError
from components.data.fileio import sweep_stale, write_json
from components.result import StageResult

PARENT_ENV = "TOOLTUNE_PARENT_RUN_ID"
KIND_TAG, STAGE_TAG, ERROR_TAG = "tooltune.kind", "tooltune.stage", "tooltune.error"
RAN_ON_TAG, HOST_TAG = "tooltune.ran_on", "tooltune.host"  # where a stage ran: `local` unless an orchestrator says
CHAMPION = "champion"
METRIC_TAG_PREFIX = "metric."  # model-version tags holding the candidate's evaluation metrics
REPO = Path(__file__).resolve().parents[2]
_MAX_PARAM = 6000  # MLflow's limit on a param value
# MLflow reads these at every request; `configure` sets them from params `tracking`.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "http_max_retries",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "http_backoff_factor",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "http_timeout_s"}


class TrackingUnavailable(ConfigError):
    """The MLflow server at the tracking URI did not answer within the bounded retries of `tracking.http_*`.

    A `ConfigError`, so the CLI and `stage_main` print it as one line: mostly a wrong URI or a server not started.
    """


def configure(params: Params) -> None:
    """Point MLflow (tracking and registry) at the project's store and select its experiment."""
    _setup(params)


def _setup(params: Params) -> str:
    """`configure`, returning the experiment id (created if missing)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(params)
    for var, field in HTTP_ENV.items():
        os.environ[var] = str(getattr(params.tracking, field))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    name = params.tracking.experiment
    with reachable(uri):  # the first call that reaches the server
        experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(name, artifact_location=_artifact_location(uri))
        except MlflowException as err:  # another thread or process created it first
            if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment_id = client.get_experiment_by_name(name).experiment_id
    elif experiment.lifecycle_stage == "deleted":
        raise ConfigError(f"tracking.experiment: {name!r} is deleted in {uri}; restore it "
                          f"(`mlflow experiments restore`) or choose another name")
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


@contextmanager
def reachable(uri: str) -> Iterator[None]:
    """Turn MLflow's "the server did not answer" (after its bounded retries) into a one-line `TrackingUnavailable`.

    MLflow wraps the `requests` failure in an `MlflowException` with a multi-line message; other errors pass.
    """
    try:
        yield
    except MlflowException as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, requests.exceptions.RequestException):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        retries, timeout = (os.environ.get(var) for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                                             "MLFLOW_HTTP_REQUEST_TIMEOUT"))
        raise TrackingUnavailable(
            f"tracking.uri: no MLflow server answers at {uri} ({type(cause).__name__} after {retries} retries, "
            f"{timeout} s timeout each); start it, or set tracking.uri / $MLFLOW_TRACKING_URI") from None


def tracking_uri(params: Params) -> str:
    """`tracking.uri`, with a relative SQLite path resolved against `project.workdir` (its folder is created)."""
    uri = params.tracking.uri
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return uri
    path = Path(uri[len(prefix):])
    if not path.is_absolute():
        path = Path(params.project.workdir).resolve() / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path)


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside the DB file (`mlartifacts/`); a server chooses its own."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return None
    return (Path(uri[len(prefix):]).parent / "mlartifacts").resolve().as_uri()


def lineage_tags(params: Params) -> dict[str, str]:
    """What a run or model version came from: code commit, params hash, data version, profile, base model."""
    tags = {
        "git_commit": _git_commit(),
        "params_hash": hashlib.sha256(params.model_dump_json().encode()).hexdigest()[:12],
        "data_version": _md5(params.path("raw")) or "none",
        "profile": params.profile or "default",
        "base_model": params.base.model,
    }
    lock = Path(params.project.workdir) / "dvc.lock"
    if lock.is_file():
        tags["dvc_lock_md5"] = _md5(lock)
    return tags


def _git_commit() -> str:
    """HEAD of the checkout this code runs from, `-dirty` with uncommitted changes, `unknown` outside git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown"
    return commit + "-dirty" if git("status", "--porcelain") else commit


def _md5(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def pipeline_run(params: Params, name: str | None = None) -> Iterator[str]:
    """Open the parent run of one pipeline run; stages started meanwhile (threads, DVC subprocesses) nest under it.

    Yields:
        The parent run id, also exported as `$TOOLTUNE_PARENT_RUN_ID` while the block runs.
    """
    experiment_id = _setup(params)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=name or f"pipeline-{params.profile or 'default'}",
                           tags={**lineage_tags(params), KIND_TAG: "pipeline"})
    run_id = run.info.run_id
    previous = os.environ.get(PARENT_ENV)
    os.environ[PARENT_ENV] = run_id
    status = "FAILED"
    try:
        if params.overrides:  # `-S key=value`: one param per key (the last one wins, as when loading), comparable
            mlflow.log_params({f"override.{o.partition('=')[0].strip()}": o.partition("=")[2].strip()[:_MAX_PARAM]
                               for o in params.overrides})
        yield run_id
        status = "FINISHED"
    finally:
        if previous is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = previous
        _end(run_id, status)


def execute_stage(stage: str, params: Params, parent_run_id: str | None = None,
                  tags: dict[str, str] | None = None) -> StageResult:
    """Run `components.<stage>.run(params)` inside its own MLflow run and record what it produced.

    The run is created with an explicit `mlflow.parentRunId` tag rather than from MLflow's active-run stack,
    which is per thread: Prefect runs tasks in worker threads. It is then made this thread's active run, so a
    stage can log into it (register logs its model there).

    Args:
        stage: Stage name (= module under `components/` = params section).
        params: The loaded params.
        parent_run_id: The pipeline run to nest under, if any.
        tags: Extra tags for the stage's run (the orchestrator's: where it ran, which data versions it pulled).

    Returns:
        The stage's result; its metrics are also in `metrics/<stage>.json`, its MLflow run id in
        `details["mlflow_run_id"]` (to tag it later, e.g. with the versions pushed after the run).

    Launched on several processes (torchrun, accelerate launch; components/distributed.py), rank 0 alone does all
    of this; the other ranks wait until it holds the lock and swept the workdir, then only train (`run`).

    Raises:
        WorkdirBusy: Another process runs a stage or the pipeline in `project.workdir` (see components/tracking/workdir.py).
    """
    if not distributed.is_main():
        distributed.barrier()  # rank 0 holds the lock and swept the workdir
        return importlib.import_module(f"components.{stage}").run(params)
    with workdir.hold(params.project.workdir, f"stage {stage}"):  # re-entrant: the flow already holds it
        # under the lock: finish or undo atomic writes a killed stage left (not in nested workdirs: runs/quick)
        sweep_stale(params.project.workdir, other_root=workdir.LOCK_FILE)
        distributed.barrier()
        return _execute_stage(stage, params, parent_run_id, tags or {})


def _execute_stage(stage: str, params: Params, parent_run_id: str | None, extra: dict[str, str]) -> StageResult:
    module = importlib.import_module(f"components.{stage}")
    flat_params = _flatten(stage_params(params, stage))
    experiment_id = _setup(params)
    client = MlflowClient()
    tags = {**lineage_tags(params), RAN_ON_TAG: "local", HOST_TAG: socket.gethostname(), **extra,
            KIND_TAG: "stage", STAGE_TAG: stage}
    if parent_run_id:
        tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run_id = client.create_run(experiment_id, tags=context_registry.resolve_tags(tags), run_name=stage).info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in flat_params.items()])
    mlflow.start_run(run_id=run_id, nested=True, log_system_metrics=_system_metrics())
    try:
        result = module.run(params)
        write_json(params.path("metrics") / f"{stage}.json", result.metrics)
        _log_result(client, run_id, result)
    except BaseException as err:
        client.set_tag(run_id, ERROR_TAG, f"{type(err).__name__}: {err}"[:_MAX_PARAM])
        _end(run_id, "FAILED")
        raise
    _end(run_id, "FINISHED")
    result.details["mlflow_run_id"] = run_id
    return result


def tag_run(run_id: str, tags: dict[str, str]) -> None:
    """Add tags to a finished run (a stage's, once the orchestrator knows what it pushed)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value[:_MAX_PARAM])


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"lora": {"r": 8}}` -> `{"lora.r": "8"}`; lists as JSON; values cut to MLflow's limit."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
            flat[f"{prefix}{key}"] = text[:_MAX_PARAM]
    return flat


def _log_result(client: MlflowClient, run_id: str, result: StageResult) -> None:
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in result.metrics.items()],
                     tags=[RunTag(f"output.{k}", str(v)[:_MAX_PARAM]) for k, v in result.outputs.items()])
    if result.details:
        client.log_dict(run_id, result.details, "details.json")
    for report in map(Path, result.reports):
        if report.is_dir():
            client.log_artifacts(run_id, str(report), f"reports/{report.name}")
        else:  # a listed report that is missing is a stage bug: log_artifact raises
            client.log_artifact(run_id, str(report), "reports")


def _system_metrics() -> bool | None:
    """CPU/memory (and GPU with pynvml) sampling for stage runs when psutil is present; the env var wins."""
    if os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING") is not None:
        return None
    return importlib.util.find_spec("psutil") is not None


def _end(run_id: str, status: str) -> None:
    """End `run_id`: pop it from this thread's active-run stack if it is on top, else terminate it directly."""
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
    else:
        MlflowClient().set_terminated(run_id, status)


def step_metrics_callback() -> Any:
    """A `transformers.TrainerCallback` logging each `Trainer.log` (loss, learning rate, grad norm, TRL's reward,
    KL and length metrics...) as MLflow step metrics into the run active when training starts: the stage's run
    under `execute_stage`. Without an active run it does nothing, so `run()` called directly logs nowhere.

    Not transformers' `MLflowCallback` (`report_to="mlflow"`): without an active run it starts its own, and it
    logs every TrainingArguments and model-config field as params, asynchronously, beside the stage's own params.
    """
    from transformers import TrainerCallback

    class StepMetrics(TrainerCallback):
        run_id: str | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            active = mlflow.active_run()
            self.run_id = active.info.run_id if active is not None and state.is_world_process_zero else None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if self.run_id is None or not logs:
                return
            now = int(time.time() * 1000)
            metrics = [Metric(_metric_name(k), float(v), now, state.global_step) for k, v in logs.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if metrics:  # explicitly into the stage's run: a stage may start other runs meanwhile
                MlflowClient().log_batch(self.run_id, metrics=metrics)

    return StepMetrics()


def _metric_name(key: str) -> str:
    """A trainer log key as an MLflow metric name, which allows only `[/\\w.\\- :]` (`rewards/x/mean` stays)."""
    return re.sub(r"[^/\w.\- :]", "_", key)


def stage_main(stage: str) -> StageResult:
    """Entry of `python -m components.<stage>` (DVC): params.yaml in cwd, profile from `$TOOLTUNE_PROFILE`; returns
    the stage's result (a stage's `main` may print more of it).

    Bad inputs (`DataError`, `ConfigError`) and a workdir another run holds (`WorkdirBusy`) end with
    `error: <message>` on stderr and exit code 2, no traceback.
    """
    start = time.time()
    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # four INFO lines per stage otherwise
    try:
        params = load_params()
        result = execute_stage(stage, params, os.environ.get(PARENT_ENV) or None)
    except (DataError, ConfigError, workdir.WorkdirBusy) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if not distributed.is_main():
        return result  # rank 0 reports the run
    metrics = " ".join(f"{k}={v:g}" for k, v in result.metrics.items())
    print(f"[{stage}] done in {time.time() - start:.1f}s: {metrics}".rstrip(": "))
    return result


def champion_version(client: MlflowClient, model_name: str) -> ModelVersion | None:
    """The version holding the `champion` alias, or None (no such model, or no champion yet)."""
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    version = model.aliases.get(CHAMPION)
    return client.get_model_version(model_name, version) if version else None


def champion_metrics(params: Params) -> dict[str, float] | None:
    """Evaluation metrics recorded on the current champion (`metric.<name>` version tags), or None."""
    configure(params)
    version = champion_version(MlflowClient(), params.register_.model_name)
    if version is None:
        return None
    return {k[len(METRIC_TAG_PREFIX):]: float(v) for k, v in version.tags.items() if k.startswith(METRIC_TAG_PREFIX)}


def download_champion(params: Params, dst: Path) -> tuple[str, Path] | None:
    """Download the registry's `champion` into `dst`: (version, its Hugging Face folder), or None when there is none.

    register.py logs the folder as the pyfunc artifact `model`; the MLmodel file says where it lies.
    """
    from mlflow.models import Model

    configure(params)
    name = params.register_.model_name
    version = champion_version(MlflowClient(), name)
    if version is None:
        return None
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}", dst_path=str(dst)))
    artifact = Model.load(str(local)).flavors["python_function"]["artifacts"]["model"]["path"]
    return str(version.version), local / artifact
