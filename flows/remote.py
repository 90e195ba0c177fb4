"""The hand-over between the pipeline and a stage run on another machine: DVC's lock entries, not a shared disk.

Both sides are checkouts of the same commit (code, params.yaml, dvc.yaml) sharing only the DVC remote (S3) and
the MLflow and Prefect servers. What a stage consumed and produced travels as `dvc.lock` entries (per out: path
and md5), which name the exact versions in the remote:

- parent, before sending a stage: `dvc commit -f` the stages that ran here since the last hand-over, `dvc push`
  every upstream stage in its dvc.lock, and pass those entries as a parameter (`upstream_entries`);
- worker (`stage_flow`): `merge_lock` them into its own dvc.lock, `dvc pull` them (the very hashes), run the
  stage, `dvc commit -f` + `dvc push` it, and return its own entry in the result (`details["dvc_lock"]`);
- parent, after: `accept_remote` merges that entry, `dvc pull`s the stage and writes back its metrics file (an
  uncached out: DVC never transfers it) from the returned metrics, checked against the entry's md5.

Who ran a stage is recorded as MLflow tags on its run (`run_tags`) and in its result's details.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from components import STAGES
from components.config import Params
from components.data.fileio import atomic_file, write_json
from components.tracking import HOST_TAG, RAN_ON_TAG

LOCK = "dvc.lock"
POOL_TAG = "tooltune.work_pool"  # with RAN_ON_TAG and HOST_TAG (every stage run has those, `local` by default)
PULLED_TAG, PUSHED_TAG = "tooltune.dvc_pulled", "tooltune.dvc_pushed"
LOCAL = "local"


def dvc(*args: str, cwd: str | Path = ".") -> str:
    """Run `dvc` from this Python environment; raise RuntimeError with its output on failure."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def read_lock(root: str | Path = ".") -> dict[str, Any]:
    """`{stage: lock entry}` of `root/dvc.lock`; empty when there is none."""
    path = Path(root) / LOCK
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages") or {}


def merge_lock(entries: Mapping[str, Any], root: str | Path = ".") -> None:
    """Replace (or add) these stages' entries in `root/dvc.lock`, atomically; the other stages stay as they are."""
    path = Path(root) / LOCK
    lock = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    lock = lock or {"schema": "2.0", "stages": {}}
    lock.setdefault("stages", {}).update(entries)
    ordered = {s: lock["stages"][s] for s in STAGES if s in lock["stages"]}  # pipeline order, others after
    lock["stages"] = {**ordered, **lock["stages"]}
    with atomic_file(path) as out:
        yaml.safe_dump(lock, out, sort_keys=False)


def out_hashes(entries: Mapping[str, Any]) -> dict[str, str]:
    """`{out path: md5}` of every out of these lock entries: the versions they name."""
    return {out["path"]: out.get("md5", "?") for entry in entries.values() for out in entry.get("outs", [])}


def push_upstream(stage: str, ran_here: Iterable[str], root: str | Path = ".") -> dict[str, Any]:
    """Record and push what `stage` needs from here; returns the upstream stages' lock entries.

    `ran_here`: stages this process ran since the last hand-over, whose outputs dvc.lock does not record yet.
    Upstream stages that never ran anywhere (no entry) are left out: the stage fails on its missing input.
    """
    fresh = [s for s in STAGES if s in set(ran_here)]
    if fresh:
        dvc("commit", "-f", *fresh, cwd=root)
    lock = read_lock(root)
    upstream = {s: lock[s] for s in STAGES[:STAGES.index(stage)] if s in lock}
    if upstream:
        dvc("push", *upstream, cwd=root)
    return upstream


def pull_entries(entries: Mapping[str, Any], root: str | Path = ".") -> None:
    """Write these entries into dvc.lock and pull exactly those versions (`--force`: stale local copies go)."""
    if entries:
        merge_lock(entries, root)
        dvc("pull", "--force", *entries, cwd=root)


def commit_and_push(stage: str, root: str | Path = ".") -> dict[str, Any]:
    """`dvc commit -f` + `dvc push` one stage; returns its new lock entry `{stage: entry}`."""
    dvc("commit", "-f", stage, cwd=root)
    dvc("push", stage, cwd=root)
    return {stage: read_lock(root)[stage]}


def accept_remote(stage: str, result: dict, params: Params, root: str | Path = ".") -> None:
    """Bring a remote stage's outputs here: write back its metrics file, merge its lock entry and pull it.

    Raises:
        RuntimeError: The result carries no lock entry (the worker did not push), or the metrics it returned do
            not match the md5 its entry records.
    """
    entry = result.get("details", {}).get("dvc_lock") or {}
    if stage not in entry:
        raise RuntimeError(f"{stage}: the remote run returned no dvc.lock entry, so its outputs cannot be pulled "
                           "here; does the worker's checkout use the default params in a DVC repo (dvc_applies)?")
    restore_metrics(stage, result.get("metrics", {}), entry[stage], params, root)
    pull_entries(entry, root)


def restore_metrics(stage: str, metrics: dict[str, float], entry: dict[str, Any], params: Params,
                    root: str | Path = ".") -> None:
    """Write `metrics/<stage>.json` from the returned metrics: an uncached out (`cache: false` in dvc.yaml), so
    not in the DVC remote. The bytes must match the md5 the stage's lock entry records (same writer, same dict).
    """
    path = params.path("metrics") / f"{stage}.json"
    write_json(path, metrics)
    rel = path.resolve().relative_to(Path(root).resolve()).as_posix()
    want = {o["path"]: o.get("md5") for o in entry.get("outs", [])}.get(rel)
    got = hashlib.md5(path.read_bytes()).hexdigest()
    if want is not None and want != got:
        raise RuntimeError(f"{stage}: {rel} rebuilt from the returned metrics has md5 {got}, dvc.lock says {want}")


def run_tags(ran_on: str, pool: str | None = None, pulled: Mapping[str, Any] | None = None) -> dict[str, str]:
    """MLflow tags saying where a stage ran and, for a remote stage, which versions it pulled."""
    tags = {RAN_ON_TAG: ran_on, HOST_TAG: socket.gethostname()}
    if pool:
        tags[POOL_TAG] = pool
    if pulled:
        tags[PULLED_TAG] = json.dumps(out_hashes(pulled), sort_keys=True)[:6000]  # MLflow's limit on a tag value
    return tags


def where_am_i() -> tuple[str, str | None]:
    """(`<flow>/<deployment>` or `local`, work pool name) of the flow run this code runs in."""
    from prefect.context import FlowRunContext
    from prefect.runtime import deployment

    ctx = FlowRunContext.get()
    name = deployment.get_name() if ctx is not None else None
    if not name:
        return LOCAL, None
    return f"{ctx.flow.name}/{name}", ctx.flow_run.work_pool_name if ctx.flow_run else None

