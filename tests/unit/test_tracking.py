"""components.tracking against a real MLflow SQLite store in tmp_path (migrated once per session, copied per test)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import types
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from components import tracking
from components.data.episode import DataError
from components.result import StageResult


@pytest.fixture
def params(params_factory, migrated_db, tmp_path, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", tracking.PARENT_ENV, "TOOLTUNE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    yield params_factory()
    while mlflow.active_run():  # never leak an active run into the next test
        mlflow.end_run("KILLED")


def fake_stage(monkeypatch, tmp_path: Path, fail: Exception | None = None) -> None:
    """Stand in for `components.sft` (its params section has nested and list values)."""
    def run(params):
        if fail:
            raise fail
        assert mlflow.active_run() is not None, "the stage run is this thread's active run"
        report = tmp_path / "reports" / "sft.md"
        report.parent.mkdir(exist_ok=True)
        report.write_text("# report\n")
        return StageResult(stage="sft", outputs={"model": "artifacts/sft"}, metrics={"loss": 0.5, "steps": 3.0},
                           reports=[str(report)], details={"note": "ok"})

    module = types.ModuleType("components.sft")
    module.run = run
    monkeypatch.setitem(sys.modules, "components.sft", module)


def test_execute_stage_nests_under_the_pipeline_run_from_a_worker_thread(params, tmp_path, monkeypatch):
    fake_stage(monkeypatch, tmp_path)
    out: dict = {}
    with tracking.pipeline_run(params, name="nightly") as parent:
        assert tracking.PARENT_ENV in os.environ
        worker = threading.Thread(target=lambda: out.update(result=tracking.execute_stage("sft", params, parent)))
        worker.start()
        worker.join()
    assert tracking.PARENT_ENV not in os.environ
    assert out["result"].metrics == {"loss": 0.5, "steps": 3.0}

    client = MlflowClient()
    (child,) = client.search_runs([mlflow.get_experiment_by_name("tooltune-quick").experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent}'")
    assert child.info.run_name == "sft" and child.info.status == "FINISHED"
    assert child.data.tags[tracking.STAGE_TAG] == "sft" and child.data.tags["output.model"] == "artifacts/sft"
    assert child.data.tags[tracking.RAN_ON_TAG] == "local" and child.data.tags[tracking.HOST_TAG]  # dvc repro too
    assert out["result"].details["mlflow_run_id"] == child.info.run_id  # for tags known only later (dvc push)
    assert child.data.params["max_steps"] == str(params.sft.max_steps) and child.data.params["lora.enabled"] == "False"
    assert child.data.metrics["loss"] == 0.5
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "reports")}
    assert artifacts == {"reports/sft.md"}
    assert (tmp_path / "metrics" / "sft.json").read_text().replace(" ", "").replace("\n", "") == \
        '{"loss":0.5,"steps":3.0}'
    parent_run = client.get_run(parent)
    assert parent_run.info.status == "FINISHED" and parent_run.info.run_name == "nightly"
    assert parent_run.data.tags[tracking.KIND_TAG] == "pipeline"
    assert parent_run.data.tags["params_hash"] == child.data.tags["params_hash"]
    assert mlflow.active_run() is None


def test_execute_stage_marks_failed_and_reraises(params, tmp_path, monkeypatch):
    fake_stage(monkeypatch, tmp_path, fail=RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        tracking.execute_stage("sft", params)
    (run,) = MlflowClient().search_runs([mlflow.get_experiment_by_name("tooltune-quick").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags[tracking.ERROR_TAG] == "RuntimeError: boom"
    assert "mlflow.parentRunId" not in run.data.tags
    assert not (tmp_path / "metrics" / "sft.json").exists()
    assert mlflow.active_run() is None


def _train_logs(callback, logs: list[dict]) -> None:
    """Drive `callback` as `Trainer.train` does: train begin, then one `on_log` per logged step."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args, state, control = TrainingArguments(output_dir="/tmp/unused", report_to="none"), TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    for step, entry in enumerate(logs, 1):
        state.global_step = step
        callback.on_log(args, state, control, logs=entry)


