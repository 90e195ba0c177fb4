"""Atomic writes under real kills: a child process swaps a folder in with `atomic_dir` (or writes a file with
`atomic_file`) and is SIGKILLed at each named point of the swap, or after a random delay; `sweep_stale` then
leaves the complete old or the complete new version, byte for byte, and no scratch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.data.fileio import atomic_dir, atomic_file, sweep_stale

ROOT = Path(__file__).resolve().parents[2]

# argv: target, source folder (the new version), kill point ("" = none). Prints "written" when the block has
# copied the new version in and atomic_dir's commit (sync, swap, delete of the old) begins, "committed" when it
# ends: random kills fall between the two. A target ending in .json is written with atomic_file instead, killed inside the block.
CHILD = """
import os, shutil, signal, sys
from pathlib import Path
from components.data import fileio

target, source, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if point:
    fileio._checkpoint = lambda at: os.kill(os.getpid(), signal.SIGKILL) if at == point else None
if target.suffix == ".json":
    with fileio.atomic_file(target) as handle:
        handle.write("new" * 1000)
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
with fileio.atomic_dir(target) as tmp:
    shutil.copytree(source, tmp, dirs_exist_ok=True)
    print("written", flush=True)
print("committed", flush=True)
"""


def version(folder: Path, number: int, files: int) -> dict[str, bytes]:
    """Write version `number` of a folder (a file set and bytes unlike every other version's); returns it."""
    out = {f"f{i:05d}.txt": f"v{number} file {i}\n".encode() * (1 + i % 5)
           for i in range(files) if (i + number) % 7}
    out[f"sub{number}/inner.bin"] = bytes(range(256)) * (number + 1)
    for name, data in out.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return out


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """Every file under `folder` (relative path -> bytes), None if the folder is missing."""
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _child(target: Path, source: Path | str = "", point: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(target), str(source), point],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.parametrize("point, survivor", [("written", "old"), ("aside", "old"), ("swapped", "new"),
                                             ("deleting", "new")])
def test_a_kill_at_each_point_of_the_swap_leaves_old_or_new_whole(tmp_path, point, survivor):
    work, folder = tmp_path / "work", tmp_path / "work" / "splits"
    old, new = version(folder, 1, 300), version(tmp_path / "new", 2, 300)
    child = _child(folder, tmp_path / "new", point)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"the swap never reached point {point!r}"
    sweep_stale(work)
    assert snapshot(folder) == (old if survivor == "old" else new)
    assert os.listdir(work) == ["splits"]  # no scratch, no folder left aside


def test_a_kill_inside_atomic_file_leaves_the_old_file_and_the_sweep_its_scratch(tmp_path):
    target = tmp_path / "metrics" / "build.json"
    target.parent.mkdir()
    target.write_text('{"old": 1}')
    child = _child(target)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert len(os.listdir(target.parent)) == 2  # the killed write's scratch file
    sweep_stale(tmp_path)
    assert os.listdir(target.parent) == ["build.json"] and target.read_text() == '{"old": 1}'


def test_kills_at_random_moments_of_a_large_swap(tmp_path):
    """A folder of 2,000 files swapped in by a child killed at a random moment of the commit, ten times (fewer if
    the machine is so slow that they pass 40 s): each time the sweep leaves the complete version before or after,
    and the next swap starts from it."""
    work, rng, started = tmp_path / "work", random.Random(0), time.monotonic()
    folder = work / "splits"
    versions = {0: version(folder, 0, 2000), 1: version(tmp_path / "v1", 1, 2000), 2: version(tmp_path / "v2", 2, 2000)}

    def swap(number: int, kill_after: float | None) -> tuple[float, int]:
        child = _child(folder, tmp_path / f"v{number}")
        assert child.stdout.readline().strip() == "written"
        start = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        committed = child.stdout.readline().strip() == "committed"
        took = time.monotonic() - start
        child.wait(timeout=120)
        return took, committed

    duration, _ = swap(1, None)  # an uncut commit, to spread the kills over its length
    assert snapshot(folder) == versions[1]
    current, runs, cut = 1, 0, 0
    while runs < 10 and (runs < 3 or time.monotonic() - started < 40):
        new = 3 - current
        cut += not swap(new, rng.uniform(0.0, duration))[1]
        sweep_stale(work)
        state = snapshot(folder)
        assert state in (versions[current], versions[new]), f"kill {runs + 1}: neither version whole"
        assert os.listdir(work) == ["splits"]
        current, runs = new if state == versions[new] else current, runs + 1
    assert cut >= min(3, runs)  # most kills land before the commit is done


def test_a_failed_block_keeps_the_old_folder_and_leaves_no_scratch(tmp_path):
    folder = tmp_path / "out"
    old = version(folder, 1, 5)
    with pytest.raises(RuntimeError), atomic_dir(folder) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("stage failed")
    assert snapshot(folder) == old and os.listdir(tmp_path) == ["out"]
    with pytest.raises(RuntimeError), atomic_file(folder / "f.txt") as handle:
        handle.write("half")
        raise RuntimeError("stage failed")
    assert snapshot(folder) == old


def test_the_sweep_spares_other_hidden_folders_and_what_only_looks_like_scratch(tmp_path):
    keep = [tmp_path / ".git" / ".x.abcdefgh.tmp", tmp_path / ".vscode.settings", tmp_path / "data" / "a.abcdefgh"]
    for path in keep:
        path.mkdir(parents=True)
    (tmp_path / "data" / ".raw.jsonl.ab12cd34.tmp").write_text("scratch")
    assert sweep_stale(tmp_path) == [tmp_path / "data" / ".raw.jsonl.ab12cd34.tmp"]
    assert all(path.exists() for path in keep)


def test_a_stage_starts_from_the_old_folder_a_killed_swap_left_aside(params_factory, migrated_db, tmp_path,
                                                                      monkeypatch):
    """`tracking.execute_stage` sweeps the workdir first: a build killed between its two renames left `splits`
    missing and the old version at `.splits.aside`; the next stage finds `splits` whole and no scratch."""
    import shutil
    import types

    import mlflow

    from components import tracking
    from components.result import StageResult

    for var in ("MLFLOW_TRACKING_URI", tracking.PARENT_ENV, "TOOLTUNE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    params = params_factory()
    splits = params.path("splits")
    old, _ = version(splits, 1, 50), version(tmp_path / "new", 2, 50)
    child = _child(splits, tmp_path / "new", "aside")
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL and not splits.exists()
    seen: dict = {}

    def run(params):  # stands in for the stage that reads the splits
        seen.update(splits=snapshot(splits), beside=sorted(os.listdir(splits.parent)))
        return StageResult(stage="evaluate")

    monkeypatch.setitem(sys.modules, "components.evaluate", types.ModuleType("components.evaluate"))
    sys.modules["components.evaluate"].run = run
    try:
        tracking.execute_stage("evaluate", params)
    finally:
        while mlflow.active_run():
            mlflow.end_run("KILLED")
    assert seen == {"splits": old, "beside": ["splits"]}


def test_a_link_in_the_way_is_replaced_and_what_it_points_to_kept(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "keep.txt").write_text("kept")
    (tmp_path / "out").symlink_to(tmp_path / "real")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "new.txt").write_text("new")
    assert snapshot(tmp_path / "out") == {"new.txt": b"new"} and not (tmp_path / "out").is_symlink()
    assert snapshot(tmp_path / "real") == {"keep.txt": b"kept"} and sorted(os.listdir(tmp_path)) == ["out", "real"]


def test_the_sweep_leaves_a_nested_workdir_to_its_own_runs(tmp_path):
    """`runs/quick` is a workdir inside the default one: a run there may be mid-swap while a stage here starts."""
    nested = tmp_path / "runs" / "quick"
    (nested / "data" / ".splits.a1b2c3d4.tmp").mkdir(parents=True)  # another run's swap in progress
    (nested / ".tooltune.lock").write_text("")
    (tmp_path / "data" / ".splits.e5f6a7b8.tmp").mkdir(parents=True)  # this workdir's leftover
    touched = sweep_stale(tmp_path, other_root=".tooltune.lock")
    assert touched == [tmp_path / "data" / ".splits.e5f6a7b8.tmp"]
    assert (nested / "data" / ".splits.a1b2c3d4.tmp").is_dir()
