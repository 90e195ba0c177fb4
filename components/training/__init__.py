"""Shared pieces of the training stages (sft, reward_model, rl): precision, LoRA config, saving, curves."""

from __future__ import annotations

import csv
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import torch

from components import distributed
from components.config import Base, ConfigError, Params
from components.training import models
from components.data.draw import quotas
from components.data.fileio import atomic_dir

# PEFT reads `model.is_gradient_checkpointing` when it wraps a model (a deprecated alias in transformers 5.x that
# warns on every read); the project never turns checkpointing on, so the warning says nothing to a user.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def precision(base: Base | None = None) -> dict[str, bool]:
    """TRL config flags for `base.dtype`: bfloat16 = bf16 mixed precision; float32; auto (or no `base`) = bf16 on a
    bf16-capable GPU, fp32 on CPU (bf16 matmuls are ~300x slower there)."""
    gpu = torch.cuda.is_available()
    dtype = base.dtype if base is not None else "auto"
    bf16 = dtype == "bfloat16" or (dtype == "auto" and gpu and torch.cuda.is_bf16_supported())
    # `activation_checkpointing`, not its deprecated alias `gradient_checkpointing` (TRL's configs default the alias to
    # True; setting the new name silences transformers' FutureWarning and wins over the alias)
    return {"bf16": bf16, "use_cpu": not gpu, "activation_checkpointing": False}


def load_for_training(params: Params, folder: Path, lora: bool,
                      sequence_classification: bool = False) -> tuple[torch.nn.Module, Any]:
    """A training stage's start model, loaded as `base.dtype` and `base.quantization` select.

    Full fine-tuning loads fp32 weights (the optimizer's master copy; bf16 then only autocasts the compute). Under
    LoRA the base is frozen, so in bf16 it loads in bf16 (half the memory), or in NF4 with `quantization: 4bit`.

    Raises:
        ConfigError: `base.quantization: 4bit` without CUDA or without bitsandbytes (one line, before any work).
    """
    check_quantization(params.base)
    dtype = torch.bfloat16 if lora and precision(params.base)["bf16"] else torch.float32
    return models.load(folder, sequence_classification, dtype=dtype, quantization=params.base.quantization)


def place_for_sampling(params: Params, model: torch.nn.Module) -> None:
    """Move a training stage's start model to this process's GPU (`models.inference_device`) to sample it before
    its trainer starts (RL prompt selection, rft's attempts); the trainer finds it there. Left where it is on the
    CPU, for a 4-bit model (already placed) and under several processes (FSDP / DeepSpeed place their shards)."""
    device = models.inference_device()
    if device.type != "cpu" and not params.base.quantization and distributed.world_size() == 1:
        model.to(device)


def check_quantization(base: Base) -> None:
    """Fail, naming the setting, when `base.quantization` cannot run here; stages call it first, before any work.

    Raises:
        ConfigError: 4-bit without CUDA, or without bitsandbytes.
    """
    quantization = base.quantization
    if not quantization:
        return
    if not torch.cuda.is_available():
        raise ConfigError(f"base.quantization: {quantization} (QLoRA, bitsandbytes) needs a CUDA GPU and this "
                          "machine has none; set base.quantization: null")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(f"base.quantization: {quantization} needs bitsandbytes: pip install bitsandbytes")


def rows_needed(max_steps: int, batch_size: int, grad_accum: int) -> int:
    """Examples a run draws: every optimizer step takes batch_size x grad_accum from each process."""
    return max_steps * batch_size * grad_accum * distributed.world_size()


def lora_config(cfg: Any, task_type: str, model: torch.nn.Module, **extra: Any) -> Any:
    """A PEFT `LoraConfig` from a params `lora` section, or None when LoRA is off.

    Args:
        cfg: The `lora` section (components.config.Lora).
        task_type: PEFT task type, e.g. "CAUSAL_LM" or "SEQ_CLS".
        model: The model the adapter goes on; `cfg.layers` is counted from the top of its decoder stack.
        **extra: Further `LoraConfig` arguments (e.g. `modules_to_save`).
    """
    if not cfg.enabled:
        return None
    from peft import LoraConfig

    placement = {"target_modules": cfg.target_modules}
    if cfg.layers is not None:
        placement = top_layers(model, cfg.layers, cfg.target_modules)
    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, task_type=task_type, **placement,
                      **extra)


def top_layers(model: torch.nn.Module, n: int, target_modules: str) -> dict[str, Any]:
    """`LoraConfig` arguments that put LoRA on the top `n` decoder layers of `model` only.

    Nothing below the lowest adapted layer then needs a gradient: autograd stops there, so a step skips the
    frozen bottom's backward (about two thirds of a step's FLOPs are backward). PEFT refuses
    `layers_to_transform` with a string `target_modules`, so "all-linear" becomes the list of the linear
    modules' names inside one decoder layer (what PEFT's own expansion picks there).

    Raises:
        ValueError: `n` exceeds the number of layers, `target_modules` is not "all-linear", or the decoder
            stack cannot be told apart.
    """
    pattern, stack = models.decoder_stack(model)
    if n > len(stack):
        raise ValueError(f"lora.layers: {n} is more than the {len(stack)} decoder layers of "
                         f"{type(model).__name__}")
    if target_modules != "all-linear":
        raise ValueError(f"lora.layers needs lora.target_modules: all-linear (got {target_modules!r}): PEFT "
                         "cannot restrict a regex target to some layers")
    from transformers.pytorch_utils import Conv1D

    linear = sorted({name.rsplit(".", 1)[-1] for name, module in stack[0].named_modules()
                     if isinstance(module, (torch.nn.Linear, Conv1D))})
    return {"target_modules": linear, "layers_to_transform": list(range(len(stack) - n, len(stack))),
            "layers_pattern": pattern}


