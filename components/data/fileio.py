"""File I/O every stage shares: atomic writes (files and whole folders), the sweep that finishes or undoes
what a killed write left, small JSON/JSONL writers, and the garbage-collector pauses for big object graphs.

Writes are atomic: a scratch file `.NAME.XXXXXXXX.tmp` beside the target, synced to disk, then renamed over it;
a folder is swapped in by renames (old aside, new in, old deleted), so a kill leaves the complete old or the
complete new version, never a mix (`sweep_stale` settles the rest at the next stage start). Reads of JSON lines
go through `components.data.inputs`, the one strict reader.
`gc_paused` and `gc_exempt` keep Python's cyclic garbage collector from walking 100k episodes over and over
while they are built and used (it has nothing to free there: episodes hold no reference cycles).
"""

from __future__ import annotations

import gc
import json
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

from components.data.inputs import DataError, iter_json_lines

T = TypeVar("T")

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # `json.dumps(row, ensure_ascii=False)`, built once, not per row
# scratch names of atomic_file / atomic_dir: "." + target name + "." + 8 random letters (tempfile, secrets) [+ ".tmp"]
_SCRATCH = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<tmp>\.tmp)?$")
_ASIDE = ".aside"  # suffix of the old folder while atomic_dir swaps the new one in


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a block builds many objects that all stay alive.

    Reading or generating 100k episodes allocates millions of containers, and every collection walks the ones
    already built again: half the time of such a loop. Reference counting still frees whatever dies inside
    the block; the collector resumes (if it was on) when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def gc_exempt(build: Callable[[], T]) -> Iterator[T]:
    """What `build()` returns, built with the cyclic GC paused and kept out of its collections until the block ends.

    For an object graph that lives through the block (100k episodes: millions of containers): no collection walks
    it while it is built (`gc_paused`), and it is frozen (`gc.freeze`) before the collector resumes, so none walks
    it after either. Each walk costs about 2 s, and what follows (heavy imports, frames, rendering) triggers many:
    validate's tokenizer and GX imports took twice as long. What the block allocates is collected as usual; at the
    end the frozen objects rejoin the oldest generation, unless objects had been frozen before (`gc.unfreeze`
    would thaw those too, so all stay frozen).
    """
    frozen_before = gc.get_freeze_count()
    with gc_paused():
        built = build()
        gc.freeze()
    try:
        yield built
    finally:
        if not frozen_before:
            gc.unfreeze()


