"""Registry reliability against real MLflow stores: concurrent promoters, a retry after an outage, no server.

Concurrent promoters run `register.promote` on versions created cheaply (`create_model_version` on a small
source) from threads, against a real SQLite store (the file lock) and through a real `mlflow server` on 127.0.0.1
(the registry lease).
`decide` is slowed (the worse the candidate, the longer) so that, without the lock, every promoter reads the
champion before any moves it and the worst candidate moves it last: the interleaving that left a 0.6 candidate
champion over a 0.9 one.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.tracking import promotion_lock
from components import register, tracking
from components.tracking.promotion_lock import LEASE_SUFFIX
from flows import stack
from tests.unit.test_register import make_params, scores, tiny_model  # noqa: F401 (fixtures)

METRIC = "single_exact"


def slow_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the read-decide-move window: the worse the candidate, the later it would move the aliases."""
    real = register.decide

    def slow(gate: str, candidate: float, *args, **kwargs) -> register.Decision:
        time.sleep(0.02 + (1.0 - candidate) * 0.3)
        return real(gate, candidate, *args, **kwargs)

    monkeypatch.setattr(register, "decide", slow)


def make_versions(client: MlflowClient, name: str, values: list[float]) -> list[register.Gate]:
    """One registered version per gate value, tagged as `_tag_version` would (no model logged: a run's path)."""
    run = client.create_run("0")
    client.create_registered_model(name)
    gates = []
    for value in values:
        version = client.create_model_version(name, f"{run.info.artifact_uri}/agent", run_id=run.info.run_id,
                                              tags={"gate_metric": METRIC, "gate_value": str(value)})
        gates.append(register.Gate(name, str(version.version), METRIC, value, 0.0, 0.0))
    return gates


