"""Shared pieces of the training stages (sft, reward_model, rl): precision, LoRA config, saving, curves."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from components.training import models
from components.data.fileio import atomic_dir


def precision() -> dict[str, bool]:
    """TRL config flags: bf16 on a bf16-capable GPU, fp32 on CPU (bf16 matmuls are ~300x slower there)."""
    gpu = torch.cuda.is_available()
    return {"bf16": gpu and torch.cuda.is_bf16_supported(), "use_cpu": not gpu, "gradient_checkpointing": False}


def lora_config(cfg: Any, task_type: str, **extra: Any) -> Any:
    """A PEFT `LoraConfig` from a params `lora` section, or None when LoRA is off."""
    if not cfg.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules,
                      task_type=task_type, **extra)


def save_trained(model: Any, tok: Any, out: Path, info: dict[str, Any]) -> None:
    """Merge a LoRA adapter if present and save into `out` atomically (aside, then swapped in), so a
    failed run leaves the previous model intact."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    with atomic_dir(out) as tmp:
        models.save(model, tok, tmp, info)


def write_curve(history: list[dict[str, Any]], keys: list[str], out_csv: Path, out_png: Path, title: str) -> None:
    """Write the logged training curve(s) as CSV (for `dvc plots`) and a PNG plot."""
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


def sample_rows(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded shuffle of `rows` cut to the `n` a run of max_steps x batch_size can see (saves tokenizing)."""
    import random

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def first_last(history: list[dict[str, Any]], key: str, window: int = 3) -> tuple[float, float]:
    """Mean of the first and of the last `window` logged values of `key`."""
    values = [h[key] for h in history if key in h]
    if not values:
        return float("nan"), float("nan")
    w = max(1, min(window, len(values) // 2 or 1))
    return sum(values[:w]) / w, sum(values[-w:]) / w
