"""Training stages resume after a real SIGKILL: a child process runs a stage (`python -m components.<stage>`'s
entry, tiny model, a checkpoint every step or two) and is killed right after a checkpoint is complete, or in the
middle of writing one; the rerun continues from the last complete checkpoint to `max_steps`, saves the model and
deletes the checkpoints. A rerun under changed params starts fresh; so does one after changed data.

Marked `integration` (real TRL training on the tiny model, about a minute on 2 cores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from components import base, build, ingest, reward_model, sft, tracking
from components.config import load_params
from components.training import checkpoints
from mlflow import MlflowClient
from tests.conftest import write_params

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# argv: stage, step, point. "sealed": SIGKILL right after checkpoint `step` is marked complete; "mid-save": SIGKILL
# while checkpoint `step` is written (its weights are on disk, its optimizer, trainer state and marker are not).
CHILD = """
import os, signal, sys
from components.tracking import stage_main
from components.training import checkpoints

stage, step, point = sys.argv[1], int(sys.argv[2]), sys.argv[3]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point == "sealed":
    sealer = checkpoints.sealer

    def killing_sealer():
        callback = sealer()
        on_save = callback.on_save

        def on_save_then_die(args, state, control, **kwargs):
            on_save(args, state, control, **kwargs)
            print("sealed", state.global_step, flush=True)
            if state.global_step >= step:
                die()

        callback.on_save = on_save_then_die
        return callback

    checkpoints.sealer = killing_sealer
else:
    from transformers import Trainer
    save = Trainer._save_optimizer_and_scheduler

    def die_mid_save(self, output_dir):
        if self.state.global_step >= step:
            die()
        save(self, output_dir)

    Trainer._save_optimizer_and_scheduler = die_mid_save
stage_main(stage)
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, migrated_db) -> Path:
    tmp = tmp_path_factory.mktemp("resume")
    shutil.copy(migrated_db, tmp / "mlflow.db")
    write_params(tmp, "quick", ingest={"n_episodes": 400}, sft={"max_steps": 12, "batch_size": 4, "save_steps": 2},
                 reward_model={"max_steps": 10, "batch_size": 4, "save_steps": 2, "learning_rate": 5.0e-4},
                 rl={"max_steps": 3, "save_steps": 1, "learning_rate": 1.0e-3})
    p = load_params(tmp / "params.yaml", profile="")
    for stage in (base, ingest, build):
        stage.run(p)
    return tmp


def _params(workdir: Path, *overrides: str):
    return load_params(workdir / "params.yaml", profile="", overrides=overrides)


def _killed(workdir: Path, stage: str, step: int, point: str) -> str:
    """Run `stage` in a child process that SIGKILLs itself at `step` (`point`: sealed | mid-save); its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TOOLTUNE_PROFILE": ""}
    child = subprocess.run([sys.executable, "-c", CHILD, stage, str(step), point], capture_output=True, text=True,
                           check=False, cwd=workdir, env=env, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    return child.stdout


def _saved(folder: Path) -> list[int]:
    """Steps of the checkpoints in a stage's folder, and whether each is complete."""
    return sorted((checkpoints._step(p), checkpoints._complete(p)) for p in folder.iterdir()
                  if checkpoints._step(p) is not None)


def _tracked(params, stage: str):
    """Run `stage` as `tooltune stage` does (sweep, lock, MLflow run); its result and its logged loss steps."""
    result = tracking.execute_stage(stage, params)
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name(params.tracking.experiment).experiment_id],
                             f"tags.`tooltune.stage` = '{stage}'", order_by=["attributes.start_time DESC"])[0]
    return result, [m.step for m in client.get_metric_history(run.info.run_id, "loss")]


def _changed(before: Path, after: Path) -> float:
    a, b = load_file(str(before / "model.safetensors")), load_file(str(after / "model.safetensors"))
    return max((a[k] - b[k]).abs().max().item() for k in a if k in b and a[k].shape == b[k].shape)


def _curve_steps(csv: Path) -> list[int]:
    return [int(line.split(",")[0]) for line in csv.read_text().splitlines()[1:]]


