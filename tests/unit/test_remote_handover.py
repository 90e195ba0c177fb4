"""The hand-over of flows/remote.py without servers. The dvc.lock way: merging entries, the hashes they name, the
metrics file rebuilt from a remote result, and a result without a lock entry. The .dvc pointer way (a profile, -S
values): real DVC in a temporary git repo with a local-folder remote and a clone of it, the stage's inputs handed
to the clone and its outputs back, hashes checked; and the runs neither way can hand over, refused in one line.
The round trip through servers and workers: tests/integration/test_remote_stages.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, load_params
from components.data.fileio import write_json
from flows import remote
from tests.conftest import REPO


def _entry(*outs: tuple[str, str]) -> dict:
    return {"cmd": "python -m x", "outs": [{"path": p, "hash": "md5", "md5": m} for p, m in outs]}


def test_merge_replaces_the_given_stages_keeps_the_others_in_pipeline_order(tmp_path):
    remote.merge_lock({"sft": _entry(("artifacts/sft", "a.dir")), "base": _entry(("artifacts/base", "b.dir"))},
                      tmp_path)
    remote.merge_lock({"sft": _entry(("artifacts/sft", "c.dir")), "ingest": _entry(("data/raw/e.jsonl", "d"))},
                      tmp_path)
    lock = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert lock["schema"] == "2.0" and list(lock["stages"]) == ["base", "ingest", "sft"]
    assert remote.out_hashes(remote.read_lock(tmp_path)) == {
        "artifacts/base": "b.dir", "data/raw/e.jsonl": "d", "artifacts/sft": "c.dir"}
    assert remote.read_lock(tmp_path / "nowhere") == {}


def test_metrics_are_rebuilt_and_checked_against_the_lock(params_factory, tmp_path):
    params = params_factory()
    metrics = {"loss_first": 6.9, "loss_last": 6.2}
    write_json(tmp_path / "expected.json", metrics)  # what execute_stage wrote on the worker
    md5 = hashlib.md5((tmp_path / "expected.json").read_bytes()).hexdigest()
    entry = _entry(("artifacts/sft", "x.dir"), ("metrics/sft.json", md5))

    remote.restore_metrics("sft", metrics, entry, params, tmp_path)
    assert (tmp_path / "metrics" / "sft.json").read_bytes() == (tmp_path / "expected.json").read_bytes()
    with pytest.raises(RuntimeError, match=r"sft: metrics/sft.json rebuilt .* dvc.lock says " + md5):
        remote.restore_metrics("sft", {"loss_first": 1.0}, entry, params, tmp_path)


def test_a_remote_result_without_a_lock_entry_is_refused(params_factory, tmp_path):
    params = params_factory()
    with pytest.raises(RuntimeError, match="rl: the remote run returned no dvc.lock entry"):
        remote.accept_remote("rl", {"stage": "rl", "metrics": {}, "details": {}}, params, tmp_path)
    assert not (tmp_path / "dvc.lock").exists() and not (tmp_path / "metrics" / "rl.json").exists()


def test_run_tags_name_the_place_and_the_pulled_versions():
    tags = remote.run_tags("tooltune-stage/gpu", "gpu", remote.out_hashes({"sft": _entry(("artifacts/sft", "c.dir"))}))
    assert tags[remote.RAN_ON_TAG] == "tooltune-stage/gpu" and tags[remote.POOL_TAG] == "gpu"
    assert tags[remote.PULLED_TAG] == '{"artifacts/sft": "c.dir"}' and tags[remote.HOST_TAG]
    assert set(remote.run_tags(remote.LOCAL)) == {remote.RAN_ON_TAG, remote.HOST_TAG}


# --- runs dvc.yaml does not describe (a profile, -S values): .dvc pointers, real DVC, two checkouts ------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def checkouts(tmp_path) -> tuple[Path, Path]:
    """A git + DVC repo holding the project's dvc.yaml, params.yaml, ignore files and a local-folder default DVC
    remote (the parent's checkout), and a `git clone` of it (the worker's): they share only the remote."""
    parent, worker, store = tmp_path / "parent", tmp_path / "worker", tmp_path / "dvc-remote"
    parent.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, parent / name)
    _git(parent, "init", "-q", "-b", "main")
    remote.dvc("init", "-q", cwd=parent)
    remote.dvc("config", "core.analytics", "false", cwd=parent)
    remote.dvc("remote", "add", "-d", "store", str(store), cwd=parent)
    _git(parent, "add", "-A")
    _git(parent, "commit", "-qm", "pipeline")
    _git(tmp_path, "clone", "-q", str(parent), str(worker))
    return parent, worker


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _files(root: Path, rel: str) -> dict[str, str]:
    """{path under root: sha256} of a file or every file of a folder."""
    top = root / rel
    found = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in found}


def _md5_of(root: Path, out: dict) -> str:
    """DVC's md5 of a file; for a folder, the md5 of the listing DVC stores (its `.dir` object in the cache)."""
    if not out["md5"].endswith(".dir"):
        return hashlib.md5((root / out["path"]).read_bytes()).hexdigest()
    listing = root / ".dvc" / "cache" / "files" / "md5" / out["md5"][:2] / out["md5"][2:]
    entries = json.loads(listing.read_text())
    for entry in entries:  # every file the listing names has these very bytes in the folder
        assert hashlib.md5((root / out["path"] / entry["relpath"]).read_bytes()).hexdigest() == entry["md5"]
    assert {e["relpath"] for e in entries} == {p.relative_to(root / out["path"]).as_posix()
                                              for p in (root / out["path"]).rglob("*") if p.is_file()}
    return out["md5"]


