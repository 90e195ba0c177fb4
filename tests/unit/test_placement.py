"""Where inference runs: `models.load_for_inference` (this rank's GPU in bf16 where there is one, fp32 on the CPU) and
`training.place_for_sampling`. This machine has no GPU: the GPU side is checked through PyTorch's meta device and
patched CUDA queries here, on a real GPU by bench/gpu_check.py."""

from __future__ import annotations

import pytest
import torch

from components import training
from components.training import models
from tests.unit.test_constrained import model, tok  # noqa: F401  (fixtures)


def test_inference_loads_on_the_gpu_in_bf16_where_there_is_one_and_in_fp32_on_the_cpu(model, tok, tmp_path,  # noqa: F811
                                                                                       monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert models.inference_device() == (cuda if torch.cuda.is_available() else cpu)
    assert {models.inference_dtype(cpu, s) for s in ("auto", "bfloat16", "float32")} == {torch.float32}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.inference_dtype(cuda, "auto") == models.inference_dtype(cuda, "bfloat16") == torch.bfloat16
    assert models.inference_dtype(cuda, "float32") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4: fp32
    assert models.inference_dtype(cuda, "auto") == torch.float32
    models.save(model, tok, tmp_path, {"spec": "tiny"})
    monkeypatch.setattr(models, "inference_device", lambda: cpu)
    loaded, _ = models.load_for_inference(tmp_path, "bfloat16")
    assert (loaded.device, loaded.dtype, loaded.training) == (cpu, torch.float32, False)
    placed, _ = models.load(tmp_path, device="meta")  # `device` moves the weights
    assert placed.device.type == "meta"


@pytest.mark.parametrize("quantization, processes, moved", [(None, 1, True), ("4bit", 1, False), (None, 2, False)])
def test_a_start_model_is_sampled_on_the_gpu_unless_quantized_or_sharded(params_factory, monkeypatch, quantization,
                                                                         processes, moved):
    params = params_factory()
    params = params.model_copy(update={"base": params.base.model_copy(update={"quantization": quantization})})
    start = torch.nn.Linear(4, 4)
    monkeypatch.setattr(models, "inference_device", lambda: torch.device("meta"))  # stands in for a GPU
    monkeypatch.setattr(training.distributed, "world_size", lambda: processes)
    training.place_for_sampling(params, start)
    assert start.weight.device.type == ("meta" if moved else "cpu")
    monkeypatch.setattr(models, "inference_device", lambda: torch.device("cpu"))
    on_cpu = torch.nn.Linear(4, 4)
    training.place_for_sampling(params.model_copy(update={"base": params.base.model_copy(
        update={"quantization": None})}), on_cpu)  # no GPU: nothing moves
    assert on_cpu.weight.device.type == "cpu"
