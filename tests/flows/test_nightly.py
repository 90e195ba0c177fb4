"""The nightly run: DVC decides which stages run (`only_changed`), failures and registry decisions are posted to a
webhook, and what a run recorded reaches the next night's fresh clone (flows/persist.py). Real DVC in a temporary
git repo holding the real dvc.yaml and the components/ code it lists (and for the next-night tests a bare origin,
`--depth 1` clones as prefect.yaml's git_clone makes them, a local-folder DVC remote), a real HTTP server on
127.0.0.1 receiving the posts, real flows under the session harness; only the stage's work
(`tracking.execute_stage`) is replaced: it writes each output dvc.yaml lists for the stage.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from components import STAGES, tracking
from components.config import ConfigError
from components.data.episode import DataError
from components.result import StageResult
from flows import cli, dvcfile, notify, persist, remote
from flows import pipeline as pipeline_module
from flows.pipeline import pipeline
from tests.conftest import _deep, write_params

pytestmark = [pytest.mark.flows, pytest.mark.slow]  # whole quick-profile runs: 4-5 min together
REPO = Path(__file__).resolve().parents[2]
DECISION = {"model_name": "tooltune-travel-quick", "version": "3", "alias": "champion",
            "reason": "single_exact 0.7500 beats base 0.2000", "model_uri": "models:/tooltune-travel-quick/3"}


def _dvc(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture
def dvc_repo(tmp_path, monkeypatch, migrated_db) -> Path:
    """A git + DVC repo with the project's dvc.yaml, its code deps and a params.yaml rooted there; the cwd."""
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    shutil.copytree(REPO / "components", tmp_path / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    write_params(tmp_path, "quick")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _dvc("init", "-q", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)
    for var in ("TOOLTUNE_PROFILE", notify.WEBHOOK_ENV):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _outputs(repo: Path, stage: str) -> list[Path]:
    """The files dvc.yaml names as `stage`'s outs and metrics, `${paths.*}` resolved from the repo's params."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]
    paths = yaml.safe_load((repo / "params.yaml").read_text())["paths"]
    names = [next(iter(e)) if isinstance(e, dict) else e for e in spec.get("outs", []) + spec.get("metrics", [])]
    return [repo / re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], n) for n in names]


def _fake_stages(monkeypatch, repo: Path, fail: str | None = None) -> list[str]:
    """Replace the stage's work: write its outputs (or raise a DataError in stage `fail`); return the call log."""
    calls: list[str] = []

    def execute_stage(stage, params, parent_run_id, tags=None):
        calls.append(stage)
        if stage == fail:
            raise DataError(f"{stage}: rule broken")
        for path in _outputs(repo, stage):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"stage": stage, "steps": params.sft.max_steps}))
        return StageResult(stage=stage, metrics={"n": 1.0}, details=DECISION if stage == "register" else {})

    monkeypatch.setattr(tracking, "execute_stage", execute_stage)
    monkeypatch.setattr(pipeline_module, "run_stage", pipeline_module.run_stage.with_options(retry_delay_seconds=0))
    return calls


class Webhook:
    """An HTTP server on 127.0.0.1 that records each POSTed JSON and answers `status`."""

    def __init__(self, status: int):
        received: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://bot:pw-secret@127.0.0.1:{self.server.server_port}/hooks/T0-secret?token=tk-secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    """A webhook answering 204; its URL (with secrets in the user part, path and query) is $TOOLTUNE_WEBHOOK_URL."""
    hook = Webhook(204)
    monkeypatch.setenv(notify.WEBHOOK_ENV, hook.url)
    yield hook.received
    hook.close()


def test_unchanged_second_run_skips_every_stage(dvc_repo, monkeypatch, capsys):
    calls = _fake_stages(monkeypatch, dvc_repo)
    first = pipeline(only_changed=True)  # no dvc.lock yet: everything runs, then is recorded
    assert list(first) == list(STAGES) and calls == list(STAGES)
    assert set(yaml.safe_load((dvc_repo / "dvc.lock").read_text())["stages"]) == set(STAGES)

    calls.clear()
    assert cli.main(["run", "--only-changed"]) == 0
    assert calls == []  # no stage ran
    assert "tooltune: up to date, nothing to retrain" in capsys.readouterr().out