@contextmanager
def atomic_file(path: str | Path) -> Iterator[TextIO]:
    """Open a text handle whose content replaces `path` only when the block ends without error.

    The text goes to a scratch file `.NAME.XXXXXXXX.tmp` beside `path`, which is flushed to disk (`fsync`) before
    it is renamed over `path`, and the folder is synced after: a crash or power cut leaves the old file or the
    complete new one, never an empty or truncated one. A kill can leave the scratch file; `sweep_stale` removes it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; outputs are ordinary readable files
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync(path.parent)  # the rename itself is durable only once the folder is synced
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A scratch folder beside `path` that replaces it only when the block ends without error.

    The block fills `.NAME.XXXXXXXX.tmp`; then every file and folder in it is synced to disk and it is swapped in
    by renames only: the old `path` moves aside to `.NAME.aside`, the new folder moves to `path`, and only then is
    the old one (renamed to a scratch name first) deleted. A kill at any point leaves either the complete old
    folder (at `path`, or at `.NAME.aside` with `path` missing) or the complete new one at `path`, plus scratch;
    `sweep_stale`, run at every stage start, moves an orphaned `.NAME.aside` back and deletes the scratch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        fsync_tree(tmp)
        _checkpoint("written")
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _checkpoint(point: str) -> None:
    """Called at each named point of `atomic_dir`'s swap ("written", "aside", "swapped", "deleting"); does nothing.

    The crash tests replace it in a child process with one that kills the process at a chosen point.
    """


def _swap_in(new: Path, path: Path) -> None:
    """Replace `path` with the complete folder `new` by renames (see `atomic_dir`), then delete the old one."""
    aside = path.parent / f".{path.name}{_ASIDE}"
    if aside.exists():  # left by a swap killed before its clean-up; the new folder replaces both
        _discard(aside)
    had_old = path.exists() or path.is_symlink()
    if had_old:
        path.rename(aside)
        _fsync(path.parent)
        _checkpoint("aside")
    new.rename(path)
    _fsync(path.parent)
    _checkpoint("swapped")
    if had_old:
        _discard(aside)


def _discard(folder: Path) -> None:
    """Delete a folder: renamed to a scratch name first, so a kill mid-way leaves scratch, never a partial folder
    under a name that `sweep_stale` would restore."""
    trash = folder.parent / f".{folder.name.lstrip('.')}.{secrets.token_hex(4)}.tmp"
    folder.rename(trash)
    _fsync(folder.parent)
    if trash.is_symlink() or not trash.is_dir():  # a link is removed, never what it points to
        trash.unlink()
        return
    for root, dirs, files in os.walk(trash, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
            _checkpoint("deleting")
        for name in dirs:
            entry = os.path.join(root, name)
            os.unlink(entry) if os.path.islink(entry) else os.rmdir(entry)
    os.rmdir(trash)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (model weights need not fit in memory twice)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path | str) -> None:
    """Flush one file or folder to disk (a folder: the names it holds, e.g. a rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` to disk, folders after what they hold."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            entry = os.path.join(folder, name)
            if not os.path.islink(entry):
                _fsync(entry)
        _fsync(folder)


def sweep_stale(root: str | Path, other_root: str | None = None) -> list[Path]:
    """Undo what killed atomic writes left under `root` (searched recursively, skipping other hidden folders, and
    folders holding a file named `other_root`: another workdir, which its own runs sweep under their own lock);
    returns the leftovers restored or removed.

    - `.NAME.aside` (an old folder `atomic_dir` moved aside): moved back to NAME when NAME is missing (killed
      between the two renames: the old version is the complete one), deleted otherwise.
    - `.NAME.XXXXXXXX.tmp` (scratch files and folders of `atomic_file` and `atomic_dir`): deleted.
    - a folder `.NAME.XXXXXXXX` beside an existing folder NAME (scratch of `atomic_dir` before it used `.tmp`): deleted.

    Run it only where nothing writes under `root` meanwhile: at stage start (one stage at a time per workdir).
    """
    touched: list[Path] = []
    for folder, dirs, _ in os.walk(root):
        here = Path(folder)
        for name in dirs:  # first, so that the scan below sees a restored folder
            if name.startswith(".") and name.endswith(_ASIDE):
                _settle_aside(here / name, here / name[1:-len(_ASIDE)])
                touched.append(here / name)
        kept = []
        for entry in os.scandir(here):
            match, is_dir = _SCRATCH.match(entry.name), entry.is_dir(follow_symlinks=False)
            if match and (match["tmp"] or (is_dir and (here / match["name"]).is_dir())):
                shutil.rmtree(entry.path) if is_dir else os.unlink(entry.path)
                touched.append(Path(entry.path))
            elif is_dir and not entry.name.startswith(".") and not (
                    other_root and os.path.lexists(os.path.join(entry.path, other_root))):
                kept.append(entry.name)
        dirs[:] = sorted(kept)
    return touched


def _settle_aside(aside: Path, target: Path) -> None:
    """Move an old folder left aside back to `target` if that is missing, else delete it."""
    if target.exists() or target.is_symlink():
        _discard(aside)
    else:
        aside.rename(target)
        _fsync(target.parent)


def md_cell(text: str) -> str:
    """`text` as one markdown table cell: a `|` escaped, line breaks as spaces (ids, rule details, user data)."""
    return text.replace("|", "\\|").replace("\n", " ")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write JSON lines atomically (temporary file + rename)."""
    return write_lines(path, (_ENCODER.encode(row) for row in rows))


def write_lines(path: str | Path, lines: Iterable[str]) -> int:
    """Write one line per item atomically; returns how many were written."""
    count = 0
    with atomic_file(path) as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    return count


def read_jsonl(path: str | Path) -> list[Any]:
    """Every JSON value of a JSONL file (`components.data.inputs.iter_json_lines`); the first bad line raises DataError."""
    out = []
    for _, value in iter_json_lines(path):
        if isinstance(value, DataError):
            raise value
        out.append(value)
    return out


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically."""
    with atomic_file(path) as handle:
        json.dump(obj, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
