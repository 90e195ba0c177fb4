"""The lock that serialises promotion decisions: every promoter into one registry takes the same lock.

Reads: the registry URI (`mlflow.get_registry_uri()`), params `register.lock_timeout_s` (passed in).
Writes: `<store>.promotion.lock` beside a local store, or the registered model `<model_name>.promotion-lock`
(a lease) in a remote registry while the lock is held.
Run: `register.promote` enters `promotion_lock(...)`; nothing runs this module alone.

Which lock, by registry URI:

- Local store (`sqlite:///<file>`, `file:<folder>`, a plain folder): an OS file lock (`fcntl.flock`) on
  `<file>.promotion.lock` (or `<folder>/.promotion.lock`). Exact: the kernel grants it to one open file at a time,
  across threads and processes, and drops it when its holder dies. Limits: promoters must share that file system
  with working `flock` (not every NFS mount has it); POSIX only (Linux, macOS).
- Anything else (an `http(s)://` MLflow server, a database URI): a lease held in the registry itself, the
  registered model `<model_name>.promotion-lock`. Creating a registered model is atomic in the server's store (the
  name is its key), so exactly one client's create wins; the winner deletes it when done. Every client of that
  server shares it, wherever it runs. Limits: a holder that dies without releasing leaves the lease until it is
  `timeout_s` old by the waiter's clock (clock skew between clients shifts that); two waiters breaking the same
  stale lease at the same instant could both get it; the lease shows in the registry UI while held; the caller
  needs permission to create and delete registered models.
"""

from __future__ import annotations

import fcntl
import logging
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

LEASE_SUFFIX = ".promotion-lock"
_POLL_S = 0.1  # a file lock costs nothing to try
_LEASE_POLL_S = 0.3  # a lease costs two server requests to try
log = logging.getLogger(__name__)


class LockTimeout(TimeoutError):
    """Another promoter held the lock for longer than `register.lock_timeout_s`; retrying later is safe."""


@contextmanager
def promotion_lock(client: MlflowClient, uri: str, model_name: str, timeout_s: float) -> Iterator[None]:
    """Hold the promotion lock of `model_name` in the registry at `uri` while the block runs.

    Raises:
        LockTimeout: Not acquired within `timeout_s`.
    """
    path = lock_file(uri)
    with _file_lock(path, timeout_s) if path else registry_lease(client, model_name, timeout_s):
        yield


def lock_file(uri: str) -> Path | None:
    """The lock file beside a local store, or None when the registry is remote (a server or a database)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db = uri[len("sqlite:///"):].split("?", 1)[0]
        if not db or db == ":memory:":
            return None  # a private in-memory store: nobody else can promote into it, a lease costs nothing
        return Path(db).with_name(Path(db).name + ".promotion.lock")
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path)) / ".promotion.lock"
    if parsed.scheme == "":  # a plain folder (the file store)
        return Path(uri) / ".promotion.lock"
    return None


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with path.open("a") as handle:  # "a": never truncates the file under a holder
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{path}: promotion lock held by another promoter for over {timeout_s} s "
                                      f"(register.lock_timeout_s)") from None
                time.sleep(_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def registry_lease(client: MlflowClient, model_name: str, timeout_s: float) -> Iterator[None]:
    """Hold the lease `<model_name>.promotion-lock` in the client's registry (see the module docstring).

    Raises:
        LockTimeout: Held by another client for over `timeout_s`.
    """
    name, token = model_name + LEASE_SUFFIX, uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    while not _try_create(client, name, token):
        _break_if_stale(client, name, timeout_s)
        if time.monotonic() > deadline:
            raise LockTimeout(f"registry lease {name!r}: held by another promoter for over {timeout_s} s "
                              f"(register.lock_timeout_s); delete that registered model if its holder is gone")
        time.sleep(_LEASE_POLL_S * (1 + random.random()))  # jitter: waiters do not retry in lockstep
    try:
        yield
    finally:
        _release(client, name, token)


def _try_create(client: MlflowClient, name: str, token: str) -> bool:
    """Create the lease; True if it is ours (also when a retried create had in fact gone through)."""
    try:
        client.create_registered_model(name, tags={"owner": token, "acquired": f"{time.time():.3f}"},
                                       description="tooltune promotion lock: held while a version is promoted")
        return True
    except MlflowException as err:
        if err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            # MLflow's store, its insert refused by the lease, looks the lease up to word its error, and the holder
            # released it in between: not ours, the next try may get it
            return False
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    return _lease_tags(client, name).get("owner") == token


def _break_if_stale(client: MlflowClient, name: str, timeout_s: float) -> None:
    tags = _lease_tags(client, name)
    age = time.time() - float(tags.get("acquired", "inf"))
    if tags and age > timeout_s:
        log.warning("breaking promotion lease %s: %.0f s old (holder gone?)", name, age)
        _release(client, name, tags.get("owner", ""))


def _release(client: MlflowClient, name: str, token: str) -> None:
    """Delete the lease if `token` still owns it (a broken, re-taken lease belongs to someone else)."""
    if _lease_tags(client, name).get("owner") != token:
        return
    try:
        client.delete_registered_model(name)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise


def _lease_tags(client: MlflowClient, name: str) -> dict[str, str]:
    """The lease's tags, or {} when nobody holds it."""
    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return {}