def test_changed_params_and_code_rerun_from_the_right_stage(dvc_repo, monkeypatch):
    calls = _fake_stages(monkeypatch, dvc_repo)
    pipeline(only_changed=True)

    calls.clear()
    write_params(dvc_repo, "quick", sft={"max_steps": 7})  # the sft section only; reward_model samples its model
    assert list(pipeline(only_changed=True)) == ["sft", "reward_model", "rl", "evaluate", "register"] == calls
    calls.clear()
    assert pipeline(only_changed=True) == {} and calls == []  # the rerun was recorded

    with (dvc_repo / "components" / "reward_model.py").open("a") as f:
        f.write("\n# a code change\n")
    assert list(pipeline(only_changed=True)) == ["reward_model", "rl", "evaluate", "register"]

    calls.clear()
    write_params(dvc_repo, "quick", sft={"max_steps": 9})
    assert list(pipeline(only_changed=True, stages=["sft", "rl"])) == ["sft", "rl"]  # a subset: only its stale ones
    # the rest is still stale, and runs now: reward_model samples the new SFT model, so rl reruns on it
    assert list(pipeline(only_changed=True)) == ["reward_model", "rl", "evaluate", "register"]


def test_only_changed_needs_the_repos_own_params(dvc_repo, monkeypatch):
    calls = _fake_stages(monkeypatch, dvc_repo)
    with pytest.raises(ConfigError, match=r"--only-changed asks DVC what changed.*profile quick"):
        pipeline(only_changed=True, profile="quick")
    assert calls == []


def test_failing_stage_posts_a_failure(dvc_repo, monkeypatch, webhook):
    _fake_stages(monkeypatch, dvc_repo, fail="build")
    with pytest.raises(DataError, match="build: rule broken"):
        pipeline(only_changed=True)
    [posted] = webhook
    assert posted["event"] == "failed" and posted["failed_stage"] == "build" and posted["state"] == "Failed"
    assert posted["error"] == "DataError: build: rule broken" and posted["flow"] == "tooltune-pipeline"
    assert posted["flow_run"]["id"] and posted["flow_run"]["name"]


def test_promotion_posts_the_decision(dvc_repo, monkeypatch, webhook):
    _fake_stages(monkeypatch, dvc_repo)
    pipeline(only_changed=True)
    [posted] = webhook
    assert posted["event"] == "completed" and posted["stages_run"] == list(STAGES)
    assert posted["registry"] == {"model_name": DECISION["model_name"], "version": "3", "promoted": True,
                                  "alias": "champion", "reason": DECISION["reason"]}
    assert pipeline(only_changed=True) == {} and len(webhook) == 1  # nothing retrained: no decision, no post


class ListLogger:
    """A logger stand-in that keeps what it is asked to log."""

    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg, *args):
        self.lines.append(msg % args)

    warning = info


def test_failed_post_is_a_warning_without_the_secret():
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()  # nothing listens there now
    log = ListLogger()
    url = f"http://bot:pw-secret@127.0.0.1:{port}/hooks/T0-secret?token=tk-secret"
    assert notify.post({"event": "failed"}, log, {notify.WEBHOOK_ENV: url}) is False
    assert log.lines[0].startswith(f"webhook http://127.0.0.1:{port}/…: notification 'failed' not delivered (Connect")
    refusing = Webhook(500)
    try:
        assert notify.post({"event": "failed"}, log, {notify.WEBHOOK_ENV: refusing.url}) is False
    finally:
        refusing.close()
    assert log.lines[1].endswith("not delivered (HTTP 500)") and len(refusing.received) == 1
    assert not [line for line in log.lines if "secret" in line]
    assert notify.post({"event": "failed"}, log, {}) is False and len(log.lines) == 2  # no URL: nothing sent


