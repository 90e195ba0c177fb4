"""`dvc repro` for real, in a temporary git repo: stages run, a second repro runs nothing, and a changed
param reruns only the stages downstream of it. Uses the quick profile's values (tiny model) as defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, _deep

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a whole dvc repro: 80 s


def _sh(cwd: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dvcrepo")
    shutil.copytree(REPO / "components", root / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in raw["profiles"]["quick"].items():
        raw[key] = _deep(raw[key], value)
    raw["project"]["workdir"] = "."
    raw["ingest"]["n_episodes"] = 300
    raw["tracking"]["uri"] = "sqlite:///mlflow.db"
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _sh(root, "git", "init", "-q")
    _sh(root, sys.executable, "-m", "dvc", "init", "-q")
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots", dirs_exist_ok=True)
    return root


def _ran(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage '")}


def test_repro_then_noop_then_only_downstream(repo):
    first = _sh(repo, sys.executable, "-m", "dvc", "repro", "build")
    assert _ran(first) == {"base", "ingest", "validate", "build"}
    assert (repo / "data" / "splits" / "test.jsonl").exists() and (repo / "dvc.lock").exists()
    second = _sh(repo, sys.executable, "-m", "dvc", "repro", "build")
    assert _ran(second) == set() and "up to date" in second
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["build"]["val_size"] += 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = _sh(repo, sys.executable, "-m", "dvc", "repro", "build")
    assert _ran(third) == {"build"}
    status = _sh(repo, sys.executable, "-m", "dvc", "status", "build")
    assert "up to date" in status  # build and everything upstream of it are recorded in dvc.lock


def test_experiment_metrics_diff_and_plots(repo, tmp_path):
    """`dvc exp run -S` reruns only what the param feeds, `dvc metrics diff` shows the change, plots render."""
    _sh(repo, sys.executable, "-m", "dvc", "repro", "build")  # the baseline (a no-op after the test above)
    (repo / ".gitignore").write_text("mlflow.db\nmlruns/\n__pycache__/\n")
    _sh(repo, "git", "add", "-A")
    _sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "baseline")
    val_size = yaml.safe_load((repo / "params.yaml").read_text())["build"]["val_size"]
    exp = _sh(repo, sys.executable, "-m", "dvc", "exp", "run", "build", "-S", f"build.val_size={val_size + 2}",
              "-n", "val")  # the `build` target: nothing downstream of it (no training) runs
    assert _ran(exp) == {"build"}
    diff = _sh(repo, sys.executable, "-m", "dvc", "metrics", "diff", "--json")
    # DVC appends a note on metrics files that stages not yet run would write; the JSON comes first
    changed = json.JSONDecoder().raw_decode(diff)[0]["metrics/build.json"]
    assert changed["val_episodes"] == {"old": val_size, "new": val_size + 2, "diff": 2}
    shown = _sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--json")
    assert '"name": "val"' in shown and f'"val_size": {val_size + 2}' in shown
    out = tmp_path / "plots"
    _sh(repo, sys.executable, "-m", "dvc", "plots", "show", "metrics/build.json", "-o", str(out))
    assert (out / "index.html").is_file()