def test_a_profile_runs_stage_is_handed_over_both_ways(checkouts, monkeypatch):
    parent, worker = checkouts
    # the parent ran base and build on the quick profile (workdir runs/quick): the sft stage's inputs
    _write(parent, "runs/quick/artifacts/base/model.safetensors", "base weights v2")
    _write(parent, "runs/quick/artifacts/base/tooltune.json", "{}")
    _write(parent, "runs/quick/data/splits/train.jsonl", '{"id": 1}\n')
    # the worker's checkout holds stale copies from an older run: they must be replaced, extra files removed
    _write(worker, "runs/quick/artifacts/base/model.safetensors", "base weights v1")
    _write(worker, "runs/quick/artifacts/base/old.bin", "gone after the pull")

    monkeypatch.chdir(parent)
    params = load_params("params.yaml", "quick")
    handover = remote.Handover.for_run("params.yaml", params, ["sft"])
    assert handover.mode == remote.BY_POINTERS
    sent = handover.send("sft")
    assert set(sent) == {"upstream_outs"}
    outs = sent["upstream_outs"]
    assert [o["path"] for o in outs] == ["runs/quick/artifacts/base", "runs/quick/data/splits"]  # dvc.yaml's deps
    assert [_md5_of(parent, o) for o in outs] == [o["md5"] for o in outs]

    monkeypatch.chdir(worker)  # the worker: same commit and profile, nothing shared but the DVC remote
    wparams = load_params("params.yaml", "quick")
    mode = remote.worker_mode("params.yaml", wparams, None, outs)
    pulled = remote.worker_pull("sft", mode, wparams, None, outs)
    assert pulled == {o["path"]: o["md5"] for o in outs}
    for out in outs:
        assert _files(worker, out["path"]) == _files(parent, out["path"])  # the very bytes, stale copy replaced
    # the stage (its work is not this test's subject): writes its outs, the metrics file and the persisted cache
    for rel, text in (("artifacts/sft/model.safetensors", "sft weights"), ("reports/sft_loss.csv", "step,loss\n"),
                      ("reports/sft_loss.png", "png"), ("metrics/sft.json", '{"loss_last": 1.5}'),
                      ("artifacts/eval_cache/x/verdicts.json", "{}")):
        _write(worker, f"runs/quick/{rel}", text)
    details = remote.worker_push("sft", mode, wparams)
    returned = details["dvc_outs"]
    assert [o["path"] for o in returned] == [f"runs/quick/{p}" for p in (
        "artifacts/sft", "reports/sft_loss.csv", "reports/sft_loss.png", "metrics/sft.json")]  # not the cache
    assert details["dvc_pushed"] == {o["path"]: _md5_of(worker, o) for o in returned}
    assert not list(worker.glob(".tooltune-handover-*")) and _git(worker, "status", "--porcelain") == ""

    monkeypatch.chdir(parent)
    handover.receive("sft", {"stage": "sft", "metrics": {}, "details": details})
    for out in returned:
        assert _files(parent, out["path"]) == _files(worker, out["path"])
    assert not (parent / "runs/quick/artifacts/eval_cache").exists()
    assert not list(parent.glob(".tooltune-handover-*")) and _git(parent, "status", "--porcelain") == ""
    assert not (parent / "dvc.lock").exists() and not (worker / "dvc.lock").exists()  # dvc.lock is not touched


