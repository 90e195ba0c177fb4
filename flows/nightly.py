"""Which stages a nightly run must run: DVC decides, the flow runs only those (`tooltune run --only-changed`).

A stage is stale when `dvc status` reports a change in its deps (data, code), params or outs against dvc.lock, or
when a stage it depends on (`dvc dag`) is stale: that one's outputs will change. Every other stage is skipped. No
dvc.lock yet: every stage is stale. Orchestration only: DVC is asked through its command line, as `dvc repro` would
decide, and nothing here reads the ML code.

In a fresh checkout (the deployment's `git_clone` pull step) the outputs dvc.lock records are not in the workspace;
when the repo has a default DVC remote, `dvc pull --allow-missing` fetches them first, so a missing file is not
mistaken for a change (nor is a missing evaluation cache: see `changed_stages`). For that dvc.lock to be the last
night's, the nightly run pushes it (flows/persist.py, `$TOOLTUNE_NIGHTLY_PUSH`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from flows import dvcfile
from flows.dvcfile import dvc

UP_TO_DATE = "up to date, nothing to retrain"
EDGE = re.compile(r'^\s*"(?P<src>[^"]+)"\s*->\s*"(?P<dst>[^"]+)"\s*;?\s*$')


@dataclass(frozen=True)
class Plan:
    """The stages to run and to skip, in pipeline order, and why each one runs."""

    run: list[str]
    skipped: list[str]
    reasons: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: what runs and why, or that the pipeline is up to date."""
        if not self.run:
            return f"{UP_TO_DATE}: dvc status reports no change in any stage's data, code, params or outputs"
        why = "; ".join(f"{s}: {self.reasons[s]}" for s in self.run)
        skipped = ", ".join(self.skipped) or "-"
        return f"{len(self.run)} stage(s) to run, {len(self.skipped)} up to date ({skipped}): {why}"


def changed_stages(cwd: str | Path = ".") -> dict[str, str]:
    """`dvc status --json`: {stage: what changed} for each stage whose deps, params or outs differ from dvc.lock.

    A missing out that dvc.yaml keeps out of DVC's cache and across runs (`cache: false, persist: true`: the
    evaluation cache) is no change: no remote holds it, so a fresh clone never has it, and the stage rebuilds it as
    needed.
    """
    report = json.loads(dvc("status", "--json", cwd=cwd) or "{}")
    here = Path(cwd).resolve()
    kept = {o.path for outs in dvcfile.all_outs(dvcfile.own_paths(here), here, here).values()
            for o in outs if o.persist and not o.cache}
    changed = {name.rsplit(":", 1)[-1]: _without_missing(entries, kept) for name, entries in report.items()}
    return {name: _change_text(entries) for name, entries in changed.items() if entries}


def _without_missing(entries: list, kept: set[str]) -> list:
    """The status entries without `{"changed outs": {path: "deleted"}}` of these paths."""
    out = []
    for entry in entries:
        if isinstance(entry, dict) and "changed outs" in entry:
            outs = {p: c for p, c in entry["changed outs"].items() if not (p in kept and c == "deleted")}
            entry = {**entry, "changed outs": outs} if outs else {k: v for k, v in entry.items() if k != "changed outs"}
        if entry:
            out.append(entry)
    return out


def _change_text(entries: list) -> str:
    """`[{"changed deps": {"params.yaml": {"sft": "modified"}}}, ...]` -> "changed deps: params.yaml (sft modified)"."""
    parts = []
    for entry in entries:
        if isinstance(entry, str):  # e.g. "always changed"
            parts.append(entry)
            continue
        for kind, files in entry.items():
            shown = [f"{path} ({', '.join(f'{k} {v}' for k, v in change.items())})" if isinstance(change, dict)
                     else f"{path} {change}" for path, change in files.items()]
            parts.append(f"{kind}: {', '.join(shown)}")
    return "; ".join(parts)


def downstream(edges: Iterable[tuple[str, str]], roots: Iterable[str]) -> set[str]:
    """The roots and every stage reachable from them along `edges` (upstream -> downstream)."""
    after: dict[str, set[str]] = {}
    for src, dst in edges:
        after.setdefault(src, set()).add(dst)
    seen, todo = set(roots), list(roots)
    while todo:
        for nxt in after.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def dag_edges(cwd: str | Path = ".") -> list[tuple[str, str]]:
    """`dvc dag --dot`: (upstream, downstream) stage pairs, from the outputs each stage depends on."""
    return [(m["src"], m["dst"]) for m in map(EDGE.match, dvc("dag", "--dot", cwd=cwd).splitlines()) if m]


def fetch_recorded_outputs(cwd: str | Path = ".") -> bool:
    """`dvc pull --allow-missing` when a default remote is set (a fresh checkout); returns whether it pulled."""
    if not dvcfile.default_remote(cwd):
        return False
    dvc("pull", "--allow-missing", cwd=cwd)
    return True


def plan(selected: list[str], cwd: str | Path = ".") -> Plan:
    """Split `selected` (pipeline order) into the stages DVC finds stale, upstream changes included, and the rest."""
    changed = changed_stages(cwd)
    stale = downstream(dag_edges(cwd), changed) if changed else set()
    reasons = {s: changed.get(s) or "a stage it depends on reruns" for s in stale}
    return Plan([s for s in selected if s in stale], [s for s in selected if s not in stale],
                {s: reasons[s] for s in selected if s in stale})