@pytest.mark.slow
def test_sft_resumes_from_the_last_complete_checkpoint_after_kills(workdir):
    params = _params(workdir)
    folder = checkpoints.folder(params, "sft")
    _killed(workdir, "sft", 4, "sealed")
    assert _saved(folder) == [(4, True)]  # older ones deleted once step 4 was complete
    out = _killed(workdir, "sft", 6, "mid-save")  # the rerun resumes at 4, then dies writing checkpoint 6
    assert _saved(folder) == [(4, True), (6, False)]  # a half-written checkpoint: weights, no trainer state
    assert (folder / "checkpoint-6" / "model.safetensors").exists() and "sealed" not in out
    result, logged = _tracked(params, "sft")
    assert result.metrics["resumed_from_step"] == 4  # not the half-written 6, not from scratch
    assert logged == list(range(5, params.sft.max_steps + 1))  # this run trained steps 5..12 only
    assert _curve_steps(params.path("reports") / "sft_loss.csv") == list(range(1, params.sft.max_steps + 1))
    assert json.loads((params.path("sft_model") / "tooltune.json").read_text())["steps"] == params.sft.max_steps
    assert not params.path("checkpoints").exists()  # deleted once the model was saved
    assert result.metrics["loss_last"] < result.metrics["loss_first"] * 0.9
    assert _changed(params.path("base"), params.path("sft_model")) > 1e-4
    # the same run without a kill: the resumed one trained the same steps on the same batches
    fresh, _ = _tracked(_params(workdir, "sft.save_steps=0"), "sft")
    assert fresh.metrics["resumed_from_step"] == 0
    assert fresh.metrics["loss_last"] == pytest.approx(result.metrics["loss_last"], rel=1e-3)
    assert fresh.metrics["loss_first"] == pytest.approx(result.metrics["loss_first"], rel=1e-3)


@pytest.mark.slow
def test_a_checkpoint_of_other_params_is_never_resumed(workdir):
    _killed(workdir, "sft", 4, "sealed")
    params = _params(workdir, "sft.learning_rate=0.002")
    result, logged = _tracked(params, "sft")
    assert result.metrics["resumed_from_step"] == 0
    assert logged == list(range(1, params.sft.max_steps + 1))
    assert not params.path("checkpoints").exists()


def test_changed_data_or_start_model_changes_the_key(workdir, tmp_path):
    params = _params(workdir)
    data, model = tmp_path / "sft.jsonl", tmp_path / "model"
    shutil.copy(params.path("splits") / "sft.jsonl", data)
    shutil.copytree(params.path("base"), model)
    key = checkpoints.run_key(params, "sft", [data, model])
    assert checkpoints.run_key(_params(workdir, "sft.save_steps=5"), "sft", [data, model]) == key
    with data.open("a") as handle:
        handle.write("\n")
    assert checkpoints.run_key(params, "sft", [data, model]) != key
    key = checkpoints.run_key(params, "sft", [data, model])
    (model / "config.json").write_text((model / "config.json").read_text() + " ")
    assert checkpoints.run_key(params, "sft", [data, model]) != key


@pytest.mark.slow
def test_reward_model_resumes_after_a_kill(workdir):
    params = _params(workdir)
    if not params.path("sft_model").exists():
        sft.run(params)  # quick: reward_model.on_policy samples it
    # Four pairs (the file's first, of one class; the draw repeats them to fill 10 steps), so every step trains on the
    # same four and its loss must fall; on fresh pairs each step, 10 steps of a random model's reward head move the
    # loss less than the batch-to-batch noise.
    pairs = params.path("splits") / "pairs.jsonl"
    all_pairs = pairs.read_text()
    pairs.write_text("".join(all_pairs.splitlines(keepends=True)[:4]))
    try:
        _killed(workdir, "reward_model", 2, "sealed")
        assert _saved(checkpoints.folder(params, "reward_model")) == [(2, True)]
        result, logged = _tracked(params, "reward_model")
    finally:
        pairs.write_text(all_pairs)
    assert result.metrics["resumed_from_step"] == 2
    assert logged == list(range(3, params.reward_model.max_steps + 1))
    curve = params.path("reports") / "reward_model_curve.csv"
    assert _curve_steps(curve) == list(range(1, params.reward_model.max_steps + 1))
    assert result.metrics["loss_last"] < result.metrics["loss_first"]
    assert _changed(params.path("base"), params.path("reward_model")) > 1e-4
    assert not params.path("checkpoints").exists()


@pytest.mark.slow
def test_rl_resumes_after_a_kill(workdir):
    params = _params(workdir)
    for stage, out in ((sft, "sft_model"), (reward_model, "reward_model")):  # quick: the reward model rewards too
        if not params.path(out).exists():
            stage.run(params)
    _killed(workdir, "rl", 1, "sealed")
    assert _saved(checkpoints.folder(params, "rl")) == [(1, True)]
    result, logged = _tracked(params, "rl")
    assert result.metrics["resumed_from_step"] == 1
    assert logged == list(range(2, params.rl.max_steps + 1))
    assert _curve_steps(params.path("reports") / "rl_reward.csv") == list(range(1, params.rl.max_steps + 1))
    assert _changed(params.path("sft_model"), params.path("rl_model")) > 0
    assert not params.path("checkpoints").exists()
