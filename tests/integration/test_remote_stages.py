"""GPU stages on another work pool's worker, with no shared disk: the data goes through DVC's S3 remote.

Real servers on 127.0.0.1 (`flows/stack.py`: MLflow, Prefect, moto S3), a `cpu` and a `gpu` process work pool
with one `prefect worker start` each, a temporary git + DVC repo (the pipeline's workdir, the cpu deployment's)
and a separate `git clone` of it for the gpu worker. `sft` and `rl` go to the gpu deployment
(`TOOLTUNE_GPU_STAGES`), so `rl` needs one input made remotely (sft) and one made by the parent (reward_model), and
evaluate and register run on what `rl` pushed. Two pipeline runs on the cpu pool, with fewer training steps than
the quick profile: first the run dvc.yaml describes (params.yaml holds the quick values: data travels as dvc.lock
entries), then `--profile quick` with `-S` values (workdir runs/quick: transient .dvc pointers). Prefect results
travel through an S3 block too (`PREFECT_DEFAULT_RESULT_STORAGE_BLOCK`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from flows import remote, stack
from tests.conftest import REPO, _deep
from tests.integration.test_dvc_repro import _sh

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DVC = (sys.executable, "-m", "dvc")
GPU_DEPLOYMENT = "tooltune-stage/gpu-test"
ROUTED = ("sft", "rl")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
RESULTS_BLOCK = "tooltune-results"
# fewer steps than the quick profile: the test is about where the data goes, not how well the model learns
FASTER = {"sft": {"max_steps": 4}, "reward_model": {"max_steps": 2}, "rl": {"max_steps": 1},
          "evaluate": {"compare_champion": False}}
# the second run: the quick profile as a user runs it (`tooltune run --profile quick -S ...`), registered apart
PROFILE_RUN = {"profile": "quick", "overrides": [
    "sft.max_steps=4", "reward_model.max_steps=2", "rl.max_steps=1", "evaluate.compare_champion=false",
    "register.model_name=tooltune-travel-profile", "tracking.experiment=tooltune-profile"]}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _origin(root: Path, mlflow_url: str, s3_url: str) -> None:
    """The pipeline's repo: code, dvc.yaml, a params.yaml holding the quick values (no profile: DVC applies)."""
    shutil.copytree(REPO / "components", root / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in {**raw["profiles"]["quick"], **FASTER}.items():
        raw[key] = _deep(raw[key], value)
    raw["project"]["workdir"] = "."
    raw["tracking"]["uri"] = mlflow_url
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (root / ".gitignore").write_text("__pycache__/\n.tooltune.lock\n*.promotion.lock\n")
    _sh(root, "git", "init", "-q", "-b", "main")
    _sh(root, *DVC, "init", "-q")
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots", dirs_exist_ok=True)
    _sh(root, *DVC, "config", "core.analytics", "false")
    _sh(root, *DVC, "remote", "add", "-d", "s3", f"s3://{stack.BUCKET}/cache")
    _sh(root, *DVC, "remote", "modify", "s3", "endpointurl", s3_url)  # committed: a loopback test endpoint
    _sh(root, "git", "add", "-A")
    _sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-qm", "pipeline")


def _worker_env(state: dict, home: Path, code: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "MLFLOW_", "TOOLTUNE_", "AWS_"))}
    env.update(CREDENTIALS, PREFECT_API_URL=state["prefect"]["url"], PREFECT_HOME=str(home),
               PREFECT_DEFAULT_RESULT_STORAGE_BLOCK=f"remote-file-system/{RESULTS_BLOCK}",
               PREFECT_WORKER_QUERY_SECONDS="1", PYTHONPATH=str(code), OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", TRL_EXPERIMENTAL_SILENCE="1", TOKENIZERS_PARALLELISM="false",
               MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING="false", DVC_NO_ANALYTICS="1", **extra)
    return env


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each worker's session and every descendant (a flow run may have left it), SIGKILL what remains."""
    family = [psutil.Process(p.pid) for p in procs if p.poll() is None]
    family += [c for p in family for c in p.children(recursive=True)]
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in family:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(family, timeout=15)
    for proc in alive:
        proc.kill()
    psutil.wait_procs(alive, timeout=5)
    for proc in procs:
        proc.wait(timeout=5)  # reap


def _deploy(client, pool: str, flow_name: str, name: str, entrypoint: str, checkout: Path) -> None:
    client.create_deployment(
        flow_id=client.create_flow_from_name(flow_name), name=name, entrypoint=entrypoint, work_pool_name=pool,
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(checkout)}}],
        job_variables={"working_dir": str(checkout)})