def test_a_result_naming_paths_outside_the_workdir_is_refused(checkouts, monkeypatch):
    parent, _ = checkouts
    monkeypatch.chdir(parent)
    handover = remote.Handover(remote.BY_POINTERS, load_params("params.yaml", "quick"))
    with pytest.raises(RuntimeError, match=r"sft: the remote run returned paths outside this run's workdir "
                                           r"runs/quick: \['params.yaml'\]"):
        handover.receive("sft", {"details": {"dvc_outs": [{"path": "params.yaml", "md5": "x"}]}})
    with pytest.raises(RuntimeError, match="sft: the remote run returned no DVC pointer"):
        handover.receive("sft", {"details": {}})


def test_dvc_itself_refuses_a_second_owner_of_a_dvc_yaml_out(checkouts):
    """Why a run writing dvc.yaml's own paths is refused up front: DVC gives a path one owner."""
    parent, _ = checkouts
    _write(parent, "artifacts/sft/model.safetensors", "w")
    with pytest.raises(RuntimeError, match=r"(?s)dvc add artifacts/sft failed.*overlap"):
        remote.dvc("add", "artifacts/sft", cwd=parent)


def test_runs_no_way_can_hand_over_are_refused_in_one_line(checkouts, monkeypatch, tmp_path):
    parent, _ = checkouts
    monkeypatch.chdir(parent)
    default = load_params("params.yaml", "")
    assert remote.handover_mode("params.yaml", default, ["sft"]) == remote.BY_LOCK  # the run dvc.yaml describes
    overrides = load_params("params.yaml", "", ["sft.max_steps=7"])
    with pytest.raises(ConfigError, match=r"^remote stages \(sft, rl\): this run \(profile None, 1 -S override\(s\)\) "
                                          r"writes where dvc.yaml's stages do \(artifacts/base, .*add "
                                          r"`-S project.workdir=runs/<name>`$"):
        remote.handover_mode("params.yaml", overrides, ["sft", "rl"])
    own = load_params("params.yaml", "", ["sft.max_steps=7", "project.workdir=runs/mine"])
    assert remote.handover_mode("params.yaml", own, ["sft"]) == remote.BY_POINTERS
    outside = load_params("params.yaml", "quick", [f"project.workdir={tmp_path / 'elsewhere'}"])
    with pytest.raises(ConfigError, match=r"workdir .*elsewhere is outside the DVC repo"):
        remote.handover_mode("params.yaml", outside, ["sft"])
    remote.dvc("remote", "default", "--unset", cwd=parent)
    with pytest.raises(ConfigError, match=r"has none: `dvc remote add -d NAME URL`"):
        remote.handover_mode("params.yaml", own, ["sft"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"is not a DVC repo \(no dvc.yaml and .dvc/\)"):
        remote.handover_mode(str(parent / "params.yaml"), own, ["sft"])
