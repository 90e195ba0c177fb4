"""The `dvc` command, and what dvc.yaml says each stage reads and writes as paths of one run: its `${paths.*}` filled
in from that run's params and placed under its workdir, relative to the DVC repo's root (as dvc.lock and .dvc files
write them).

The remote hand-over of a run that is not the one dvc.yaml describes (a profile, `-S`) sends exactly these paths
(flows/pointers.py), and refuses a run whose outputs would be dvc.yaml's own (DVC lets one path have one owner).
The nightly run reads which outs are uncached (`cache: false`): they travel in git, or not at all.
Orchestration only: dvc.yaml is read as YAML, no stage code is imported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError

DVC_YAML = "dvc.yaml"
PATH_VAR = re.compile(r"\$\{paths\.(\w+)\}")


def dvc(*args: str, cwd: str | Path = ".") -> str:
    """Run `dvc` from this Python environment; raise RuntimeError with its output on failure."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def default_remote(root: str | Path = ".") -> str | None:
    """The name of the repo's default DVC remote, or None when none is set."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=root, capture_output=True,
                          text=True, check=False)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None  # exit 1: "No default remote set"


def is_dvc_repo(root: str | Path = ".") -> bool:
    """A DVC repo with a pipeline: dvc.yaml and .dvc/ in `root`."""
    return (Path(root) / DVC_YAML).is_file() and (Path(root) / ".dvc").is_dir()


@dataclass(frozen=True)
class Out:
    """One out or metrics file of a stage: its path from the repo root and the options dvc.yaml gives it."""

    path: str
    cache: bool = True
    persist: bool = False


@lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict[str, Any]:
    """The `stages` of a dvc.yaml, read once per version of the file."""
    return (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("stages") or {}


def _stages(root: str | Path) -> dict[str, Any]:
    path = (Path(root) / DVC_YAML).resolve()
    return _read(str(path), path.stat().st_mtime_ns)


def _spec(root: str | Path, stage: str) -> dict[str, Any]:
    stages = _stages(root)
    if stage not in stages:
        raise ConfigError(f"{Path(root) / DVC_YAML}: no stage {stage!r}")
    return stages[stage]


def _fill(entry: str, paths: Mapping[str, str], prefix: str) -> str:
    """`${paths.x}/file` -> `<prefix>/<paths.x>/file`, normalised, posix; any other `${...}` is a ConfigError."""
    filled = PATH_VAR.sub(lambda m: str(paths[m.group(1)]), entry)
    if "${" in filled:
        raise ConfigError(f"{DVC_YAML}: cannot resolve {entry!r}: only ${{paths.*}} variables are known here")
    return Path(os.path.normpath(os.path.join(prefix, filled))).as_posix()


def workdir_prefix(workdir: str | Path, root: str | Path = ".") -> str:
    """The workdir relative to the repo root (`.` for the root itself).

    Raises:
        ConfigError: The workdir lies outside the repo, where DVC cannot track anything.
    """
    try:
        return Path(workdir).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"workdir {workdir} is outside the DVC repo {Path(root).resolve()}: DVC can hand over "
                          "only paths inside it; use a workdir under it, e.g. -S project.workdir=runs/<name>") from None


def stage_outs(stage: str, paths: Mapping[str, str], workdir: str | Path, root: str | Path = ".") -> list[Out]:
    """The stage's `outs` and `metrics` for a run with these `paths` values in `workdir`."""
    spec, prefix = _spec(root, stage), workdir_prefix(workdir, root)
    found = []
    for entry in spec.get("outs", []) + spec.get("metrics", []):
        name, opts = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        found.append(Out(_fill(name, paths, prefix), bool((opts or {}).get("cache", True)),
                         bool((opts or {}).get("persist", False))))
    return found


def stage_inputs(stage: str, paths: Mapping[str, str], workdir: str | Path, root: str | Path = ".") -> list[str]:
    """The stage's data deps (those dvc.yaml writes with `${paths.*}`: other stages' outputs), for this run; code
    deps are the checkout's own."""
    spec, prefix = _spec(root, stage), workdir_prefix(workdir, root)
    return [_fill(d, paths, prefix) for d in spec.get("deps", []) if PATH_VAR.search(d)]


def own_paths(root: str | Path = ".") -> dict[str, str]:
    """The `paths` section of the repo's params.yaml: what DVC fills dvc.yaml's `${paths.*}` with."""
    raw = yaml.safe_load((Path(root) / "params.yaml").read_text(encoding="utf-8")) or {}
    return {k: str(v) for k, v in (raw.get("paths") or {}).items()}


def all_outs(paths: Mapping[str, str], workdir: str | Path, root: str | Path = ".") -> dict[str, list[Out]]:
    """`{stage: outs}` of every stage of dvc.yaml, for a run with these `paths` in `workdir`."""
    return {stage: stage_outs(stage, paths, workdir, root) for stage in _stages(root)}


def overlaps(mine: Iterable[str], theirs: Iterable[str]) -> list[str]:
    """The paths of `mine` equal to, inside or around one of `theirs` (repo-relative, posix)."""
    theirs = list(theirs)

    def clash(a: str, b: str) -> bool:
        return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")

    return sorted({a for a in mine if any(clash(a, b) for b in theirs)})
