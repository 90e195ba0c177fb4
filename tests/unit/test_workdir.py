"""One run per workdir: the lock against real second processes (`tooltune stage`, DVC's `python -m`), and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from components.tracking.workdir import LOCK_FILE, WorkdirBusy, hold
from flows import cli

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOOLTUNE_PROFILE": ""}
HOLDER = """
import sys, time
from components.tracking.workdir import hold
with hold(sys.argv[1], "test holder"):
    print("held", flush=True)
    time.sleep(600)
"""
PROBE = """
import sys
from components.tracking.workdir import WorkdirBusy, hold
try:
    with hold(sys.argv[1], "probe"):
        print("free")
except WorkdirBusy as err:
    print(f"busy: {err}")
"""


def _python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


def probe(workdir: Path) -> str:
    """What another process sees: `free`, or `busy: <message>`."""
    return _python("-c", PROBE, str(workdir)).stdout.strip()


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path's lock; killed at the end if the test has not."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_second_stage_fails_at_once_naming_the_holder(tmp_path, params_factory, holder, capsys):
    params_factory()
    start = time.monotonic()
    done = _python("-m", "flows.cli", "stage", "base", "--params", str(tmp_path / "params.yaml"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: workdir ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"pid {holder.pid} on host " in done.stderr and "(test holder: " in done.stderr
    assert time.monotonic() - start < 60  # the holder sleeps 600 s: nothing waited for it
    assert not (tmp_path / "artifacts").exists()  # the stage did not start

    dvc_cmd = _python("-m", "components.ingest", cwd=tmp_path)  # what `dvc repro` runs: params.yaml in cwd
    assert dvc_cmd.returncode == 2 and f"pid {holder.pid}" in dvc_cmd.stderr, dvc_cmd.stderr
    assert "Traceback" not in dvc_cmd.stderr and not (tmp_path / "data").exists()

    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert cli.main(["stage", "base", "--params", str(tmp_path / "params.yaml")]) == 0  # no stale lock
    assert (tmp_path / "artifacts" / "base" / "config.json").is_file()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: the file stays, empty


def test_tooltune_run_fails_before_prefect_starts(tmp_path, params_factory, holder, capsys):
    params_factory()
    assert cli.main(["run", "--params", str(tmp_path / "params.yaml"), "--stages", "ingest"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: workdir {tmp_path} is in use: pid {holder.pid}") and "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_in_process_holds_nest_and_release_at_the_outermost(tmp_path):
    with hold(tmp_path, "outer"):
        assert str(os.getpid()) in (tmp_path / LOCK_FILE).read_text()
        with hold(tmp_path, "inner"):  # `tooltune run` then its in-process stages
            seen: list[Path] = []

            def in_thread() -> None:  # a Prefect worker thread of the same process: let in
                with hold(tmp_path, "thread") as lock:
                    seen.append(lock)

            thread = threading.Thread(target=in_thread)
            thread.start()
            thread.join()
            assert seen == [tmp_path / LOCK_FILE]
        busy = probe(tmp_path)
        assert busy.startswith(f"busy: workdir {tmp_path} is in use: pid {os.getpid()}") and "(outer: " in busy
    assert probe(tmp_path) == "free"


def test_missing_workdir_is_created(tmp_path):
    with hold(tmp_path / "runs" / "quick", "tooltune run") as lock:
        assert lock == tmp_path / "runs" / "quick" / LOCK_FILE and lock.is_file()


def test_busy_is_raised_not_waited_for(tmp_path, holder):
    start = time.monotonic()
    with pytest.raises(WorkdirBusy, match=f"pid {holder.pid} on host"):
        with hold(tmp_path, "second"):
            pass
    assert time.monotonic() - start < 2
