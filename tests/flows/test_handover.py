"""A profile run (`--profile quick`: workdir runs/quick, not dvc.yaml's outs) with GPU stages sent away: their data goes
through the DVC remote as transient .dvc pointers (flows/pointers.py), both ways, and nothing else is shared.

Real flows under the session harness, real DVC in a temporary git repo (the parent's checkout) with a local-folder
default remote and a `git clone` of it (the worker's checkout), a real MLflow SQLite store both sides log to (as to
a tracking server). Replaced: Prefect's dispatch to a worker (`run_remote` calls `stage_flow` in the clone; the real
dispatch is tests/integration/test_remote_stages.py) and each stage's ML work (`components.<stage>.run`), which
writes every out dvc.yaml lists from a digest of the inputs it read, so the chain of versions can be checked.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from components import STAGES
from components.config import ConfigError, load_params
from components.result import StageResult
from flows import cli, dvcfile, remote
from flows import pipeline as pipeline_module
from flows.pipeline import pipeline, stage_flow

pytestmark = pytest.mark.flows
REPO = Path(__file__).resolve().parents[2]
ROUTED = ("sft", "rl")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def checkouts(tmp_path, migrated_db, monkeypatch) -> tuple[Path, Path]:
    """The parent's git + DVC repo (the project's dvc.yaml, params.yaml with one MLflow store for both sides, ignore
    files, a local-folder default remote) and the worker's clone; the cwd is the parent's."""
    parent, worker = tmp_path / "parent", tmp_path / "worker"
    parent.mkdir()
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, parent / name)
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (parent / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _git(parent, "init", "-q", "-b", "main")
    for args in (("init", "-q"), ("config", "core.analytics", "false"),
                 ("remote", "add", "-d", "store", str(tmp_path / "dvc-store"))):
        remote.dvc(*args, cwd=parent)
    _git(parent, "add", "-A")
    _git(parent, "commit", "-qm", "pipeline")
    _git(tmp_path, "clone", "-q", str(parent), str(worker))
    monkeypatch.chdir(parent)
    monkeypatch.setenv(pipeline_module.GPU_DEPLOYMENT_ENV, "tooltune-stage/gpu-test")
    monkeypatch.setenv(pipeline_module.GPU_STAGES_ENV, ",".join(ROUTED))
    return parent, worker


def _digest(root: Path, rels: list[str]) -> str:
    """sha256 over the bytes of these paths (folders: every file, sorted), as one stage read them."""
    h = hashlib.sha256()
    for rel in rels:
        top = root / rel
        for path in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _fake_work(monkeypatch) -> list[tuple[str, str]]:
    """Each stage's `run` writes its dvc.yaml outs (not the metrics file: execute_stage writes it) as
    "<stage> read <digest of its inputs>"; returns the log of (stage, checkout it ran in)."""
    ran: list[tuple[str, str]] = []

    def fake(stage: str):
        def run(params):
            root = Path.cwd()
            paths = {k: str(v) for k, v in params.paths.model_dump().items()}
            seen = _digest(root, dvcfile.stage_inputs(stage, paths, params.project.workdir))
            metrics = (params.path("metrics") / f"{stage}.json").resolve()
            for out in dvcfile.stage_outs(stage, paths, params.project.workdir):
                path = root / out.path
                if path.resolve() == metrics:
                    continue
                file = path if path.suffix else path / "content.txt"  # outs without a suffix are folders
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(f"{stage} read {seen}")
            ran.append((stage, root.name))
            return StageResult(stage=stage, metrics={"inputs": float(int(seen[:6], 16))})
        return run

    for stage in STAGES:
        monkeypatch.setattr(importlib.import_module(f"components.{stage}"), "run", fake(stage))
    return ran


def _send_to(worker: Path, monkeypatch):
    """`run_remote` replaced: `stage_flow` with the same parameters, run in the worker's checkout."""
    def run_remote(deployment, parameters, timeout_s):
        json.dumps(parameters)  # what Prefect sends must be plain JSON
        here = Path.cwd()
        os.chdir(worker)
        try:
            return stage_flow(**parameters)
        finally:
            os.chdir(here)

    monkeypatch.setattr(pipeline_module, "run_remote", run_remote)


