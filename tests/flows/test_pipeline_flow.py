"""The real Prefect pipeline flow on the quick profile, under the session's test harness.

One run of ingest ─► validate ─► build checks the whole wiring at once: results in order, metrics
files, the MLflow parent run with one nested run per stage, and the Prefect artifacts. Two tiny
flows check the retry policy: bad input fails at once, a transient error is retried.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
from pathlib import Path

import mlflow
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.states import Failed

from components import tracking
from components.config import ConfigError, load_params
from components.data.episode import DataError
from components.result import StageResult
from flows import cli, persist
from flows import pipeline as pipeline_module
from flows.pipeline import (GPU_STAGES, STAGES, artifact_key, gpu_deployment, is_retryable, pipeline, select_stages,
                            stage_flow)

pytestmark = pytest.mark.flows
REPO = Path(__file__).resolve().parents[2]
RUN = ["ingest", "validate", "build"]


@pytest.fixture
def params_path(params_factory, tmp_path) -> Path:
    """The quick-profile params file that `params_factory` writes into tmp_path."""
    params_factory()
    return tmp_path / "params.yaml"


def _artifacts(keys: list[str]) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    return {a.key: a for a in sorted(found, key=lambda a: a.created)}  # the latest run's, if several made one


def test_pipeline_runs_stages_in_order_with_tracking_and_artifacts(params_path):
    params = load_params(params_path, "")

    results = pipeline(params_path=str(params_path), stages=["build", "validate", "ingest"])

    assert list(results) == RUN  # pipeline order, whatever order was asked
    for stage in RUN:
        assert results[stage]["stage"] == stage and results[stage]["details"]["seconds"] >= 0
        assert json.loads((params.path("metrics") / f"{stage}.json").read_text()) is not None

    client = mlflow.MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    nested = client.search_runs([experiment.experiment_id],
                                filter_string=f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert len(nested) == len(RUN) and len(runs) == len(RUN) + 1

    keys = [artifact_key(s) for s in RUN] + [artifact_key(s, "-metrics") for s in RUN]
    artifacts = _artifacts(keys)
    assert set(artifacts) == set(keys)
    report = Path(results["validate"]["reports"][0]).read_text()
    assert report.strip().splitlines()[0] in artifacts["tooltune-validate"].data  # the report is inlined
    assert artifacts["tooltune-build-metrics"].type == "table"


@pytest.fixture
def loud_loggers():
    """The loggers `tooltune run` quiets, as the libraries leave them, for the test (and restored after it)."""
    loggers = [logging.getLogger(name) for name in (*cli.QUIET_LOGGERS, cli.GX_DOCS_LOGGER)]
    saved = [(lg, lg.level, list(lg.filters)) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.filters = []
    yield
    for lg, level, filters in saved:
        lg.setLevel(level)
        lg.filters = filters


def test_cli_run_prints_summary_and_no_library_chatter(params_path, capsys, caplog, monkeypatch, loud_loggers):
    """MLflow's system-metrics monitor logs four INFO lines per stage and Great Expectations one per validate/build;
    `tooltune run` prints none of them, and the system metrics are still logged to each stage's run."""
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")  # a sample even in a short stage
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)  # the default: on with psutil
    caplog.set_level(logging.INFO)
    assert cli.main(["run", "--params", str(params_path), "--stages", ",".join(RUN)]) == 0
    captured = capsys.readouterr()
    out, printed = captured.out, captured.out + captured.err  # MLflow logs to sys.stderr as it is at the call

    assert out.splitlines()[0].split() == ["stage", "seconds", "metrics"]
    assert [line.split()[0] for line in out.splitlines()[1:4]] == RUN
    assert "system_metrics_monitor" not in printed
    # GX logs through the root logger, whose handlers (Prefect's console, pytest's caplog) see the same records
    assert not [r for r in caplog.records if cli.GX_DOCS_NOTE in r.getMessage()]
    params = load_params(params_path, "")
    assert f"MLflow UI: mlflow ui --backend-store-uri {tracking.tracking_uri(params)} --host 127.0.0.1" in out
    assert "Prefect UI: " in out and "Registry:" not in out  # no register stage, no decision
    client = mlflow.MlflowClient(params.tracking.uri)
    # validate runs for seconds (GX), so a sample is taken however loaded the machine is; ingest may end first
    validate = client.search_runs([client.get_experiment_by_name(params.tracking.experiment).experiment_id],
                                  filter_string="attributes.run_name = 'validate'")[0]
    assert any(key.startswith("system/") for key in validate.data.metrics)