def test_step_metrics_go_into_the_active_stage_run(params):
    tracking.configure(params)
    with mlflow.start_run() as run:
        _train_logs(tracking.step_metrics_callback(),
                    [{"loss": 2.0, "learning_rate": 1e-4, "rewards/correctness/mean": 0.25, "eval(x)": 1},
                     {"loss": 1.5, "note": "text", "flag": True}])
    client = MlflowClient()
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [(1, 2.0), (2, 1.5)]
    assert set(client.get_run(run.info.run_id).data.metrics) == {"loss", "learning_rate", "rewards/correctness/mean",
                                                                 "eval_x_"}  # text and booleans are not metrics


def test_step_metrics_without_an_active_run_log_nothing(params):
    tracking.configure(params)
    _train_logs(tracking.step_metrics_callback(), [{"loss": 2.0}])
    assert MlflowClient().search_runs([mlflow.get_experiment_by_name("tooltune-quick").experiment_id]) == []
    assert mlflow.active_run() is None


def test_pipeline_run_fails_with_its_body(params):
    with pytest.raises(ValueError):
        with tracking.pipeline_run(params) as parent:
            raise ValueError("stage broke")
    assert MlflowClient().get_run(parent).info.status == "FAILED"
    assert tracking.PARENT_ENV not in os.environ


def test_stage_main_prints_a_summary_or_a_clean_error(params, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # params_factory wrote params.yaml here
    fake_stage(monkeypatch, tmp_path)
    tracking.stage_main("sft")
    assert re.fullmatch(r"\[sft\] done in \d+\.\ds: loss=0\.5 steps=3\n", capsys.readouterr().out)

    fake_stage(monkeypatch, tmp_path, fail=DataError("data/raw/episodes.jsonl: line 3: bad pattern"))
    with pytest.raises(SystemExit) as exit_:
        tracking.stage_main("sft")
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.splitlines()[-1] == "error: data/raw/episodes.jsonl: line 3: bad pattern" and "Traceback" not in err

    monkeypatch.chdir(tmp_path / "reports")  # no params.yaml here: ConfigError, same clean exit
    with pytest.raises(SystemExit):
        tracking.stage_main("sft")
    assert capsys.readouterr().err.splitlines()[-1] == "error: params.yaml: file not found"


def test_lineage_tags(params, tmp_path):
    tags = tracking.lineage_tags(params)
    assert re.fullmatch(r"([0-9a-f]{40}(-dirty)?|unknown)", tags["git_commit"])
    assert len(tags["params_hash"]) == 12 and tags["data_version"] == "none"
    assert (tags["profile"], tags["base_model"]) == ("default", "tiny") and "dvc_lock_md5" not in tags

    params.path("raw").parent.mkdir(parents=True)
    params.path("raw").write_text("{}\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    tags = tracking.lineage_tags(params)
    assert tags["data_version"] == "8a80554c91d9fca8acb82f023de02f11"  # md5 of "{}\n"
    assert len(tags["dvc_lock_md5"]) == 32


def test_configure_resolves_relative_sqlite_and_honours_the_env(params_factory, params, migrated_db, tmp_path,
                                                                 monkeypatch):
    relative = params_factory(tracking={"uri": "sqlite:///mlflow.db"})
    tracking.configure(relative)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert mlflow.get_registry_uri() == mlflow.get_tracking_uri()
    experiment = mlflow.get_experiment_by_name("tooltune-quick")
    assert experiment.artifact_location == (tmp_path / "mlartifacts").resolve().as_uri()

    shutil.copy(migrated_db, tmp_path / "other.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    tracking.configure(relative)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path}/other.db"
    assert tracking.champion_metrics(relative) is None  # no registered model yet
