"""The dvc.lock hand-over of flows/remote.py without servers: merging entries, the hashes they name, the metrics
file rebuilt from a remote result, and a result without a lock entry. The real round trip (servers, workers, S3):
tests/integration/test_remote_stages.py.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml

from components.data.fileio import write_json
from flows import remote


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
    tags = remote.run_tags("tooltune-stage/gpu", "gpu", {"sft": _entry(("artifacts/sft", "c.dir"))})
    assert tags[remote.RAN_ON_TAG] == "tooltune-stage/gpu" and tags[remote.POOL_TAG] == "gpu"
    assert tags[remote.PULLED_TAG] == '{"artifacts/sft": "c.dir"}' and tags[remote.HOST_TAG]
    assert set(remote.run_tags(remote.LOCAL)) == {remote.RAN_ON_TAG, remote.HOST_TAG}
