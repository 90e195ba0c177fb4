"""One run per workdir: an exclusive lock that every pipeline run and every stage takes on `project.workdir`.

Two runs in one workdir (two `tooltune run`, or `tooltune run` beside `dvc repro`) would swap `data/splits/`
under each other and record each other's outputs in `dvc.lock`. So the flow holds this lock from start to end,
and each stage takes it again (`tracking.execute_stage`), which also covers `tooltune stage` and the
`python -m components.<stage>` that `dvc repro` runs. A second run fails at once with `WorkdirBusy`, naming
the holder.

The lock is `fcntl.flock` on `<workdir>/.tooltune.lock`: the OS drops it when the holding process ends, however
it ends (SIGKILL included), so there is never a stale lock to clean up. The holder writes its pid, host, start
time and command into the file for the next one's error message. Within one process the lock is re-entrant
(a count per workdir): `tooltune run` holds it and then runs the stages in the same process, some in Prefect's
worker threads. Locks are per process, not per thread: two threads of one process are not kept apart.
Between two stages of one `dvc repro` the lock is free (each stage is its own process).

Reads/writes: `<workdir>/.tooltune.lock` (kept; empty while nobody holds it).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".tooltune.lock"
_HELD: dict[Path, list[int]] = {}  # resolved workdir -> [file descriptor, depth] of the locks this process holds
_GUARD = threading.Lock()


class WorkdirBusy(RuntimeError):
    """Another process runs the pipeline or a stage in this workdir; the message names it."""


@contextmanager
def hold(workdir: str | Path, what: str) -> Iterator[Path]:
    """Hold the workdir's lock while the block runs; re-entrant within this process.

    Args:
        workdir: `project.workdir` (created if missing).
        what: What holds it, for the next one's message, e.g. `tooltune run` or `stage sft`.

    Yields:
        The lock file.

    Raises:
        WorkdirBusy: Another process holds it; raised at once, nothing waits.
    """
    root = Path(workdir).resolve()
    path = root / LOCK_FILE
    with _GUARD:
        held = _HELD.get(root)
        if held is not None:
            held[1] += 1
        else:
            _HELD[root] = [_acquire(path, what), 1]
    try:
        yield path
    finally:
        with _GUARD:
            held = _HELD[root]
            held[1] -= 1
            if held[1] == 0:
                del _HELD[root]
                _release(held[0])


def _acquire(path: Path, what: str) -> int:
    """Lock `path` without waiting and write the holder's details into it; returns the open descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC by default: `dvc` subprocesses do not inherit it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkdirBusy(f"workdir {path.parent} is in use: {describe(path)}; wait for it to end or stop it "
                          f"(the lock goes with the process)") from None
    except BaseException:
        os.close(fd)
        raise
    holder = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": f"{what}: {shlex.join(sys.argv)}"}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    return fd


def _release(fd: int) -> None:
    """Empty the file (nobody holds it now), then unlock; the file stays, so no one locks a deleted inode."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def describe(path: Path) -> str:
    """The holder as its lock file names it: `pid 123 on host h since <time> (<command>)`."""
    for _ in range(20):  # the holder writes its details just after locking: give it a moment
        try:
            holder = json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            holder = None
        if isinstance(holder, dict):
            return (f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')} "
                    f"({holder.get('command')})")
        time.sleep(0.05)
    return "by a process that has not written its details"
