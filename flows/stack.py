"""`tooltune stack up|down|status`: the servers the pipeline talks to, on this machine's loopback.

Three services, each a detached process (its own session, so it outlives the command) bound to 127.0.0.1,
with its log in `DIR/logs/<service>.log` and its data under `DIR`:

- `mlflow`: `mlflow server`, SQLite backend `DIR/mlflow/mlflow.db`, artifacts proxied into `DIR/mlflow/artifacts`;
- `prefect`: `prefect server start` with `PREFECT_HOME=DIR/prefect` (its SQLite database is there);
- `s3`: moto's S3 server (`python -m moto.server`). moto keeps buckets in memory, so its recorder appends every
  request to `DIR/s3/recording.jsonl` and `up` replays that file: buckets and objects survive `down` / `up`.
  The recording grows with every request (reads included); delete it to start empty.

`DIR/stack.json` records each service's pid, process start time, port, URL and log; `DIR/stack.env` holds the
`export` lines that point the pipeline at the servers (`source DIR/stack.env`). AWS credentials are moto's dummy
values, written as `${AWS_ACCESS_KEY_ID:-testing}`: a key already in the environment wins, none is stored.

`up` starts what is not running (a second `up` reports the stack as up), health-checks every service over HTTP
and on failure stops what it started and names the service and its log. `down` sends SIGTERM to each service's
process group and SIGKILL after `STOP_TIMEOUT_S`; the data stays.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from components.config import ConfigError
from components.data.fileio import atomic_file

SERVICES = ("mlflow", "prefect", "s3")
DEFAULT_PORTS = {"mlflow": 5000, "prefect": 4200, "s3": 8333}  # 8333: SeaweedFS's S3 port, as infra/README uses
HEALTH_PATHS = {"mlflow": "/health", "prefect": "/api/health", "s3": "/moto-api/"}
HOST = "127.0.0.1"
BUCKET = "tooltune-dvc"  # created on `up`: the DVC remote's bucket
START_TIMEOUT_S = 180.0  # Prefect's server takes ~20 s on a small, busy machine; a cold first start migrates its DB
STOP_TIMEOUT_S = 15.0
STATE_FILE, ENV_FILE = "stack.json", "stack.env"


class StackError(RuntimeError):
    """A service did not come up or did not stop; the message names it and its log file."""


def command(service: str, root: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The argv and the extra environment that start `service` with its data under `root`."""
    python = sys.executable
    if service == "mlflow":
        return ([python, "-m", "mlflow", "server", "--host", HOST, "--port", str(port), "--workers", "1",
                 "--backend-store-uri", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
                 "--artifacts-destination", str(root / "mlflow" / "artifacts")], {})
    if service == "prefect":
        home = root / "prefect"
        return ([python, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port), "--analytics-off"],
                {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                 "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}"})
    if service == "s3":
        return ([python, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                {"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording(root))})
    raise ValueError(f"unknown service {service!r}; known: {SERVICES}")


def recording(root: Path) -> Path:
    return root / "s3" / "recording.jsonl"


def url(service: str, port: int) -> str:
    """The address clients use: Prefect's API is under /api."""
    return f"http://{HOST}:{port}" + ("/api" if service == "prefect" else "")


def port_free(port: int) -> bool:
    """Nothing listens on `port` (the servers set SO_REUSEADDR, so a closed connection's TIME_WAIT is no obstacle)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(service: str, wanted: int | None) -> int:
    """`wanted` (a flag; 0: any free port), else the service's default when free, else a free one."""
    if wanted is not None and wanted != 0:
        if not port_free(wanted):
            raise ConfigError(f"stack: --{service}-port {wanted} is taken on {HOST}; choose another or omit it")
        return wanted
    if wanted is None and port_free(DEFAULT_PORTS[service]):
        return DEFAULT_PORTS[service]
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def load_state(root: Path) -> dict[str, dict[str, Any]]:
    """`{service: record}` from DIR/stack.json; empty when there is none."""
    path = root / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8"))["services"] if path.is_file() else {}


def save_state(root: Path, services: dict[str, dict[str, Any]]) -> None:
    with atomic_file(root / STATE_FILE) as out:
        json.dump({"root": str(root), "services": services}, out, indent=2)


def process(record: dict[str, Any]) -> psutil.Process | None:
    """The recorded process when it still runs: the same pid, and the same start time or the same command line (a
    reused pid is neither). The command line counts because a start time is read as boot time plus ticks, and boot
    time moves when the wall clock is stepped (a VM's clock sync, a laptop's resume): a 22 s step once made a
    healthy server look gone, and its children were left running."""
    try:
        proc = psutil.Process(record["pid"])
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if abs(proc.create_time() - record["create_time"]) <= 1:
            return proc
        return proc if record.get("cmdline") and proc.cmdline() == record["cmdline"] else None
    except psutil.Error:
        return None


def healthy(service: str, port: int, timeout: float = 2.0) -> bool:
    """HTTP 200 from the service's health endpoint."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{HEALTH_PATHS[service]}", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(service: str, root: Path, port: int) -> dict[str, Any]:
    """Start `service` detached, its output appended to DIR/logs/<service>.log; returns its record."""
    argv, extra = command(service, root, port)
    for folder in ("logs", "mlflow", "prefect", "s3"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    log = root / "logs" / f"{service}.log"
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n--- tooltune stack: starting {service} on port {port} at {time.strftime('%F %T')}\n")
        out.flush()
        # start_new_session: the server outlives this command and is stopped as one process group
        proc = subprocess.Popen(argv, env={**os.environ, **extra}, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    return {"pid": proc.pid, "create_time": psutil.Process(proc.pid).create_time(), "cmdline": argv, "port": port,
            "url": url(service, port), "log": str(log)}


def wait_healthy(started: dict[str, dict[str, Any]], timeout: float) -> None:
    """Wait until every started service answers its health check; StackError naming the first that cannot."""
    deadline, pending = time.monotonic() + timeout, dict(started)
    while pending:
        for service, record in list(pending.items()):
            if healthy(service, record["port"]):
                del pending[service]
            elif process(record) is None:
                raise StackError(f"stack: {service} exited before answering on port {record['port']}; "
                                 f"see {record['log']}")
        if pending and time.monotonic() > deadline:
            service, record = next(iter(pending.items()))
            raise StackError(f"stack: {service} did not answer {record['url']} within {timeout:.0f} s; "
                             f"see {record['log']}")
        time.sleep(0.3)


def up(root: str | Path, ports: dict[str, int | None] | None = None, services: tuple[str, ...] = SERVICES,
       timeout: float = START_TIMEOUT_S) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Start the services of `services` that are not running, health-checked.

    Args:
        root: The stack's folder (data, logs, stack.json, stack.env); created when missing.
        ports: `{service: port}` from flags; None or absent: the default port if free, else any free one; 0: any.
        services: Which services to run (tests start one alone).
        timeout: Seconds each start may take to answer its health check.

    Returns:
        The records of every running service, and the names of those this call started (empty: already up).

    Raises:
        StackError: A service exited or did not answer in time; those started here are stopped again.
        ConfigError: A port given by flag is taken.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    running = {s: r for s, r in load_state(root).items() if process(r) is not None}
    missing = [s for s in services if s not in running]
    chosen = {s: choose_port(s, (ports or {}).get(s)) for s in missing}
    started: dict[str, dict[str, Any]] = {}
    try:
        for service in missing:
            started[service] = start(service, root, chosen[service])
        save_state(root, {**running, **started})
        wait_healthy(started, timeout)
        if "s3" in started:
            restore_s3(root, started["s3"])
    except BaseException:
        stop(started)
        save_state(root, running)
        raise
    state = {**running, **started}
    write_env(root, state)
    return state, list(started)


def restore_s3(root: Path, record: dict[str, Any]) -> None:
    """Replay moto's recording (the buckets and objects of earlier runs), then make sure the DVC bucket exists."""
    import boto3

    endpoint = record["url"]
    if recording(root).is_file() and recording(root).stat().st_size:
        request = urllib.request.Request(f"{endpoint}/moto-api/recorder/replay-recording", method="POST")
        with urllib.request.urlopen(request, timeout=300):
            pass
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)


def stop(records: dict[str, dict[str, Any]], timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """SIGTERM each service's process group (and any descendant that left it), SIGKILL what remains after
    `timeout`; returns the names of the services that were running."""
    procs, stopped = [], []
    for service, record in records.items():
        proc = process(record)
        if proc is None:
            continue
        stopped.append(service)
        group = [proc, *proc.children(recursive=True)]
        procs += group
        _signal(proc.pid, group, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        _signal(proc.pid, [proc], signal.SIGKILL)
    _, alive = psutil.wait_procs(alive, timeout=5)
    if alive:
        raise StackError(f"stack: pids {[p.pid for p in alive]} survived SIGKILL")
    return stopped


def _signal(pid: int, procs: list[psutil.Process], sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the whole session the service started (uvicorn workers included)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def down(root: str | Path) -> list[str]:
    """Stop every recorded service; the data and logs stay, stack.env goes (it would point at closed ports).
    Returns the names of those that were running."""
    root = Path(root).resolve()
    records = load_state(root)
    stopped = stop(records)
    if records:
        save_state(root, {})
    (root / ENV_FILE).unlink(missing_ok=True)
    return stopped


def status(root: str | Path) -> list[dict[str, Any]]:
    """One row per service: service, url, pid, healthy (`yes`, `no`: running but not answering, `down`)."""
    records = load_state(Path(root).resolve())
    rows = []
    for service in SERVICES:
        record = records.get(service)
        if record is None or process(record) is None:
            rows.append({"service": service, "url": "-", "pid": "-", "healthy": "down"})
        else:
            rows.append({"service": service, "url": record["url"], "pid": record["pid"],
                         "healthy": "yes" if healthy(service, record["port"]) else "no"})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = ("service", "url", "pid", "healthy")
    cells = [keys, *[tuple(str(r[k]) for k in keys) for r in rows]]
    width = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    return "\n".join("  ".join(c[i].ljust(width[i]) for i in range(len(keys))).rstrip() for c in cells)


def env_lines(state: dict[str, dict[str, Any]]) -> list[str]:
    """`export` lines pointing the pipeline (MLflow, Prefect, boto3 and DVC's S3 remote) at the running services."""
    lines = []
    if "mlflow" in state:
        lines.append(f"export MLFLOW_TRACKING_URI={state['mlflow']['url']}")
    if "prefect" in state:
        lines.append(f"export PREFECT_API_URL={state['prefect']['url']}")
    if "s3" in state:
        endpoint = state["s3"]["url"]
        lines += [f"export AWS_ENDPOINT_URL={endpoint}",
                  "# moto accepts any key: dummy values unless the environment already has keys",
                  'export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"',
                  'export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"',
                  'export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"',
                  f"# DVC remote on it (once per checkout): dvc remote add s3 s3://{BUCKET}/cache && "
                  f"dvc remote modify --local s3 endpointurl {endpoint}"]
    return lines


def write_env(root: Path, state: dict[str, dict[str, Any]]) -> Path:
    path = root / ENV_FILE
    with atomic_file(path) as out:
        out.write("# tooltune stack: `source` this file\n" + "\n".join(env_lines(state)) + "\n")
    return path
