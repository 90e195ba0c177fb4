"""SFT on two processes (`torchrun --nproc_per_node 2`, DDP over gloo on the CPU) trains the same model as one
process with the same global batch, and only rank 0 writes: one MLflow run, one metrics file, one model, one
report line, checkpoints cleaned up.

The DDP run is the real `python -m components.sft` under torchrun (per-process batch 4, two processes); the
single run is the same stage with batch 8 on the same workdir. Both draw the same 48 episodes (max_steps x batch
x processes) in the same order, and torch's sampler shards each global batch of 8 into two halves of 4, so each
optimizer step sees the same episodes; TRL averages the loss over the tokens of all processes, so the gradients
are equal up to the order of float additions (an all-reduce of two half-batch sums against one sum).

Marked `integration` (tiny model, about a minute on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from components import base, build, ingest, tracking
from components.config import load_params
from tests.conftest import write_params

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two torchrun launches

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6
# fp32 on both sides; only the order of float additions differs (gloo's all-reduce of two half-batch gradients
# against one full-batch sum). Measured: losses within 5e-7, weights within 1.2e-7 (a few fp32 ulps) after 6 steps.
# The bounds leave 100x room for that rounding and still catch a real difference: other episodes in a step change
# its loss by ~1e-1 (consecutive steps differ by 2e-3 to 2.5e-1), a gradient summed instead of averaged over the
# two processes doubles the first steps' updates (~lr = 3e-3 per weight).
LOSS_TOL, WEIGHT_TOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, migrated_db) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    shutil.copy(migrated_db, tmp / "mlflow.db")
    write_params(tmp, "quick", ingest={"n_episodes": 400, "workers": 1},
                 sft={"max_steps": STEPS, "batch_size": 4, "grad_accum": 1, "save_steps": 3})
    p = load_params(tmp / "params.yaml", profile="")
    for stage in (base, ingest, build):
        stage.run(p)
    return tmp


def _torchrun(workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TOOLTUNE_PROFILE": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "components.sft"], capture_output=True, text=True, check=False, cwd=workdir,
                          env=env, timeout=300)


def _losses(csv: Path) -> list[float]:
    return [float(line.split(",")[1]) for line in csv.read_text().splitlines()[1:]]


def _sft_runs(params) -> list:
    client = MlflowClient(tracking.tracking_uri(params))
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    return client.search_runs([experiment.experiment_id], "tags.`tooltune.stage` = 'sft'")


def test_two_process_sft_matches_one_process_and_only_rank_0_writes(workdir):
    params = load_params(workdir / "params.yaml", profile="")
    base_weights = load_file(str(params.path("base") / "model.safetensors"))

    done = _torchrun(workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("[sft] done") == 1, done.stdout  # rank 1 trains but reports nothing
    runs = _sft_runs(params)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # one MLflow run, rank 0's
    client = MlflowClient(tracking.tracking_uri(params))
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "loss")] == list(range(1, STEPS + 1))
    assert runs[0].data.metrics["episodes_seen"] == STEPS * 4 * 2  # both processes' batches
    assert not params.path("checkpoints").exists()  # saved at steps 3 and 6, deleted once the model was saved
    ddp_losses = _losses(params.path("reports") / "sft_loss.csv")
    ddp_weights = load_file(str(params.path("sft_model") / "model.safetensors"))

    single = load_params(workdir / "params.yaml", profile="", overrides=["sft.batch_size=8"])
    tracking.execute_stage("sft", single)
    one_losses = _losses(single.path("reports") / "sft_loss.csv")
    one_weights = load_file(str(single.path("sft_model") / "model.safetensors"))

    for losses in (ddp_losses, one_losses):
        assert len(losses) == STEPS and losses[-1] < losses[0] * 0.95, losses
    for weights in (ddp_weights, one_weights):
        assert max((weights[k] - base_weights[k]).abs().max().item() for k in base_weights) > 1e-3
    assert ddp_losses == pytest.approx(one_losses, abs=LOSS_TOL)
    gap = max((ddp_weights[k] - one_weights[k]).abs().max().item() for k in one_weights)
    assert set(ddp_weights) == set(one_weights) and gap < WEIGHT_TOL, gap
    assert all(w.dtype == torch.float32 for w in ddp_weights.values())
