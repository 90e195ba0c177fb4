"""What the flow guarantees around the stages: retries only for transient errors, a timeout per stage, a bounded
wait on the GPU deployment, and the workdir lock held for the whole run. Real flows under the session harness;
only the stage's work (`tracking.execute_stage`) is replaced, since Prefect's behaviour is what is under test.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import requests
import urllib3.exceptions
from botocore.exceptions import EndpointConnectionError
from mlflow.exceptions import MlflowException
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.states import Failed
from prefect.task_engine import TaskRunTimeoutError

from components import STAGES, tracking
from components.config import ConfigError, load_params
from components.data.episode import DataError
from components.result import StageResult
from components.tracking.workdir import WorkdirBusy
from flows import pipeline as pipeline_module
from flows.pipeline import StageTimeout, is_retryable, pipeline, stage_flow

pytestmark = pytest.mark.flows
REPO = Path(__file__).resolve().parents[2]


def _wrapped(cause: BaseException) -> MlflowException:
    """An MLflow error raised from a network error, as its REST client does for a timeout."""
    try:
        raise MlflowException("API request to http://mlflow/api failed") from cause
    except MlflowException as err:
        return err


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status}", response=response)


class TrackingUnavailable(DataError, OSError):
    """A user error that is also an OSError: user errors win."""


RETRIED = [OSError(errno.EIO, "I/O error"), ConnectionResetError(), ConnectionRefusedError(), TimeoutError(),
           BrokenPipeError(), requests.ConnectionError(), requests.Timeout(), _http_error(503), _http_error(429),
           urllib3.exceptions.ProtocolError("reset"), httpx.ConnectError("refused"),
           EndpointConnectionError(endpoint_url="https://s3"), _wrapped(requests.Timeout())]
NOT_RETRIED = [MemoryError(), RecursionError(), RuntimeError("CUDA error"), ValueError(), KeyError("x"),
               FileNotFoundError(2, "no such file"), PermissionError(), IsADirectoryError(), NotADirectoryError(),
               OSError(errno.ENOSPC, "no space left"), _http_error(404), requests.exceptions.InvalidURL(),
               DataError("bad"), ConfigError("bad"), WorkdirBusy("busy"), TrackingUnavailable("down"),
               TaskRunTimeoutError("too long"), StageTimeout("too long"), MlflowException("RESOURCE_DOES_NOT_EXIST"),
               _wrapped(DataError("bad"))]


@pytest.mark.parametrize("error", RETRIED, ids=lambda e: type(e).__name__)
def test_transient_errors_are_retried(error):
    assert is_retryable(None, None, Failed(data=error))


@pytest.mark.parametrize("error", NOT_RETRIED, ids=lambda e: type(e).__name__)
def test_deterministic_errors_are_not_retried(error):
    assert not is_retryable(None, None, Failed(data=error))


def _fake_stage(monkeypatch, errors: list[BaseException], seconds: float = 0.0, during=None) -> list[str]:
    """Replace the stage's work: raise `errors` in turn, else take `seconds` (calling `during`) and succeed."""
    calls: list[str] = []

    def execute_stage(stage, params, parent_run_id, tags=None):
        calls.append(stage)
        if errors:
            raise errors.pop(0)
        if during:
            during()
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # short sleeps: a timeout can interrupt it in any thread
            time.sleep(0.05)
        return StageResult(stage=stage, metrics={"n": 1.0})

    monkeypatch.setattr(tracking, "execute_stage", execute_stage)
    monkeypatch.setattr(pipeline_module, "run_stage", pipeline_module.run_stage.with_options(retry_delay_seconds=0))
    return calls


@pytest.mark.parametrize("error, calls", [(MemoryError(), 1), (RecursionError(), 1), (ConnectionResetError(), 2)])
def test_flow_retries_only_transient_errors(params_factory, tmp_path, monkeypatch, error, calls):
    params_factory()
    log = _fake_stage(monkeypatch, [error])
    if calls == 1:
        with pytest.raises(type(error)):
            pipeline(params_path=str(tmp_path / "params.yaml"), stages=["ingest"])
    else:
        pipeline(params_path=str(tmp_path / "params.yaml"), stages=["ingest"])
    assert log == ["ingest"] * calls


def test_stage_past_its_timeout_fails_without_retry(params_factory, tmp_path, monkeypatch):
    params_factory(orchestration={"stage_timeout_minutes": {"ingest": 0.02}})  # 1.2 s
    calls = _fake_stage(monkeypatch, [], seconds=60)
    start = time.monotonic()
    with pytest.raises(StageTimeout, match=r"ingest ran past its timeout of 0.02 min "
                                           r"\(orchestration.stage_timeout_minutes.ingest in "):
        pipeline(params_path=str(tmp_path / "params.yaml"), stages=["ingest"])
    assert time.monotonic() - start < 30 and calls == ["ingest"]


def test_every_stage_has_a_timeout():
    default, quick = (load_params(REPO / "params.yaml", p).orchestration for p in ("", "quick"))
    assert all(default.stage_timeout(s) > 0 for s in STAGES)
    assert quick.stage_timeout("sft") < default.stage_timeout("sft") and quick.stage_timeout("register") > 0


def test_wait_on_the_gpu_deployment_is_bounded(params_factory, tmp_path, monkeypatch):
    params_factory(orchestration={"stage_timeout_minutes": {"sft": 0.01}, "remote_start_minutes": 0.02})
    _dvc_repo(tmp_path)  # a remote stage's data goes through DVC (tests/flows/test_handover.py); nothing to send here
    monkeypatch.chdir(tmp_path)
    deployment_id = stage_flow.to_deployment(name="no-worker").apply()  # no worker will ever pick it up
    monkeypatch.setenv(pipeline_module.GPU_DEPLOYMENT_ENV, f"{stage_flow.name}/no-worker")
    start = time.monotonic()
    with pytest.raises(StageTimeout, match=r"sft on deployment .*no result within 0.03 min .* is cancelled"):
        pipeline(params_path=str(tmp_path / "params.yaml"), stages=["sft"])
    assert time.monotonic() - start < 60
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    assert [r.state.type.value for r in runs] == ["CANCELLED"]  # it cannot start later behind our back


def _dvc_repo(root: Path) -> None:
    """`root` as a git + DVC repo with the project's dvc.yaml and a local-folder default remote."""
    (root / "dvc.yaml").write_bytes((REPO / "dvc.yaml").read_bytes())
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for args in (("init", "-q"), ("remote", "add", "-d", "store", str(root.parent / "dvc-store"))):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, check=True, capture_output=True)


def test_flow_holds_the_workdir_lock_from_start_to_end(params_factory, tmp_path, monkeypatch):
    params_factory()
    seen: list[subprocess.CompletedProcess] = []

    def second_stage() -> None:  # while the flow runs: what `tooltune stage build` in another shell sees
        seen.append(subprocess.run([sys.executable, "-m", "flows.cli", "stage", "build", "--params",
                                    str(tmp_path / "params.yaml")], capture_output=True, text=True, cwd=REPO,
                                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300))

    _fake_stage(monkeypatch, [], during=second_stage)
    pipeline(params_path=str(tmp_path / "params.yaml"), stages=["ingest"])
    assert seen[0].returncode == 2, seen[0].stderr
    assert f"is in use: pid {os.getpid()} on host " in seen[0].stderr and "(tooltune run: " in seen[0].stderr
    assert (tmp_path / ".tooltune.lock").read_text() == ""  # released at the end