def _start_workers(state: dict, base: Path, origin: Path, checkout: Path) -> list[subprocess.Popen]:
    """One `prefect worker start` per pool (the cpu one routes sft and rl to the gpu deployment)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        for pool in ("cpu", "gpu"):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
    routing = {"TOOLTUNE_GPU_DEPLOYMENT": GPU_DEPLOYMENT, "TOOLTUNE_GPU_STAGES": ",".join(ROUTED)}
    workers = []
    for pool, code, extra in (("gpu", checkout, {}), ("cpu", origin, routing)):
        env = _worker_env(state, base / f"prefect-{pool}", code, extra)
        with (base / f"worker-{pool}.log").open("w") as log:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
                cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return workers


@pytest.fixture(scope="module")
def remote_run(tmp_path_factory) -> Iterator[dict]:
    """Servers, pools, workers, deployments, and one pipeline run on them; everything stopped after."""
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.filesystems import RemoteFileSystem
    from prefect.settings import PREFECT_API_URL, temporary_settings

    base = tmp_path_factory.mktemp("remote")
    origin, checkout = base / "origin", base / "gpu-checkout"  # the pipeline's repo, the gpu worker's clone
    env = pytest.MonkeyPatch()
    for key, value in CREDENTIALS.items():  # this process reads the Prefect results from S3 too
        env.setenv(key, value)
    workers: list[subprocess.Popen] = []
    try:
        state, _ = stack.up(base / "stack", {s: 0 for s in stack.SERVICES})  # on failure it stops what it started
        with temporary_settings(updates={PREFECT_API_URL: state["prefect"]["url"]}):
            workers = _start_workers(state, base, origin, checkout)  # they start (~20 s) while the repos are made
            _origin(origin, state["mlflow"]["url"], state["s3"]["url"])
            _sh(base, "git", "clone", "-q", str(origin), str(checkout))  # code only: no outputs, no dvc.lock
            RemoteFileSystem(basepath=f"s3://{stack.BUCKET}/prefect-results",
                             settings={"client_kwargs": {"endpoint_url": state["s3"]["url"]}}).save(
                RESULTS_BLOCK, overwrite=True)
            with get_client(sync_client=True) as client:
                _deploy(client, "gpu", "tooltune-stage", "gpu-test", "flows/pipeline.py:stage_flow", checkout)
                _deploy(client, "cpu", "tooltune-pipeline", "cpu-test", "flows/pipeline.py:pipeline", origin)
            flow_run = run_deployment("tooltune-pipeline/cpu-test", timeout=1500, poll_interval=2)
            lock = (origin / "dvc.lock").read_bytes() if (origin / "dvc.lock").is_file() else b""
            profile_run = run_deployment("tooltune-pipeline/cpu-test", parameters=PROFILE_RUN, timeout=1500,
                                         poll_interval=2)
            yield {"flow_run": flow_run, "origin": origin, "checkout": checkout, "state": state, "base": base,
                   "profile_run": profile_run, "lock_before_profile_run": lock}
    finally:
        _stop(workers)
        stack.down(base / "stack")
        env.undo()


def _logs(base: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(base.glob("worker-*.log")))


def test_gpu_stages_run_on_the_gpu_worker_and_their_outputs_come_back(remote_run):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    run, origin, checkout = remote_run["flow_run"], remote_run["origin"], remote_run["checkout"]
    assert run.state is not None and run.state.is_completed(), f"{run.state}\n{_logs(remote_run['base'])}"
    staged = _gpu_runs(remote_run, profile=None)
    with (temporary_settings(updates={PREFECT_API_URL: remote_run["state"]["prefect"]["url"]}),
          get_client(sync_client=True) as client):
        pipeline_run = client.read_flow_run(run.id)
    assert pipeline_run.work_pool_name == "cpu"
    assert sorted((r.parameters["stage"], r.work_pool_name, r.state.type.value) for r in staged) == [
        ("rl", "gpu", "COMPLETED"), ("sft", "gpu", "COMPLETED")]

    # the parent's dvc.lock names the versions the gpu worker pushed, and its workspace holds those bytes
    lock, worker_lock = remote.read_lock(origin), remote.read_lock(checkout)
    for stage in ROUTED:
        assert remote.out_hashes({stage: lock[stage]}) == remote.out_hashes({stage: worker_lock[stage]})
    produced = _sha256(checkout / "artifacts" / "rl" / "model.safetensors")
    assert _sha256(origin / "artifacts" / "rl" / "model.safetensors") == produced
    assert _sh(checkout, "git", "ls-files", "dvc.lock", "artifacts", "data") == ""  # the clone brought no data

    params = yaml.safe_load((origin / "params.yaml").read_text())
    registered = _registered_weights(remote_run, params["register"]["model_name"], "reg")
    assert registered == produced, "the registered model is not the one the remote rl stage produced"
    runs = _stage_runs(remote_run, params["tracking"]["experiment"])
    for stage in ROUTED:
        assert json.loads(runs[stage][remote.PUSHED_TAG]) == remote.out_hashes({stage: lock[stage]})
    pulled = json.loads(runs["rl"][remote.PULLED_TAG])  # rl read sft's remote output and the parent's reward_model
    assert pulled["artifacts/sft"] == lock["sft"]["outs"][0]["md5"]
    assert pulled["artifacts/reward_model"] == lock["reward_model"]["outs"][0]["md5"]


def test_a_profile_runs_gpu_stages_hand_over_through_dvc_pointers(remote_run):
    """`--profile quick` (workdir runs/quick, not dvc.yaml's outs): the same hand-over through .dvc pointers."""
    run, origin, checkout = remote_run["profile_run"], remote_run["origin"], remote_run["checkout"]
    assert run.state is not None and run.state.is_completed(), f"{run.state}\n{_logs(remote_run['base'])}"
    staged = _gpu_runs(remote_run, profile="quick")
    assert sorted((r.parameters["stage"], r.work_pool_name, r.state.type.value) for r in staged) == [
        ("rl", "gpu", "COMPLETED"), ("sft", "gpu", "COMPLETED")]
    assert all(r.parameters["overrides"] == PROFILE_RUN["overrides"] for r in staged)  # the same values there

    work = "runs/quick"
    produced = _sha256(checkout / work / "artifacts" / "rl" / "model.safetensors")
    assert _sha256(origin / work / "artifacts" / "rl" / "model.safetensors") == produced  # pulled back
    assert _sha256(origin / work / "artifacts" / "sft" / "model.safetensors") == _sha256(
        checkout / work / "artifacts" / "sft" / "model.safetensors")
    assert _sha256(checkout / work / "artifacts" / "reward_model" / "model.safetensors") == _sha256(
        origin / work / "artifacts" / "reward_model" / "model.safetensors")  # sent to rl, made by the parent
    assert (origin / "dvc.lock").read_bytes() == remote_run["lock_before_profile_run"]  # dvc.lock left alone
    for root in (origin, checkout):
        assert not list(root.glob(".tooltune-handover-*"))
    assert _registered_weights(remote_run, "tooltune-travel-profile", "reg-profile") == produced

    runs = _stage_runs(remote_run, "tooltune-profile")
    pushed = {stage: json.loads(runs[stage][remote.PUSHED_TAG]) for stage in ROUTED}
    assert set(pushed["rl"]) == {f"{work}/{p}" for p in ("artifacts/rl", "reports/rl_reward.csv",
                                                         "reports/rl_reward.png", "metrics/rl.json")}
    pulled = json.loads(runs["rl"][remote.PULLED_TAG])
    assert pulled[f"{work}/artifacts/sft"] == pushed["sft"][f"{work}/artifacts/sft"]  # the version sft pushed
    assert _dir_matches(origin, f"{work}/artifacts/reward_model", pulled[f"{work}/artifacts/reward_model"])
    assert _dir_matches(origin, f"{work}/artifacts/rl", pushed["rl"][f"{work}/artifacts/rl"])
    assert hashlib.md5((origin / work / "metrics" / "rl.json").read_bytes()).hexdigest() == pushed["rl"][
        f"{work}/metrics/rl.json"]


def _dir_matches(root: Path, rel: str, md5: str) -> bool:
    """The folder holds exactly the files, with their md5s, that DVC's `.dir` object `md5` lists (in root's cache)."""
    listing = json.loads((root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_text())
    here = {p.relative_to(root / rel).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in (root / rel).rglob("*") if p.is_file()}
    return here == {e["relpath"]: e["md5"] for e in listing}


def _gpu_runs(remote_run: dict, profile: str | None) -> list:
    """The gpu deployment's flow runs of the pipeline run on this profile."""
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (temporary_settings(updates={PREFECT_API_URL: remote_run["state"]["prefect"]["url"]}),
          get_client(sync_client=True) as client):
        staged = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["gpu-test"])))
    return [r for r in staged if r.parameters.get("profile") == profile]