def test_failed_post_never_fails_the_run(dvc_repo, monkeypatch):
    _fake_stages(monkeypatch, dvc_repo)
    refusing = Webhook(500)
    monkeypatch.setenv(notify.WEBHOOK_ENV, refusing.url)
    try:
        assert list(pipeline(only_changed=True)) == list(STAGES)  # completed, the decision posted and refused
    finally:
        refusing.close()
    assert [p["event"] for p in refusing.received] == ["completed"]


# --- the next night starts from this night's records: fresh clones of a bare origin, a local DVC remote -------------


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=dev", "-c", "user.email=dev@t.invalid", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def origin(tmp_path, migrated_db, monkeypatch) -> Path:
    """A bare git repo (the deployment's TOOLTUNE_REPO) with the project's dvc.yaml, code deps, ignore files and a
    params.yaml on the quick values (one MLflow store outside the clones), and a local-folder default DVC remote in
    .dvc/config; the nightly push switched on and no git identity, as on a fresh worker."""
    dev = tmp_path / "dev"
    shutil.copytree(REPO / "components", dev / "components", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, dev / name)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in raw["profiles"]["quick"].items():
        raw[key] = _deep(raw[key], value)
    raw["project"]["workdir"] = "."
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    raw["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (dev / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _git(dev, "init", "-q", "-b", "main")
    for args in (("init", "-q"), ("config", "core.analytics", "false"),
                 ("remote", "add", "-d", "store", str(tmp_path / "dvc-store"))):
        _dvc(*args, cwd=dev)
    _git(dev, "add", "-A")
    _git(dev, "commit", "-qm", "pipeline")
    _git(tmp_path, "clone", "-q", "--bare", str(dev), str(tmp_path / "origin.git"))
    for var in ("TOOLTUNE_PROFILE", notify.WEBHOOK_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(persist.PUSH_ENV, "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return tmp_path / "origin.git"


def _night(origin: Path, name: str, monkeypatch) -> Path:
    """A fresh clone as prefect.yaml's git_clone step makes it (`--depth 1 --branch main`), as the cwd."""
    clone = origin.parent / name
    _git(origin.parent, "clone", "-q", "--depth", "1", "--branch", "main", f"file://{origin}", str(clone))
    monkeypatch.chdir(clone)
    return clone


def _fake_here(monkeypatch) -> list[str]:
    """Replace the stage's work: write the outs dvc.yaml lists, relative to the cwd (a clone), naming the clone."""
    calls: list[str] = []

    def execute_stage(stage, params, parent_run_id, tags=None):
        calls.append(stage)
        _write_outs(stage, params.sft.max_steps)
        return StageResult(stage=stage, metrics={"n": 1.0})

    monkeypatch.setattr(tracking, "execute_stage", execute_stage)
    return calls


def _write_outs(stage: str, steps: int) -> None:
    for out in dvcfile.stage_outs(stage, dvcfile.own_paths(), "."):
        path = Path(out.path) if Path(out.path).suffix else Path(out.path) / "content.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": stage, "steps": steps, "by": Path.cwd().name}))


def _origin_lock(origin: Path) -> dict:
    shown = subprocess.run(["git", "show", "main:dvc.lock"], cwd=origin, capture_output=True, text=True)
    return yaml.safe_load(shown.stdout)["stages"] if shown.returncode == 0 else {}


