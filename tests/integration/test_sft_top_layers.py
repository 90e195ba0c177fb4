"""`sft.lora.layers`: the real SFT stage (TRL SFTTrainer with the shared-prefix path, PEFT) on a 4-layer tiny
model with LoRA on the top 2 layers: the loss falls, no gradient reaches layers 0-1 in any step, and the merged
model differs from the base in the top layers' adapted weights only.

Marked `integration` (real training, ~1 min on 2 cores).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from components import base, build, ingest, sft
from components.config import load_params
from tests.conftest import write_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    # hidden 512: with the tied embeddings frozen (std 0.02) logits reach about 0.02 x hidden_size, so at 64 wide
    # LoRA alone cannot move the loss far from uniform
    tmp = tmp_path_factory.mktemp("top_layers")
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 400}, base={"tiny": {"num_hidden_layers": 4, "hidden_size": 512}},
                                 sft={"max_steps": 20, "batch_size": 4, "learning_rate": 3.0e-2,
                                      "lora": {"enabled": True, "layers": 2}}), profile="")
    for stage in (base, ingest, build):
        stage.run(p)
    return p


def test_top_layer_lora_trains_without_backward_below(params):
    reached: dict[int, set[bool]] = {}

    def probe(module, args, output):  # every decoder layer's forward, in every step (prefix pass included)
        if type(module).__name__ == "Qwen2DecoderLayer":
            index = module.self_attn.layer_idx
            out = output[0] if isinstance(output, tuple) else output
            reached.setdefault(index, set()).add(False)
            if out.requires_grad:
                out.register_hook(lambda grad: reached[index].add(True))

    handle = torch.nn.modules.module.register_module_forward_hook(probe)
    try:
        result = sft.run(params)
    finally:
        handle.remove()
    assert result.metrics["loss_last"] < result.metrics["loss_first"] * 0.9
    assert {i: True in seen for i, seen in reached.items()} == {0: False, 1: False, 2: True, 3: True}
    before = load_file(str(params.path("base") / "model.safetensors"))
    after = load_file(str(params.path("sft_model") / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert changed == {f"model.layers.{i}.{part}.{name}.weight" for i in (2, 3)
                       for part, names in (("self_attn", projections[:4]), ("mlp", projections[4:]))
                       for name in names}