def _registered_weights(remote_run: dict, name: str, folder: str) -> str:
    """sha256 of model.safetensors in the registered version (the only one), downloaded from the MLflow server."""
    from mlflow.artifacts import download_artifacts

    from mlflow import MlflowClient

    url = remote_run["state"]["mlflow"]["url"]
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    (version,) = client.search_model_versions(f"name = '{name}'")
    source = client.get_model_version_download_uri(name, version.version)
    dst = Path(download_artifacts(artifact_uri=source, dst_path=str(remote_run["base"] / folder), tracking_uri=url))
    (weights,) = dst.rglob("model.safetensors")
    return _sha256(weights)


def _stage_runs(remote_run: dict, experiment_name: str) -> dict[str, dict]:
    """{stage: tags} of the experiment's stage runs; each says where it ran, the remote ones on the gpu pool."""
    from mlflow import MlflowClient

    client = MlflowClient(remote_run["state"]["mlflow"]["url"])
    experiment = client.get_experiment_by_name(experiment_name)
    runs = {r.data.tags["tooltune.stage"]: r.data.tags
            for r in client.search_runs([experiment.experiment_id], "tags.`tooltune.kind` = 'stage'")}
    assert set(runs) == set(remote.STAGES)
    for stage, tags in runs.items():
        want = GPU_DEPLOYMENT if stage in ROUTED else remote.LOCAL
        assert tags[remote.RAN_ON_TAG] == want, (stage, tags[remote.RAN_ON_TAG])
        assert (tags.get(remote.POOL_TAG) == "gpu") == (stage in ROUTED)
    return runs