def _outs(root: Path, stage: str, params) -> dict[str, str]:
    """{path: digest} of the stage's outs (but the evaluation cache) in the checkout at `root`."""
    paths = {k: str(v) for k, v in params.paths.model_dump().items()}
    found = [o.path for o in dvcfile.stage_outs(stage, paths, params.project.workdir) if not o.persist]  # cwd: parent
    return {p: _digest(root, [p]) for p in found}


def test_profile_run_hands_the_gpu_stages_data_over_both_ways(checkouts, monkeypatch):
    parent, worker = checkouts
    ran = _fake_work(monkeypatch)
    _send_to(worker, monkeypatch)
    results = pipeline(profile="quick")
    assert list(results) == list(STAGES)
    assert ran == [(s, "worker" if s in ROUTED else "parent") for s in STAGES]

    params = load_params(parent / "params.yaml", "quick")
    for stage in ROUTED:  # what the worker made is here, byte for byte
        assert _outs(parent, stage, params) == _outs(worker, stage, params)
        assert results[stage]["details"]["dvc_pushed"].keys() == _outs(worker, stage, params).keys()
    # rl ran on the worker on sft (made there) and reward_model (made here, sent); evaluate here on rl (sent back)
    rl_read = _digest(parent, ["runs/quick/artifacts/sft", "runs/quick/artifacts/reward_model",
                               "runs/quick/data/splits"])
    assert (parent / "runs/quick/artifacts/rl/content.txt").read_text() == f"rl read {rl_read}"
    evaluate_read = _digest(parent, ["runs/quick/artifacts/base", "runs/quick/artifacts/sft",
                                     "runs/quick/artifacts/rl", "runs/quick/data/splits"])
    assert (parent / "runs/quick/reports/evaluate.md").read_text() == f"evaluate read {evaluate_read}"
    # the metrics files came back too; the worker's evaluation cache stays there, nothing reached git or dvc.lock
    assert (parent / "runs/quick/metrics/rl.json").read_bytes() == (worker / "runs/quick/metrics/rl.json").read_bytes()
    for root in (parent, worker):
        assert _git(root, "status", "--porcelain") == "" and not (root / "dvc.lock").exists()
        assert not list(root.glob(".tooltune-handover-*"))
    _check_lineage(params, results)


def _check_lineage(params, results: dict) -> None:
    """The remote stages' MLflow runs name the versions they pulled and pushed, as on the dvc.lock way."""
    client = MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = {r.data.tags["tooltune.stage"]: r.data.tags
            for r in client.search_runs([experiment.experiment_id], "tags.`tooltune.kind` = 'stage'")}
    assert set(runs) == set(STAGES)
    sft_pushed = results["sft"]["details"]["dvc_pushed"]
    for stage in ROUTED:
        assert json.loads(runs[stage][remote.PUSHED_TAG]) == results[stage]["details"]["dvc_pushed"]
    assert set(json.loads(runs["sft"][remote.PULLED_TAG])) == {"runs/quick/artifacts/base", "runs/quick/data/splits"}
    rl_pulled = json.loads(runs["rl"][remote.PULLED_TAG])
    assert rl_pulled["runs/quick/artifacts/sft"] == sft_pushed["runs/quick/artifacts/sft"]  # the version sft pushed
    assert set(rl_pulled) == {"runs/quick/artifacts/sft", "runs/quick/artifacts/reward_model", "runs/quick/data/splits"}
    assert all(remote.PULLED_TAG not in runs[s] for s in STAGES if s not in ROUTED)


def test_overrides_on_the_repos_workdir_are_refused_before_any_stage(checkouts, monkeypatch, capsys):
    ran = _fake_work(monkeypatch)
    with pytest.raises(ConfigError, match=r"writes where dvc.yaml's stages do .*`-S project.workdir=runs/<name>`"):
        pipeline(overrides=["sft.max_steps=7"])
    assert cli.main(["run", "-S", "sft.max_steps=7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: remote stages (sft, rl): this run (profile None, 1 -S ")
    assert ran == []  # refused before any stage ran
    assert cli.main(["run", "--stages", "ingest", "-S", "sft.max_steps=7"]) == 0  # no remote stage: runs here
    assert ran == [("ingest", "parent")]
