"""Child Python processes for stages that spread their work over the CPU cores.

A child is `python -m <module> <args>`, its input and output in files of the caller's scratch folder. Not
`multiprocessing`: its spawned workers import the caller's main script again, which breaks for a script without a
main guard and for code read from standard input, and fork is unsafe in a process with threads (Prefect's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])  # where `components` imports from, wherever the caller runs


@contextmanager
def started(module: str, args: list[str], what: str) -> Iterator[Callable[[], None]]:
    """Start `python -m module *args`; yields the function that waits for it to end.

    Leaving the block kills a child still running, so a caller that fails first leaves none behind.

    The waiting function raises RuntimeError when the child failed (a bug, not bad data): the message names
    `what` and ends with the child's last error lines.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL, stderr=log,
                                 env=env)

        def wait() -> None:
            if child.wait():
                log.seek(0)
                tail = log.read().decode("utf-8", errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{what} failed (exit {child.returncode}): " + " | ".join(tail))

        try:
            yield wait
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