def _fake_stage(monkeypatch, errors: list[Exception]) -> list[str]:
    """Replace the stage code: raise the given errors in turn, then succeed; return the call log."""
    calls: list[str] = []

    def execute_stage(stage, params, parent_run_id, tags=None):
        calls.append(stage)
        if errors:
            raise errors.pop(0)
        return StageResult(stage=stage, metrics={"n": 1.0})

    monkeypatch.setattr(tracking, "execute_stage", execute_stage)
    monkeypatch.setattr(pipeline_module, "run_stage", pipeline_module.run_stage.with_options(retry_delay_seconds=0))
    return calls


def test_bad_input_fails_fast_without_retry(params_path, monkeypatch):
    calls = _fake_stage(monkeypatch, [DataError("episodes.jsonl:3: rule record_schema broken")])
    with pytest.raises(DataError, match="record_schema"):  # the original exception, not a Prefect wrapper
        pipeline(params_path=str(params_path), stages=["ingest", "validate"])
    assert calls == ["ingest"]


def test_cli_reports_bad_input_without_traceback(params_path, monkeypatch, capsys):
    _fake_stage(monkeypatch, [DataError("episodes.jsonl:3: rule record_schema broken")])
    logged: list[str] = []
    collect = logging.Handler()
    collect.emit = lambda record: logged.append(collect.format(record))  # the text a console handler prints
    logging.getLogger("prefect.flow_runs").addHandler(collect)
    try:
        assert cli.main(["run", "--params", str(params_path), "--stages", "ingest"]) == 2
    finally:
        logging.getLogger("prefect.flow_runs").removeHandler(collect)
    assert capsys.readouterr().err.endswith("error: episodes.jsonl:3: rule record_schema broken\n")
    assert any("record_schema broken" in line for line in logged)
    assert not any("Traceback" in line for line in logged)


def test_transient_error_is_retried_once(params_path, monkeypatch):
    calls = _fake_stage(monkeypatch, [OSError("disk hiccup")])
    results = pipeline(params_path=str(params_path), stages=["ingest"])
    assert calls == ["ingest", "ingest"] and results["ingest"]["metrics"] == {"n": 1.0}


def test_overrides_reach_every_stage_and_the_parent_run(params_path, monkeypatch):
    seen: list[tuple[str, int, tuple[str, ...]]] = []

    def execute_stage(stage, params, parent_run_id, tags=None):  # what each stage task loaded for itself
        seen.append((stage, params.sft.max_steps, params.overrides))
        return StageResult(stage=stage, metrics={"n": 1.0})

    monkeypatch.setattr(tracking, "execute_stage", execute_stage)
    overrides = ["sft.max_steps=7", "sft.lora.r=2"]
    pipeline(params_path=str(params_path), stages=["ingest", "validate"], overrides=overrides)
    stage_flow(stage="build", params_path=str(params_path), overrides=overrides)  # what the GPU worker runs
    assert seen == [(s, 7, tuple(overrides)) for s in ("ingest", "validate", "build")]  # the file says 60

    params = load_params(params_path, "")
    client = mlflow.MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    parent, = client.search_runs([experiment.experiment_id], filter_string="tags.`tooltune.kind` = 'pipeline'")
    assert parent.data.params == {"override.sft.max_steps": "7", "override.sft.lora.r": "2"}


# --- plain functions: no flow run -------------------------------------------------------------


