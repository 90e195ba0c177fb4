"""`lora.layers`: LoRA on the top N decoder layers, placed by `training.lora_config` from the model itself, and
no gradient below the lowest adapted layer (real PEFT on small random Qwen2 and GPT-2 models)."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model

from components import training
from components.config import Lora

PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def _lora(layers: int | None, target: str = "all-linear") -> Lora:
    return Lora(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=target, layers=layers)


def _qwen2(layers: int = 4) -> torch.nn.Module:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                                        num_attention_heads=4, num_key_value_heads=2))


def _adapted_layers(model: torch.nn.Module) -> set[int]:
    return {int(n.split(".layers.")[1].split(".")[0]) for n, p in model.named_parameters()
            if p.requires_grad and "lora_" in n}


def _backward_reach(model: torch.nn.Module) -> dict[int, bool]:
    """One training step's backward: for each decoder layer, whether a gradient reached its output."""
    reached = {}

    def probe(module, args, output):
        index = module.self_attn.layer_idx
        reached[index] = False
        out = output[0] if isinstance(output, tuple) else output
        if out.requires_grad:
            out.register_hook(lambda grad: reached.__setitem__(index, True))

    stack = model.get_base_model().model.layers
    handles = [layer.register_forward_hook(probe) for layer in stack]
    ids = torch.randint(0, 128, (2, 12))
    model(input_ids=ids, labels=ids).loss.backward()
    for handle in handles:
        handle.remove()
    return reached


def test_null_keeps_every_layer():
    config = training.lora_config(_lora(None), "CAUSAL_LM", _qwen2())
    assert config.target_modules == "all-linear" and config.layers_to_transform is None
    assert training.lora_config(_lora(None).model_copy(update={"enabled": False}), "CAUSAL_LM", _qwen2()) is None


def test_top_n_adapts_only_the_top_layers_of_qwen2():
    model = _qwen2()
    config = training.lora_config(_lora(2), "CAUSAL_LM", model)
    assert (config.layers_pattern, config.layers_to_transform, sorted(config.target_modules)) == (
        "layers", [2, 3], PROJECTIONS)
    peft_model = get_peft_model(model, config)
    assert _adapted_layers(peft_model) == {2, 3}
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in peft_model.named_parameters() if p.requires_grad}
    assert sorted(adapted) == PROJECTIONS  # the same modules all-linear adapts, in fewer layers


def test_pattern_comes_from_the_model_not_llama():
    """GPT-2 keeps its blocks in `transformer.h` and its projections are Conv1D: both derived, not assumed."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_positions=32, n_embd=32, n_layer=3, n_head=2))
    config = training.lora_config(_lora(1), "CAUSAL_LM", model)
    assert (config.layers_pattern, config.layers_to_transform) == ("h", [2])
    assert sorted(config.target_modules) == ["c_attn", "c_fc", "c_proj"]
    peft_model = get_peft_model(model, config)
    assert {n.split(".h.")[1].split(".")[0] for n, p in peft_model.named_parameters() if p.requires_grad} == {"2"}


@pytest.mark.parametrize(("lora", "message"), [
    (_lora(5), r"lora\.layers: 5 is more than the 4 decoder layers of Qwen2ForCausalLM"),
    (_lora(2, "q_proj"), r"lora\.layers needs lora\.target_modules: all-linear \(got 'q_proj'\)"),
])
def test_bad_settings_fail_clearly(lora, message):
    with pytest.raises(ValueError, match=message):
        training.lora_config(lora, "CAUSAL_LM", _qwen2())


def test_layers_must_be_positive_or_null():
    with pytest.raises(ValueError, match="layers"):
        _lora(0)


def test_backward_stops_at_the_lowest_adapted_layer():
    """With the top 2 of 4 layers adapted no gradient reaches layers 0-1; the probe does see one there when the
    bottom needs it (all layers adapted, or PEFT's `enable_input_require_grads`, which gradient checkpointing
    would switch on), so it can tell."""
    model = _qwen2()
    top = get_peft_model(model, training.lora_config(_lora(2), "CAUSAL_LM", model))
    assert _backward_reach(top) == {0: False, 1: False, 2: True, 3: True}
    assert all(p.grad is None for n, p in top.named_parameters() if ".layers.0." in n or ".layers.1." in n)
    every = get_peft_model(_qwen2(), training.lora_config(_lora(None), "CAUSAL_LM", model))
    assert _backward_reach(every) == {0: True, 1: True, 2: True, 3: True}
    top.enable_input_require_grads()
    assert _backward_reach(top) == {0: True, 1: True, 2: True, 3: True}