def save_trained(model: Any, tok: Any, out: Path, info: dict[str, Any], trainer: Any = None,
                 on_saved: Any = None) -> None:
    """Merge a LoRA adapter if present and save into `out` atomically (aside, then swapped in), so a
    failed run leaves the previous model intact. Only rank 0 writes. `on_saved(folder)` adds files to the saved
    model before the swap (the call gate: `call_gate`).

    Under several processes or a 4-bit base, pass the `trainer`: every rank must call this then, since
    `trainer.save_model` gathers weights that ZeRO-3 or FSDP sharded; rank 0 then merges the adapter into a float32
    copy of the base it names (a 4-bit base cannot be saved as ordinary weights).
    """
    if trainer is not None and (distributed.world_size() > 1 or getattr(model, "is_loaded_in_4bit", False)):
        scratch = Path(trainer.args.output_dir) / "model"  # in the checkpoint folder, which `finish` deletes
        trainer.save_model(str(scratch))
        if not distributed.is_main():
            return
        model = _reload(scratch)
    if not distributed.is_main():
        return
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with atomic_dir(out) as tmp:
        models.save(model, tok, tmp, info)
        if on_saved is not None:
            on_saved(tmp)


def call_gate(params: Params, metrics: dict[str, float]) -> Any:
    """`on_saved` for `save_trained` under `decoding.call_gate`: fit the call gate (components/training/gate.py) of
    the saved model on the training split's requests, save it beside the weights and add its metrics to
    `metrics`; None when the gate is off."""
    if not params.decoding.call_gate:
        return None

    def fit(folder: Path) -> None:
        from components.data.episode import iter_episodes
        from components.training import gate

        model, tok = models.load_for_inference(folder, params.base.dtype)
        cfg = params.decoding
        found, fitted = gate.fit(model, tok, list(iter_episodes(params.path("splits") / "train.jsonl")),
                                 params.base.system_prompt, cfg.call_gate_examples, params.project.seed,
                                 cfg.call_gate_layer, cfg.call_gate_l2, cfg.call_gate_no_call_recall)
        if found is not None:
            found.name_floor = cfg.call_gate_name_floor
            found.value_floor = cfg.call_gate_value_floor
            found.save(folder)
        metrics.update(fitted)

    return fit


def _reload(folder: Path) -> torch.nn.Module:
    """The float32 model `trainer.save_model` wrote into `folder`: whole weights, or its base with the adapter."""
    from transformers import AutoConfig

    if not (folder / "adapter_config.json").is_file():
        classify = AutoConfig.from_pretrained(folder).architectures[0].endswith("ForSequenceClassification")
        return models.load(folder, classify)[0]
    from peft import PeftConfig, PeftModel

    adapter = PeftConfig.from_pretrained(folder)
    base, _ = models.load(adapter.base_model_name_or_path, adapter.task_type == "SEQ_CLS")
    return PeftModel.from_pretrained(base, folder)


def write_curve(history: list[dict[str, Any]], keys: list[str], out_csv: Path, out_png: Path, title: str) -> None:
    """Write the logged training curve(s) as CSV (for `dvc plots`) and a PNG plot (rank 0 only)."""
    if not distributed.is_main():
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"step": h["step"], **{k: h[k] for k in keys if k in h}} for h in history if any(k in h for k in keys)]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", *keys])
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        points = [(r["step"], r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), marker="o", label=key)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def sample_rows(rows: list[dict[str, Any]], n: int, seed: int, weights: dict[str, float] | None = None,
                key: str = "pattern", balanced: bool = False) -> list[dict[str, Any]]:
    """A seeded shuffle of `rows` cut to the `n` a run of max_steps x batch_size can see (saves tokenizing).

    With `weights` (`sft.pattern_weights`; `reward_model.class_weights` with `key` "kind"), each group's count
    among the `n` (rows of one `row[key]`) is proportional to its number of rows times its weight (1 when not
    named), split by largest remainder; `balanced` (`reward_model.balance_classes`) drops the number of rows from
    that product, so groups of equal weight get equal counts however many rows each has. A group with fewer rows
    than its count repeats them. The result is shuffled again, so groups mix in every batch.
    """
    import random

    rng = random.Random(seed)
    rows = list(rows)
    rng.shuffle(rows)
    if not weights and not balanced:
        return rows[:n]
    weights = weights or {}
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row[key], []).append(row)
    mass = {p: (1 if balanced else len(items)) * weights.get(p, 1.0) for p, items in by.items()}
    if sum(mass.values()) <= 0:
        raise ValueError(f"weights {weights}: every {key} in the data {sorted(by)} has weight 0")
    counts = quotas(mass, n)
    picked = [by[p][i % len(by[p])] for p in sorted(by) for i in range(counts[p])]
    rng.shuffle(picked)
    return picked


def first_last(history: list[dict[str, Any]], key: str, window: int = 3) -> tuple[float, float]:
    """Mean of the first and of the last `window` logged values of `key`."""
    values = [h[key] for h in history if key in h]
    if not values:
        return float("nan"), float("nan")
    w = max(1, min(window, len(values) // 2 or 1))
    return sum(values[:w]) / w, sum(values[-w:]) / w