def test_the_next_fresh_clone_builds_on_last_nights_records(origin, monkeypatch):
    calls = _fake_here(monkeypatch)
    _night(origin, "night1", monkeypatch)
    assert list(pipeline(only_changed=True)) == list(STAGES)  # no dvc.lock yet: everything
    assert set(_origin_lock(origin)) == set(STAGES)  # committed and pushed, with the metrics files
    assert _git(origin, "show", "--stat", "--format=%an %s", "main").startswith(
        "tooltune nightly tooltune nightly: dvc.lock after base, ingest")
    assert "metrics/sft.json" in _git(origin, "ls-tree", "-r", "--name-only", "main")

    calls.clear()
    _night(origin, "night2", monkeypatch)
    assert pipeline(only_changed=True) == {} and calls == []  # outputs pulled, evaluation cache missing: no change

    dev = origin.parent / "dev"
    _git(dev, "pull", "-q", str(origin), "main")
    write_quick = yaml.safe_load((dev / "params.yaml").read_text())
    write_quick["sft"]["max_steps"] += 1
    (dev / "params.yaml").write_text(yaml.safe_dump(write_quick, sort_keys=False))
    _git(dev, "commit", "-qam", "more sft steps")
    _git(dev, "push", "-q", str(origin), "main")
    night3 = _night(origin, "night3", monkeypatch)
    (dev / "NOTES.md").write_text("pushed while night3 ran\n")  # another commit lands before night3 pushes
    _git(dev, "add", "NOTES.md")
    _git(dev, "commit", "-qm", "notes")
    _git(dev, "push", "-q", str(origin), "main")
    assert list(pipeline(only_changed=True)) == ["sft", "reward_model", "rl", "evaluate", "register"] == calls
    log = _git(origin, "log", "--format=%s", "main").splitlines()
    assert log[:3] == ["tooltune nightly: dvc.lock after sft, reward_model, rl, evaluate, register", "notes", "more sft steps"]
    assert _origin_lock(origin)["sft"] == remote.read_lock(night3)["sft"]  # rebased on the notes, then pushed

    calls.clear()
    _night(origin, "night4", monkeypatch)
    assert pipeline(only_changed=True) == {} and calls == []


def test_a_push_that_loses_the_race_is_refused_and_corrupts_nothing(origin, monkeypatch, caplog):
    _fake_here(monkeypatch)
    late = _night(origin, "late", monkeypatch)
    _night(origin, "early", monkeypatch)
    pipeline(only_changed=True)  # pushes first
    pushed = _origin_lock(origin)
    monkeypatch.chdir(late)  # the same stages from the same commit, other outputs: dvc.lock conflicts
    assert list(pipeline(only_changed=True)) == list(STAGES)  # the run stands
    assert _origin_lock(origin) == pushed  # never forced over
    warned = [r.getMessage() for r in caplog.records if persist.PUSH_ENV in r.getMessage()]
    assert len(warned) == 1 and "origin/main moved while this run ran and its dvc.lock conflicts" in warned[0]
    assert not (late / ".git" / "rebase-merge").exists() and _git(late, "status", "--porcelain") == ""

    calls = _fake_here(monkeypatch)
    _night(origin, "next", monkeypatch)
    assert pipeline(only_changed=True) == {} and calls == []  # the winner's records are whole: nothing to redo


def test_keeping_the_records_is_opt_in_and_its_failures_are_one_line(origin, monkeypatch):
    clone = _night(origin, "night", monkeypatch)
    for stage in STAGES:  # what a run's stages wrote
        _write_outs(stage, 3)
    log = ListLogger()
    persist.after_run(log, list(STAGES), True, {persist.PUSH_ENV: "0"})
    assert log.lines == [f"dvc commit -f {' '.join(STAGES)}: outputs recorded in dvc.lock"]
    assert _origin_lock(origin) == {} and not _git(clone, "log", "--format=%s", "origin/main..HEAD")  # off: nothing
    assert persist.enabled({persist.PUSH_ENV: "true"}) and not persist.enabled({})

    _git(clone, "remote", "set-url", "origin", "https://bot:tk-secret@127.0.0.1:9/nowhere.git")
    persist.after_run(log, list(STAGES), True, {persist.PUSH_ENV: "1"})
    assert log.lines[-1].startswith("TOOLTUNE_NIGHTLY_PUSH: this run's records are not kept for the next run: "
                                    "git push to origin/main failed: ")
    assert "secret" not in log.lines[-1] and len(log.lines) == 3  # dvc commit, then one warning
    _dvc("remote", "default", "--unset", cwd=clone)
    with pytest.raises(persist.PersistError, match=r"^no default DVC remote: outputs not pushed"):
        persist.persist(list(STAGES), "x")
