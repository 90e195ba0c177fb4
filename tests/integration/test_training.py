"""Real TRL training for a few steps on the tiny model: loss falls, weights change, outputs reload.

Marked `integration`; runs in the default suite (about a minute on 2 cores).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from components import base, build, ingest, reward_model, rl, sft
from components.training import models
from components.config import load_params
from tests.conftest import write_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 240},
                                 sft={"max_steps": 12, "batch_size": 4}, reward_model={"max_steps": 6},
                                 rl={"max_steps": 2, "learning_rate": 1.0e-3}), profile="")
    for stage in (base, ingest, build):
        stage.run(p)
    return p


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _changed(before: dict, after: dict) -> float:
    shared = [k for k in before if k in after and before[k].shape == after[k].shape]
    return max((before[k] - after[k]).abs().max().item() for k in shared)


def test_sft_loss_falls_and_weights_change(params):
    result = sft.run(params)
    assert result.metrics["loss_last"] < result.metrics["loss_first"] * 0.9
    assert _changed(_weights(params.path("base")), _weights(params.path("sft_model"))) > 1e-4
    model, tok = models.load(params.path("sft_model"))
    assert tok.chat_template == models.chat_template() and model.dtype == torch.float32
    assert (params.path("reports") / "sft_loss.png").stat().st_size > 0


def test_reward_model_loss_falls_and_weights_change(params):
    result = reward_model.run(params)
    assert result.metrics["loss_last"] < result.metrics["loss_first"]
    after = _weights(params.path("reward_model"))
    assert "score.weight" in after
    assert _changed(_weights(params.path("base")), after) > 1e-4
    model, _ = models.load(params.path("reward_model"), sequence_classification=True)
    assert model.config.num_labels == 1


def test_rl_updates_policy_with_layered_rewards(params):
    if not params.path("sft_model").exists():
        sft.run(params)
    if not params.path("reward_model").exists():
        reward_model.run(params)
    result = rl.run(params)
    assert _changed(_weights(params.path("sft_model")), _weights(params.path("rl_model"))) > 0
    csv = (params.path("reports") / "rl_reward.csv").read_text()
    for layer in ("rewards/correctness/mean", "rewards/completion/mean", "rewards/efficiency/mean"):
        assert layer in csv.splitlines()[0]
    assert result.details["algorithm"] == "grpo"


@pytest.mark.parametrize("algorithm", ["gspo", "dr_grpo", "dapo"])
def test_rl_family_settings_build_valid_configs(algorithm):
    from trl import GRPOConfig

    from components import training

    config = GRPOConfig(output_dir="/tmp/unused", **rl.ALGORITHMS[algorithm], **training.precision())
    if algorithm == "gspo":
        assert config.importance_sampling_level == "sequence"
    else:
        assert config.loss_type == algorithm


def test_shared_prefix_sft_computes_the_same_loss_and_gradients(params):
    """`sft.share_prefix` runs the system turn once per batch; loss and gradients equal TRL's plain path."""
    import copy

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from components import training
    from components.data.fileio import read_jsonl

    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in read_jsonl(params.path("splits") / "sft.jsonl")[:4]]
    model, tok = models.load(params.path("base"))
    config = SFTConfig(output_dir=str(params.path("reports") / "scratch"), per_device_train_batch_size=4,
                       padding_free=True, max_length=None, assistant_only_loss=True, report_to="none",
                       **training.precision())
    outcomes = []
    for cls in (SFTTrainer, sft.shared_prefix_trainer(SFTTrainer, sft.prefix_ids(tok, rows[0]))):
        trainer = cls(model=copy.deepcopy(model), args=config, processing_class=tok,
                      train_dataset=Dataset.from_list(rows, on_mixed_types="use_json"))
        batch = next(iter(trainer.get_train_dataloader()))
        assert sft.split_shared_prefix(batch, sft.prefix_ids(tok, rows[0])) is not None  # every episode has it
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        outcomes.append((loss.item(), {n: p.grad for n, p in trainer.model.named_parameters() if p.grad is not None}))
    (plain_loss, plain_grads), (shared_loss, shared_grads) = outcomes
    assert abs(plain_loss - shared_loss) < 1e-5 and plain_grads.keys() == shared_grads.keys()
    assert max((plain_grads[k] - shared_grads[k]).abs().max().item() for k in plain_grads) < 1e-5