def promote_all(uri: str, gates: list[register.Gate]) -> list[BaseException]:
    """`promote` every gate from its own thread and client, all released at once; the errors raised."""
    start, errors = threading.Barrier(len(gates)), []

    def one(gate: register.Gate) -> None:
        client = MlflowClient(uri, uri)
        start.wait()
        try:
            register.promote(client, gate, uri, 60)
        except BaseException as err:  # reported by the test, not lost in the thread
            errors.append(err)

    threads = [threading.Thread(target=one, args=(gate,)) for gate in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def assert_best_is_champion(client: MlflowClient, name: str, values: dict[str, float]) -> None:
    """The best version is champion and every version carries its decision, consistent with the aliases."""
    model = client.get_registered_model(name)
    best = max(values, key=values.get)
    assert str(model.aliases["champion"]) == best, (model.aliases, values)
    for version, value in values.items():
        tags = client.get_model_version(name, version).tags
        assert tags[register.STATE_TAG] == register.DONE and register.PROMOTION_TAG in tags, (version, tags)
        promoted = tags[register.PROMOTION_TAG].startswith("promoted: ")
        compared = tags[register.COMPARED_TAG]
        # promoted: it beat the champion of its time; not promoted: that champion was at least as good
        assert promoted == (compared == "none" or value > float(compared)), (version, value, tags)
    assert not any(m.name.endswith(LEASE_SUFFIX) for m in client.search_registered_models())


def test_concurrent_promoters_in_threads_leave_the_best_as_champion(migrated_db, tmp_path, monkeypatch):
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    values = random.Random(7).sample(range(1, 100), 8)
    gates = make_versions(client, "agent", [v / 100 for v in values])
    slow_decide(monkeypatch)

    assert promote_all(uri, gates) == []
    assert_best_is_champion(client, "agent", {g.version: g.value for g in gates})
    assert (tmp_path / "mlflow.db.promotion.lock").is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(migrated_db, tmp_path):
    """A real `mlflow server` on 127.0.0.1 over a copy of the migrated DB, started (and health-checked) the way
    `tooltune stack up` starts it; yields its URI."""
    root = tmp_path / "server"
    (root / "mlflow").mkdir(parents=True)
    shutil.copy(migrated_db, root / "mlflow" / "mlflow.db")
    state, _ = stack.up(root, {"mlflow": 0}, services=("mlflow",), timeout=90)
    yield state["mlflow"]["url"]
    stack.down(root)  # SIGTERM to the server's process group (uvicorn workers included), SIGKILL if it lingers


def test_concurrent_promoters_through_a_server_share_the_registry_lease(mlflow_server, tmp_path, monkeypatch):
    for var, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")):
        monkeypatch.setenv(var, value)
    client = MlflowClient(mlflow_server, mlflow_server)
    gates = make_versions(client, "agent", [0.6, 0.9, 0.3, 0.75, 0.5])
    slow_decide(monkeypatch)

    assert promote_all(mlflow_server, gates) == []
    assert_best_is_champion(client, "agent", {g.version: g.value for g in gates})


def test_retry_after_an_outage_finishes_its_own_version(make_params, monkeypatch):
    params = make_params()
    name = params.register_.model_name
    scores(params, base=0.2, candidate=0.5)
    real_set_tag, calls = MlflowClient.set_model_version_tag, []

    def outage_once(self, *args, **kwargs):
        """The server goes away right after the version was created (first tag write), then comes back."""
        calls.append(args)
        if len(calls) == 1:
            raise MlflowException("API request to http://mlflow/ajax-api/2.0/mlflow/model-versions/set-tag "
                                  "failed with exception ConnectionError")
        return real_set_tag(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "set_model_version_tag", outage_once)
    with pytest.raises(MlflowException, match="ConnectionError"):
        tracking.execute_stage("register", params)
    client = MlflowClient()
    assert [v.version for v in client.search_model_versions(f"name = '{name}'")] == [1]  # created, unfinished

    result = tracking.execute_stage("register", params)  # the retry
    versions = client.search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == [1] and result.details["version"] == "1"
    tags = versions[0].tags
    assert tags[register.STATE_TAG] == register.DONE and tags["promotion"].startswith("promoted: ")
    assert tags["gate_value"] == "0.5" and tags["metric.valid_json"] == "0.9" and "git_commit" in tags
    assert {k: str(v) for k, v in client.get_registered_model(name).aliases.items()} == {"champion": "1"}
    assert "single_exact=0.5000" in versions[0].description

    again = register.run(params)  # the same candidate once more: its recorded decision, no new version
    assert (again.details["version"], again.details["alias"]) == ("1", "champion")
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    mlflow.pyfunc.load_model(f"models:/{name}@champion")  # the finished version serves


def test_unreachable_server_fails_fast_with_one_line(params_factory, tmp_path):
    bounds = params_factory().tracking  # tmp_path/params.yaml: the real file, workdir in tmp_path
    uri = f"http://127.0.0.1:{free_port()}"  # bound then closed: nothing listens there
    env = {**os.environ, "PYTHONPATH": str(tracking.REPO), "MLFLOW_TRACKING_URI": uri, "TOOLTUNE_PROFILE": ""}
    env.pop(tracking.PARENT_ENV, None)
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "components.register"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.time() - start
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: tracking.uri: no MLflow server answers at {uri} (ConnectionError after {bounds.http_max_retries} "
        f"retries, {bounds.http_timeout_s} s timeout each); start it, or set tracking.uri / $MLFLOW_TRACKING_URI")
    assert elapsed < 30, elapsed


def test_a_lease_released_while_the_store_words_its_conflict_is_taken_on_the_next_try(migrated_db, tmp_path,
                                                                                       monkeypatch):
    """The race a CI run hit with 5 promoters on a server: MLflow's store, its insert refused because the lease
    exists, looks the lease up to word the error; the holder deletes it in between, and the create fails with
    RESOURCE_DOES_NOT_EXIST. The waiter must try again, not fail its promotion."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client, lease = MlflowClient(uri, uri), "agent" + LEASE_SUFFIX
    client.create_registered_model(lease, tags={"owner": "holder", "acquired": f"{time.time():.3f}"})
    looked_up, released = SqlAlchemyStore.get_registered_model, []

    def released_meanwhile(self, name):
        if name == lease and not released:  # the first look-up: the one that words the create's conflict
            released.append(name)
            client.delete_registered_model(lease)  # the holder lets go right now
        return looked_up(self, name)

    monkeypatch.setattr(SqlAlchemyStore, "get_registered_model", released_meanwhile)
    with promotion_lock.registry_lease(client, "agent", 30):
        assert released and client.get_registered_model(lease).tags["owner"] != "holder"
    assert client.search_registered_models(f"name = '{lease}'") == []


def test_locks_time_out_on_a_live_holder_and_a_lease_is_broken_when_stale(migrated_db, tmp_path):
    shutil.copy(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    with promotion_lock.promotion_lock(client, uri, "agent", 5):  # a live holder of the file lock
        with pytest.raises(promotion_lock.LockTimeout, match=r"mlflow\.db\.promotion\.lock: promotion lock held"):
            with promotion_lock.promotion_lock(MlflowClient(uri, uri), uri, "agent", 0.3):
                pass

    lease = "agent" + LEASE_SUFFIX  # the lease a server's clients use, here in the SQLite registry
    # a live holder: acquired "now" as its clock says, a minute ahead of ours (fresh however slow this machine is)
    client.create_registered_model(lease, tags={"owner": "someone", "acquired": f"{time.time() + 60:.3f}"})
    with pytest.raises(promotion_lock.LockTimeout, match="registry lease 'agent.promotion-lock': held"):
        with promotion_lock.registry_lease(client, "agent", 1):
            pass
    client.set_registered_model_tag(lease, "acquired", f"{time.time() - 60:.3f}")  # its holder died a minute ago
    with promotion_lock.registry_lease(client, "agent", 30):
        assert client.get_registered_model(lease).tags["owner"] != "someone"
    assert client.search_registered_models(f"name = '{lease}'") == []  # released
