"""What a nightly run recorded, kept for the next night: outputs pushed to the DVC remote, dvc.lock committed to git
and pushed to the branch the checkout came from.

The nightly deployment clones the code afresh each night (prefect.yaml's `git_clone`), so a `dvc commit` that stays
in that clone is lost, and the next night would retrain from the old dvc.lock. With `$TOOLTUNE_NIGHTLY_PUSH` set to
1 (prefect.yaml sets it on the nightly deployment; unset or 0: nothing is pushed), an `--only-changed` run that ran
stages then:

1. `dvc push`es those stages' outputs to the default DVC remote (none set: nothing is committed either, since the
   next night could not pull what dvc.lock would name);
2. commits dvc.lock and the stages' uncached outs that git tracks (`metrics/*.json`; not git-ignored ones such as
   the evaluation cache) on the checkout's branch;
3. pushes that commit to the branch's upstream (`origin/<branch>`). If another run pushed first (rejected as not a
   fast-forward) it fetches the branch, rebases the commit on it and pushes again (up to `PUSH_TRIES` times); when
   the rebase conflicts (both runs rewrote the same dvc.lock entries) it aborts the rebase and gives up: nothing is
   ever force-pushed, the other run's dvc.lock stands, and this run's outputs are in the DVC remote all the same.

A rebased dvc.lock may pair entries of both runs; each entry names its own deps' hashes, so `dvc status` flags a
stage built on the other run's inputs as stale and the next night reruns it. Any failure is a `PersistError` with
one line (git's output with credentials in URLs removed); the flow logs it as a warning and the run stands.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flows import dvcfile
from flows.dvcfile import dvc

PUSH_ENV = "TOOLTUNE_NIGHTLY_PUSH"
PUSH_TRIES = 3
IDENTITY = ("tooltune nightly", "tooltune-nightly@localhost")  # the committer when the checkout has no git identity
CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")  # `https://user:token@host` in git's messages


class PersistError(RuntimeError):
    """The run's records could not be kept (pushed, committed or pushed to git); the run itself stands."""


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `$TOOLTUNE_NIGHTLY_PUSH` asks for it (1, true, yes or on)."""
    env = os.environ if environ is None else environ
    return env.get(PUSH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _git(*args: str, cwd: str | Path = ".", check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode:
        command = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise PersistError(f"git {command} failed: {_clean(proc.stderr or proc.stdout)}")
    return proc


def _identity(cwd: str | Path) -> list[str]:
    """`-c user.name=... -c user.email=...` when the checkout has no git identity (a fresh clone on a worker)."""
    if _git("config", "user.email", cwd=cwd, check=False).stdout.strip():
        return []
    return ["-c", f"user.name={IDENTITY[0]}", "-c", f"user.email={IDENTITY[1]}"]


def _clean(text: str) -> str:
    """git's message on one line, credentials in URLs removed."""
    return CREDENTIALS.sub(r"\1", " ".join(text.split()))[-500:]


def tracked_files(stages: list[str], cwd: str | Path = ".") -> list[str]:
    """dvc.lock and the stages' uncached outs that exist and git does not ignore (the metrics files)."""
    here = Path(cwd).resolve()
    outs = [o for stage in stages
            for o in dvcfile.stage_outs(stage, dvcfile.own_paths(here), here, here) if not o.cache and not o.persist]
    found = [o.path for o in outs if (here / o.path).exists()]
    kept = [p for p in found if _git("check-ignore", "-q", p, cwd=here, check=False).returncode == 1]
    return ["dvc.lock", *kept]


def upstream(cwd: str | Path = ".") -> tuple[str, str, str]:
    """(branch, remote, remote ref) this checkout pushes to: the branch's upstream, else `origin` and the same name.

    Raises:
        PersistError: HEAD is detached (a tag or commit was cloned): there is no branch to push to.
    """
    head = _git("symbolic-ref", "-q", "--short", "HEAD", cwd=cwd, check=False)
    if head.returncode:
        raise PersistError("HEAD is detached (TOOLTUNE_BRANCH names a tag or commit?): no branch to push dvc.lock to")
    branch = head.stdout.strip()
    remote = _git("config", f"branch.{branch}.remote", cwd=cwd, check=False).stdout.strip() or "origin"
    ref = _git("config", f"branch.{branch}.merge", cwd=cwd, check=False).stdout.strip() or f"refs/heads/{branch}"
    return branch, remote, ref