def test_retry_condition_spares_bad_input():  # the whole allow-list: tests/flows/test_orchestration.py
    assert not is_retryable(None, None, Failed(data=DataError("bad")))
    assert not is_retryable(None, None, Failed(data=ConfigError("bad")))
    assert is_retryable(None, None, Failed(data=OSError("io")))
    assert not is_retryable(None, None, Failed(data=RuntimeError("cuda")))


def test_gpu_routing():
    env = {"TOOLTUNE_GPU_DEPLOYMENT": "tooltune-stage/tooltune-stage-gpu"}
    assert {s for s in STAGES if gpu_deployment(s, env)} == GPU_STAGES == {"sft", "reward_model", "rl", "evaluate"}
    assert gpu_deployment("sft", env) == "tooltune-stage/tooltune-stage-gpu"
    assert gpu_deployment("sft", {}) is None and gpu_deployment("sft", {"TOOLTUNE_GPU_DEPLOYMENT": " "}) is None
    subset = {**env, "TOOLTUNE_GPU_STAGES": "rl, sft"}  # only these leave this process
    assert {s for s in STAGES if gpu_deployment(s, subset)} == {"sft", "rl"}
    with pytest.raises(ConfigError, match=r"TOOLTUNE_GPU_STAGES: \['build'\] are not GPU stages"):
        gpu_deployment("sft", {**env, "TOOLTUNE_GPU_STAGES": "sft,build"})


def test_select_stages():
    assert select_stages(None) == list(STAGES)
    assert select_stages(["register", "base"]) == ["base", "register"]
    with pytest.raises(ConfigError, match="unknown stage"):
        select_stages(["ingest", "train"])
    assert cli.STAGES is STAGES  # one list, defined in components/__init__.py


def test_prefect_yaml_deployments_resolve():
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert set(deployments) == {"tooltune-nightly", "tooltune-stage-gpu"}
    flows = {}
    for name, d in deployments.items():
        path, func = d["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flows[name] = getattr(module, func)
        assert hasattr(flows[name], "deploy"), f"{d['entrypoint']} is not a Prefect flow"
    nightly = deployments["tooltune-nightly"]
    assert nightly["work_pool"]["name"] == "cpu" and nightly["schedules"][0]["cron"] == "0 3 * * *"
    assert nightly["parameters"] == {"only_changed": True}  # DVC decides what reruns (tests/flows/test_nightly.py)
    assert set(nightly["parameters"]) <= set(inspect.signature(flows["tooltune-nightly"].fn).parameters)
    assert deployments["tooltune-stage-gpu"]["work_pool"]["name"] == "gpu"
    gpu_name = f"{flows['tooltune-stage-gpu'].name}/tooltune-stage-gpu"
    assert nightly["work_pool"]["job_variables"]["env"]["TOOLTUNE_GPU_DEPLOYMENT"] == gpu_name
    assert nightly["work_pool"]["job_variables"]["env"][persist.PUSH_ENV] == "1"  # its records reach the next night
    # the code comes from a git_clone pull step (tests/integration/test_worker.py runs it), no fixed checkout path
    assert [next(iter(step)) for step in spec["pull"]] == ["prefect.deployments.steps.git_clone"]
    template = json.loads((REPO / "infra/workpools/gpu-job-template.json").read_text())
    assert "nvidia.com/gpu" in json.dumps(template["job_configuration"]["job_manifest"])


def test_dvc_commit_only_for_default_params_in_a_dvc_repo(params_factory, tmp_path, monkeypatch):
    params = params_factory(profile=None)  # workdir = tmp_path, no profile
    monkeypatch.chdir(tmp_path)
    assert not pipeline_module.dvc_applies("params.yaml", params)  # not a DVC repo
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / ".dvc").mkdir()
    assert pipeline_module.dvc_applies("params.yaml", params)
    assert not pipeline_module.dvc_applies(str(tmp_path / "other.yaml"), params)
    assert not pipeline_module.dvc_applies("params.yaml", params.model_copy(update={"profile": "quick"}))
    assert not pipeline_module.dvc_applies("params.yaml", params.model_copy(update={"overrides": ("sft.max_steps=7",)}))
