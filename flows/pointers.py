"""The hand-over of a run that is not the one dvc.yaml describes (`--profile gpu`, `-S ...`): transient .dvc files.

Such a run writes into a workdir of its own (`runs/gpu`), whose files are no dvc.yaml outs, so dvc.lock cannot name
them. They travel as DVC data all the same. A `.dvc` file (a pointer: path, md5, size of each out) is written in a
fresh folder at the repo root, `.tooltune-handover-*/` (DVC refuses a .dvc file where git or .dvcignore ignore it),
`dvc commit -f` hashes the paths into the cache and `dvc push` sends them to the default remote. (Not `dvc add`:
DVC 3 dropped its `--file`, and it writes `<out>.dvc` beside the out, inside the git-ignored `runs/`.) The pointer's
`outs` are what travels (a flow parameter one way, the stage result the other); the other side writes the same
pointer and `dvc pull --force`s exactly those versions. The folder goes once the command is done; nothing reaches
git, and dvc.yaml and dvc.lock are left alone.

- parent, before sending a stage: `push` the stage's data deps found in the workdir (`inputs`);
- worker: `pull` them, run the stage, `push` its outs and metrics file (`outputs`) and return the pointer's outs;
- parent, after: `check_inside` the workdir, then `pull` them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from components.config import Params
from flows import dvcfile
from flows.dvcfile import dvc

FOLDER_PREFIX = ".tooltune-handover-"


def _paths(params: Params) -> dict[str, str]:
    return {k: str(v) for k, v in params.paths.model_dump().items()}


def inputs(stage: str, params: Params, root: str | Path = ".") -> list[str]:
    """The stage's data deps in this run's workdir that exist here (repo-relative); a missing one is left out, and the
    stage fails on it where it runs, as it would here."""
    found = dvcfile.stage_inputs(stage, _paths(params), params.project.workdir, root)
    return [p for p in found if (Path(root) / p).exists()]


def outputs(stage: str, params: Params, root: str | Path = ".") -> list[str]:
    """The stage's outs and metrics file in this run's workdir that exist, but `persist` ones (the evaluation cache:
    each side keeps its own)."""
    found = dvcfile.stage_outs(stage, _paths(params), params.project.workdir, root)
    return [o.path for o in found if not o.persist and (Path(root) / o.path).exists()]


@contextmanager
def _pointer(outs: list[dict[str, Any]], root: str | Path) -> Iterator[str]:
    """A .dvc file naming `outs` (paths repo-relative) in a fresh folder at the repo root; yields its path relative
    to the root, and removes the folder after."""
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=root))
    try:
        entries = [{**o, "path": Path(os.path.relpath(Path(root) / o["path"], folder)).as_posix()} for o in outs]
        (folder / "handover.dvc").write_text(yaml.safe_dump({"outs": entries}, sort_keys=False), encoding="utf-8")
        yield f"{folder.name}/handover.dvc"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def push(paths: list[str], root: str | Path = ".") -> list[dict[str, Any]]:
    """Hash these paths into DVC's cache and push them to the default remote; returns the pointer's outs (path
    repo-relative, md5, size, ...): what names these very versions on the other side."""
    if not paths:
        return []
    with _pointer([{"path": p} for p in paths], root) as pointer:
        dvc("commit", "-f", pointer, cwd=root)
        dvc("push", pointer, cwd=root)
        written = yaml.safe_load((Path(root) / pointer).read_text(encoding="utf-8"))["outs"]
    return [{**out, "path": path} for out, path in zip(written, paths, strict=True)]


def pull(outs: list[dict[str, Any]], root: str | Path = ".") -> None:
    """Fetch exactly these versions from the default remote into their paths (`--force`: a stale copy is replaced,
    files a folder no longer has are deleted)."""
    if outs:
        with _pointer(outs, root) as pointer:
            dvc("pull", "--force", pointer, cwd=root)


def hashes(outs: list[dict[str, Any]]) -> dict[str, str]:
    """`{path: md5}` of a pointer's outs (for the lineage tags)."""
    return {o["path"]: o.get("md5", "?") for o in outs}


def check_inside(stage: str, outs: list[dict[str, Any]], params: Params, root: str | Path = ".") -> None:
    """Every path a remote run returned lies in this run's workdir (a pull may replace files there, nowhere else).

    Raises:
        RuntimeError: One does not, or the result holds no pointer.
    """
    prefix = dvcfile.workdir_prefix(params.project.workdir, root)
    outside = [o.get("path") for o in outs if not _within(str(o.get("path", "")), prefix)]
    if outside:
        raise RuntimeError(f"{stage}: the remote run returned paths outside this run's workdir {prefix}: {outside}; "
                           "do both sides run the same commit with the same --profile and -S values?")


def _within(path: str, prefix: str) -> bool:
    norm = Path(os.path.normpath(path)).as_posix()
    return not norm.startswith("..") and not os.path.isabs(norm) and (prefix == "." or norm.startswith(prefix + "/"))


def describe(outs: Mapping[str, str]) -> str:
    """`path@md5[:8]` list for log lines."""
    return ", ".join(f"{p}@{m[:8]}" for p, m in outs.items()) or "(nothing)"