def persist(stages: list[str], message: str, cwd: str | Path = ".") -> str:
    """Push the stages' outputs, commit dvc.lock (and metrics files) and push the commit; returns what was done.

    Raises:
        PersistError: No default DVC remote, a failed dvc or git command, or a push that lost a race whose rebase
            conflicts.
    """
    if not dvcfile.default_remote(cwd):
        raise PersistError("no default DVC remote: outputs not pushed, so dvc.lock is not committed either (the next "
                           "run could not pull what it names); `dvc remote add -d NAME URL`")
    try:
        dvc("push", *stages, cwd=cwd)
    except RuntimeError as err:
        raise PersistError(_clean(str(err))) from None
    branch, remote, ref = upstream(cwd)
    files = tracked_files(stages, cwd)
    _git("add", "--", *files, cwd=cwd)
    if _git("diff", "--cached", "--quiet", "--", *files, cwd=cwd, check=False).returncode == 0:
        return f"dvc push {' '.join(stages)}; dvc.lock unchanged, nothing to commit"
    _git(*_identity(cwd), "commit", "-q", "-m", message, "--", *files, cwd=cwd)
    for _ in range(PUSH_TRIES):
        pushed = _git("push", "-q", remote, f"HEAD:{ref}", cwd=cwd, check=False)
        if pushed.returncode == 0:
            return f"dvc push {' '.join(stages)}; committed {', '.join(files)} and pushed to {remote}/{branch}"
        if not re.search(r"rejected|non-fast-forward|fetch first", pushed.stderr):
            raise PersistError(f"git push to {remote}/{branch} failed: {_clean(pushed.stderr)}")
        _rebase(remote, ref, branch, cwd)
    raise PersistError(f"git push to {remote}/{branch} lost the race {PUSH_TRIES} times; dvc.lock stays committed "
                       "in this checkout only")


def _rebase(remote: str, ref: str, branch: str, cwd: str | Path) -> None:
    """Put this run's commit on top of what another run pushed meanwhile; a conflict aborts the rebase.

    Raises:
        PersistError: The fetch failed, or the rebase conflicts (both runs rewrote the same dvc.lock entries).
    """
    _git("fetch", "-q", remote, ref, cwd=cwd)
    if _git(*_identity(cwd), "-c", "core.editor=true", "rebase", "-q", "FETCH_HEAD", cwd=cwd, check=False).returncode:
        _git("rebase", "--abort", cwd=cwd, check=False)
        raise PersistError(f"{remote}/{branch} moved while this run ran and its dvc.lock conflicts with this run's: "
                           "not pushed (never forced); the other run's dvc.lock stands and this run's outputs are in "
                           "the DVC remote; the next --only-changed run reruns what that dvc.lock finds stale")


def after_run(logger: Any, stages: list[str], only_changed: bool, environ: Mapping[str, str] | None = None) -> None:
    """Record a run of the DVC repo's own params: `dvc commit -f` the stages that ran (all of them: every stage),
    so `dvc repro` finds them up to date; then, for an `--only-changed` run with `$TOOLTUNE_NIGHTLY_PUSH` set,
    `persist` them. A failure is a warning with its reason: the run stands."""
    try:
        dvc("commit", "-f", *(stages if only_changed else []))
        logger.info("dvc commit -f %s: outputs recorded in dvc.lock", " ".join(stages) if only_changed else "(all)")
    except (OSError, RuntimeError) as err:
        logger.warning("outputs not recorded in DVC: %s", err)
        return
    if only_changed and enabled(environ):
        try:
            logger.info("%s", persist(stages, f"tooltune nightly: dvc.lock after {', '.join(stages)}"))
        except PersistError as err:
            logger.warning("%s: this run's records are not kept for the next run: %s", PUSH_ENV, err)
