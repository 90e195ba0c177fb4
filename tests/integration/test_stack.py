"""`tooltune stack`: real MLflow, Prefect and moto S3 servers started, used by their own clients, stopped, restarted.

up -> status healthy -> an MLflow run (metric + proxied artifact), an S3 bucket and object, a Prefect work pool ->
a second `up` says it is up -> down: processes gone, ports free -> up again on the same ports: the run, the object
and the work pool are still there. Plus a service that cannot start (named with its log; the others stopped) and
a taken port given by flag.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import boto3
import psutil
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate

from components.config import ConfigError
from flows import cli, stack

pytestmark = pytest.mark.integration
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def aws_env(monkeypatch):
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def use_services(state: dict) -> dict:
    """Write through each service's own client; returns what to look for after a restart."""
    client = MlflowClient(state["mlflow"]["url"])
    run = client.create_run(client.create_experiment("stack-test"))
    client.log_metric(run.info.run_id, "accuracy", 0.75)
    client.log_text(run.info.run_id, "hello from the stack test", "note.txt")  # proxied into DIR/mlflow/artifacts
    s3 = boto3.client("s3", endpoint_url=state["s3"]["url"])
    s3.create_bucket(Bucket="stack-test")
    s3.put_object(Bucket="stack-test", Key="data/x.bin", Body=b"\x00payload\xff" * 1000)
    with SyncPrefectClient(state["prefect"]["url"]) as prefect:
        assert prefect.api_healthcheck() is None  # None: healthy; an exception otherwise
        prefect.create_work_pool(WorkPoolCreate(name="stack-test-pool", type="process"))
    return {"run_id": run.info.run_id}


def assert_data_survived(state: dict, seen: dict) -> None:
    client = MlflowClient(state["mlflow"]["url"])
    assert client.get_run(seen["run_id"]).data.metrics == {"accuracy": 0.75}
    note = client.download_artifacts(seen["run_id"], "note.txt")
    assert open(note, encoding="utf-8").read() == "hello from the stack test"
    s3 = boto3.client("s3", endpoint_url=state["s3"]["url"])
    assert s3.get_object(Bucket="stack-test", Key="data/x.bin")["Body"].read() == b"\x00payload\xff" * 1000
    assert stack.BUCKET in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    with SyncPrefectClient(state["prefect"]["url"]) as prefect:
        assert prefect.read_work_pool("stack-test-pool").type == "process"


@pytest.mark.slow
def test_up_use_down_up_again_keeps_the_data(tmp_path, aws_env, capsys):
    root = tmp_path / "stack"
    state, started = stack.up(root, {s: 0 for s in stack.SERVICES})  # 0: any free port (others may hold 5000)
    try:
        assert started == list(stack.SERVICES)
        assert [(r["service"], r["healthy"]) for r in stack.status(root)] == [(s, "yes") for s in stack.SERVICES]
        seen = use_services(state)
        assert "MLFLOW_TRACKING_URI=" + state["mlflow"]["url"] in (root / "stack.env").read_text()
        # keys from the environment, moto's dummy value only as a fallback: nothing secret is written
        assert 'export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"' in (root / "stack.env").read_text()

        capsys.readouterr()
        assert cli.main(["stack", "up", "--dir", str(root)]) == 0  # idempotent: nothing started
        out = capsys.readouterr().out
        assert f"already up in {root}" in out and f"export PREFECT_API_URL={state['prefect']['url']}" in out
        assert out.count(" yes") == 3

        pids = [state[s]["pid"] for s in stack.SERVICES]
        children = [c.pid for p in pids for c in psutil.Process(p).children(recursive=True)]
        assert cli.main(["stack", "down", "--dir", str(root)]) == 0
        assert not [p for p in pids + children if psutil.pid_exists(p)], "a service process survived `down`"
        assert all(stack.port_free(state[s]["port"]) for s in stack.SERVICES)
        assert [r["healthy"] for r in stack.status(root)] == ["down"] * 3
        assert not (root / "stack.env").exists() and (root / "mlflow" / "mlflow.db").is_file()

        again, started = stack.up(root, {s: state[s]["port"] for s in stack.SERVICES})
        assert started == list(stack.SERVICES) and again["mlflow"]["pid"] != state["mlflow"]["pid"]
        assert_data_survived(again, seen)
    finally:
        stack.down(root)


def test_a_service_that_cannot_start_is_named_with_its_log_and_the_others_stop(tmp_path):
    root = tmp_path / "stack"
    (root / "mlflow").mkdir(parents=True)
    (root / "mlflow" / "mlflow.db").write_bytes(b"not a database" * 400)  # a corrupt store: mlflow exits (~8 s)
    before = {c.pid for c in psutil.Process().children(recursive=True)}  # e.g. a Prefect test harness's server
    with pytest.raises(stack.StackError, match=r"stack: mlflow exited .*; see .*/logs/mlflow\.log"):
        stack.up(root, {"mlflow": 0, "s3": 0}, services=("mlflow", "s3"), timeout=120)
    assert stack.load_state(root) == {}  # the s3 server it started is stopped and forgotten
    left = [c for c in psutil.Process().children(recursive=True)
            if c.pid not in before and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running: {[c.cmdline() for c in left]}"


def test_a_taken_port_given_by_flag_is_a_user_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--s3-port {port} is taken"):
            stack.up(tmp_path, {"s3": port}, services=("s3",))


def test_a_stale_record_is_down_and_its_pid_is_never_signalled(tmp_path, capsys):
    """After a reboot stack.json names pids that are gone or reused: status says down, down signals nothing."""
    import os

    stale = {"pid": os.getpid(), "create_time": 0.0, "port": 1, "url": "http://127.0.0.1:1", "log": "x"}  # reused pid
    stack.save_state(tmp_path, {"mlflow": stale})
    assert cli.main(["stack", "status", "--dir", str(tmp_path)]) == 0
    assert [line.split()[-1] for line in capsys.readouterr().out.splitlines()[1:]] == ["down"] * 3
    assert cli.main(["stack", "down", "--dir", str(tmp_path)]) == 0  # this test process is still alive after it
    assert "nothing running" in capsys.readouterr().out and stack.load_state(tmp_path) == {}


def test_a_stepped_clock_does_not_lose_a_running_service(tmp_path):
    """Start times move when the wall clock is stepped: the recorded command line still finds the process; a pid
    reused by another command is still not it."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    child = subprocess.Popen(argv)
    try:
        for _ in range(50):  # until the child has exec'd (its command line is the one given)
            if psutil.Process(child.pid).cmdline() == argv:
                break
            time.sleep(0.1)
        stepped = {"pid": child.pid, "create_time": psutil.Process(child.pid).create_time() - 22.0, "cmdline": argv}
        assert stack.process(stepped) is not None
        assert stack.process({**stepped, "cmdline": [sys.executable, "-m", "mlflow", "server"]}) is None
        assert stack.process({k: v for k, v in stepped.items() if k != "cmdline"}) is None  # an older record
        child.kill()
        child.wait()
        assert stack.process(stepped) is None
    finally:
        child.kill()
