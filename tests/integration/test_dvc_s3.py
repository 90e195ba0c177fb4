"""DVC against an S3-compatible endpoint: moto's S3 server on loopback, credentials only from the environment.

In a scratch git + DVC repo: track a file, point an `s3://` remote at the server with `endpointurl`
(`dvc remote modify --local`, as infra/README.md documents), `dvc push`, wipe the cache and the file,
`dvc pull`, and get the same bytes and the same md5 back.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.test_dvc_repro import _sh

pytestmark = pytest.mark.integration
BUCKET = "tooltune-dvc"
DVC = (sys.executable, "-m", "dvc")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch) -> Iterator[str]:
    """A moto S3 server on a free loopback port with an empty bucket; AWS_* credentials set for boto3 and DVC."""
    import boto3
    from moto.server import ThreadedMotoServer

    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def test_push_wipe_pull_round_trip(s3_endpoint, tmp_path):
    import boto3

    repo = tmp_path / "repo"
    data = repo / "data" / "episodes.jsonl"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"".join(f'{{"id": "e{i}", "text": "episode {i}"}}\n'.encode() for i in range(200)))
    content = data.read_bytes()
    _sh(repo, "git", "init", "-q")
    _sh(repo, *DVC, "init", "-q")
    _sh(repo, *DVC, "add", "data/episodes.jsonl")
    _sh(repo, *DVC, "remote", "add", "-d", "s3", f"s3://{BUCKET}/cache")
    _sh(repo, *DVC, "remote", "modify", "--local", "s3", "endpointurl", s3_endpoint)
    assert "access_key" not in (repo / ".dvc" / "config").read_text() + (repo / ".dvc" / "config.local").read_text()

    pushed = _sh(repo, *DVC, "push")
    assert "1 file pushed" in pushed
    md5 = yaml.safe_load((repo / "data" / "episodes.jsonl.dvc").read_text())["outs"][0]["md5"]
    assert md5 == hashlib.md5(content).hexdigest()
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"cache/files/md5/{md5[:2]}/{md5[2:]}"]

    shutil.rmtree(repo / ".dvc" / "cache")
    data.unlink()
    pulled = _sh(repo, *DVC, "pull")
    assert "1 file fetched" in pulled or "A\tdata/episodes.jsonl" in pulled
    assert data.read_bytes() == content and hashlib.md5(data.read_bytes()).hexdigest() == md5


def test_remote_is_committed_and_holds_no_credentials():
    config = (Path(__file__).resolve().parents[2] / ".dvc" / "config").read_text()
    assert "remote = local" in config and "['remote \"local\"']" in config
    assert "access_key" not in config and "secret" not in config
