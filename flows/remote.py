"""The hand-over between the pipeline and a stage run on another machine: DVC's remote, not a shared disk.

Both sides are checkouts of the same commit (code, params.yaml, dvc.yaml) sharing only the DVC remote (S3) and
the MLflow and Prefect servers. The way data travels is chosen once per run (`handover_mode`):

`lock`, the run dvc.yaml describes (`dvc_applies`: the repo's params.yaml, no profile, no `-S`, the repo as workdir).
What a stage consumed and produced travels as `dvc.lock` entries (per out: path and md5), which name the exact
versions in the remote:
- parent, before sending a stage: `dvc commit -f` the stages that ran here since the last hand-over, `dvc push`
  every upstream stage in its dvc.lock, and pass those entries as a parameter (`upstream_entries`);
- worker (`stage_flow`): `merge_lock` them into its own dvc.lock, `dvc pull` them (the very hashes), run the
  stage, `dvc commit -f` + `dvc push` it, and return its own entry in the result (`details["dvc_lock"]`);
- parent, after: `accept_remote` merges that entry, `dvc pull`s the stage and writes back its metrics file (an
  uncached out: DVC never transfers it) from the returned metrics, checked against the entry's md5.

`pointers`, any other run whose workdir lies in the repo apart from dvc.yaml's outs (`--profile gpu`: runs/gpu):
the same steps with transient .dvc files instead of dvc.lock (flows/pointers.py). The parent pushes the stage's
data deps and passes the pointer's outs (`upstream_outs`: path, md5, size); the worker pulls exactly those, runs
the stage with the same profile and `-S` values, pushes its outs and metrics file and returns their pointer
(`details["dvc_outs"]`), which the parent pulls.

Refused before any stage runs, in one line (`ConfigError`): remote stages outside a DVC repo, without a default
DVC remote, with a workdir outside the repo, or with outputs that are dvc.yaml's own (`-S` on the repo's workdir:
add `-S project.workdir=runs/<name>`).

Who ran a stage is recorded as MLflow tags on its run (`run_tags`) and in its result's details.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from components import STAGES
from components.config import ConfigError, Params
from components.data.fileio import atomic_file, write_json
from components.tracking import HOST_TAG, RAN_ON_TAG
from flows import dvcfile, pointers
from flows.dvcfile import dvc

LOCK = "dvc.lock"
POOL_TAG = "tooltune.work_pool"  # with RAN_ON_TAG and HOST_TAG (every stage run has those, `local` by default)
PULLED_TAG, PUSHED_TAG = "tooltune.dvc_pulled", "tooltune.dvc_pushed"
LOCAL = "local"
BY_LOCK, BY_POINTERS = "lock", "pointers"  # the two ways of `handover_mode`


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


def run_tags(ran_on: str, pool: str | None = None, pulled: Mapping[str, str] | None = None) -> dict[str, str]:
    """MLflow tags saying where a stage ran and, for a remote stage, which versions it pulled (`{path: md5}`)."""
    tags = {RAN_ON_TAG: ran_on, HOST_TAG: socket.gethostname()}
    if pool:
        tags[POOL_TAG] = pool
    if pulled:
        tags[PULLED_TAG] = json.dumps(dict(pulled), sort_keys=True)[:6000]  # MLflow's limit on a tag value
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



def dvc_applies(params_path: str, params: Params, root: str | Path = ".") -> bool:
    """DVC's dvc.yaml describes this run: the repo's params.yaml (no profile, no `-S` overrides) and the repo as
    workdir, in a DVC repo at `root`."""
    here = Path(root).resolve()
    return (params.profile is None and not params.overrides and Path(params_path).resolve() == here / "params.yaml"
            and Path(params.project.workdir).resolve() == here and dvcfile.is_dvc_repo(here))


def handover_mode(params_path: str, params: Params, routed: Iterable[str], root: str | Path = ".") -> str:
    """How the data of these remote stages travels: `lock` for the run dvc.yaml describes, else `pointers`.

    Raises:
        ConfigError: No way works: `root` is not a DVC repo or has no default remote, the workdir is outside it,
            or this run's outputs would be dvc.yaml's own outs (DVC gives a path one owner).
    """
    who = f"remote stages ({', '.join(routed)})"
    here = Path(root).resolve()
    if not dvcfile.is_dvc_repo(here):
        raise ConfigError(f"{who} get their data through DVC, and {here} is not a DVC repo (no dvc.yaml and .dvc/): "
                          "run tooltune from the project's checkout")
    if not dvcfile.default_remote(here):
        raise ConfigError(f"{who} get their data through the default DVC remote, and {here} has none: "
                          "`dvc remote add -d NAME URL` (infra/README.md)")
    if dvc_applies(params_path, params, here):
        return BY_LOCK
    try:
        dvcfile.workdir_prefix(params.project.workdir, here)
    except ConfigError as err:
        raise ConfigError(f"{who}: {err}") from None
    paths = {k: str(v) for k, v in params.paths.model_dump().items()}
    mine = [o.path for outs in dvcfile.all_outs(paths, params.project.workdir, here).values() for o in outs]
    theirs = [o.path for outs in dvcfile.all_outs(dvcfile.own_paths(here), here, here).values() for o in outs]
    clash = dvcfile.overlaps(mine, theirs)
    if clash:
        raise ConfigError(f"{who}: this run (profile {params.profile}, {len(params.overrides)} -S override(s)) writes "
                          f"where dvc.yaml's stages do ({', '.join(clash[:3])}{', ...' if len(clash) > 3 else ''}), "
                          "paths dvc.lock records for `dvc repro`, so DVC cannot hand them over apart: give the run a "
                          "workdir of its own, add `-S project.workdir=runs/<name>`")
    return BY_POINTERS


class Handover:
    """The parent's side of one run's hand-overs: push what a remote stage reads, pull back what it wrote."""

    def __init__(self, mode: str | None, params: Params, root: str | Path = "."):
        self.mode, self.params, self.root = mode, params, root
        self.unrecorded: list[str] = []  # lock: stages run here since the last hand-over, not in dvc.lock yet

    @classmethod
    def for_run(cls, params_path: str, params: Params, routed: list[str], root: str | Path = ".") -> Handover:
        """The hand-over of a run sending `routed` stages away (none: nothing to hand over); raises ConfigError
        before any stage runs when no way works (`handover_mode`)."""
        return cls(handover_mode(params_path, params, routed, root) if routed else None, params, root)

    def ran_here(self, stage: str) -> None:
        """`stage` ran in this process: with `lock`, its outputs go into dvc.lock before the next hand-over."""
        if self.mode == BY_LOCK:
            self.unrecorded.append(stage)

    def send(self, stage: str) -> dict[str, Any]:
        """Push what `stage` reads; returns the `stage_flow` parameters naming those versions."""
        if self.mode == BY_LOCK:
            upstream = push_upstream(stage, self.unrecorded, self.root)
            self.unrecorded.clear()
            return {"upstream_entries": upstream}
        if self.mode == BY_POINTERS:
            return {"upstream_outs": pointers.push(pointers.inputs(stage, self.params, self.root), self.root)}
        return {}

    def receive(self, stage: str, result: dict) -> None:
        """Bring the remote stage's outputs here, the very versions its result names.

        Raises:
            RuntimeError: The result names none (the worker did not push) or names paths outside the workdir.
        """
        if self.mode == BY_LOCK:
            accept_remote(stage, result, self.params, self.root)
        elif self.mode == BY_POINTERS:
            outs = result.get("details", {}).get("dvc_outs")
            if outs is None:
                raise RuntimeError(f"{stage}: the remote run returned no DVC pointer (details.dvc_outs), so its "
                                   "outputs cannot be pulled here; does the worker run this commit of tooltune?")
            pointers.check_inside(stage, outs, self.params, self.root)
            pointers.pull(outs, self.root)


def worker_mode(params_path: str, params: Params, upstream_entries: dict | None, upstream_outs: list | None,
                root: str | Path = ".") -> str | None:
    """The worker's way: the parent's (`pointers` when it sent pointer outs, `lock` when it sent dvc.lock entries);
    sent nothing: `lock` for the run dvc.yaml describes, else None (a stage flow run by hand, no hand-over).

    Raises:
        ConfigError: The parent sent dvc.lock entries, but here the run is not the one dvc.yaml describes.
    """
    if upstream_outs is not None:
        return BY_POINTERS
    applies = dvc_applies(params_path, params, root)
    if upstream_entries is not None and not applies:
        raise ConfigError(f"the parent sent dvc.lock entries, but this checkout ({Path(root).resolve()}) does not run "
                          f"the repo's own params.yaml in a DVC repo (params {params_path}, profile {params.profile}): "
                          "do both sides run the same commit with the same params?")
    return BY_LOCK if applies else None


def worker_pull(stage: str, mode: str | None, params: Params, upstream_entries: dict[str, Any] | None,
                upstream_outs: list[dict[str, Any]] | None, root: str | Path = ".") -> dict[str, str]:
    """Pull the stage's inputs (`lock`: the given entries, else every upstream stage of this checkout's dvc.lock;
    `pointers`: the given outs); returns `{path: md5}` of what it pulled."""
    if mode == BY_LOCK:
        if upstream_entries is None:
            lock = read_lock(root)
            upstream_entries = {s: lock[s] for s in STAGES[:STAGES.index(stage)] if s in lock}
        pull_entries(upstream_entries, root)
        return out_hashes(upstream_entries)
    if mode == BY_POINTERS:
        pointers.check_inside(stage, upstream_outs or [], params, root)
        pointers.pull(upstream_outs or [], root)
        return pointers.hashes(upstream_outs or [])
    return {}


def worker_push(stage: str, mode: str, params: Params, root: str | Path = ".") -> dict[str, Any]:
    """Record and push the stage's outputs; returns the result details the parent pulls them by (`dvc_lock` or
    `dvc_outs`) and `dvc_pushed` (`{path: md5}`)."""
    if mode == BY_LOCK:
        entry = commit_and_push(stage, root)
        return {"dvc_lock": entry, "dvc_pushed": out_hashes(entry)}
    outs = pointers.push(pointers.outputs(stage, params, root), root)
    return {"dvc_outs": outs, "dvc_pushed": pointers.hashes(outs)}
