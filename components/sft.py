"""Stage `sft`: supervised fine-tuning on verified trajectories (TRL SFTTrainer, optional PEFT LoRA,
assistant-only loss: tool-call turns and final answers carry loss, prompts and tool results do not).

Reads: `paths.base` (model), `paths.splits/sft.jsonl`, params `sft`.
Writes: `paths.sft_model` (merged weights, safetensors), `paths.reports/sft_loss.{csv,png}`.
Run: `python -m components.sft`.
"""

from __future__ import annotations

import tempfile
import time

from components import models, training
from components.config import Params
from components.episode import read_jsonl
from components.result import StageResult


def run(params: Params) -> StageResult:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = params.sft
    rows = training.sample_rows(read_jsonl(params.path("splits") / "sft.jsonl"), cfg.max_steps * cfg.batch_size,
                                params.project.seed)
    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in rows]
    dataset = Dataset.from_list(rows, on_mixed_types="use_json")
    model, tok = models.load(params.path("base"))
    with tempfile.TemporaryDirectory() as scratch:
        args = SFTConfig(
            output_dir=scratch, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, lr_scheduler_type="constant_with_warmup", warmup_steps=cfg.warmup_steps,
            max_length=None if cfg.padding_free else cfg.max_length, padding_free=cfg.padding_free,
            train_sampling_strategy=cfg.sampling, assistant_only_loss=True, logging_steps=1, save_strategy="no",
            report_to="none", seed=params.project.seed, **training.precision())
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                             peft_config=training.lora_config(cfg.lora, "CAUSAL_LM"))
        start = time.time()
        trainer.train()
        seconds = time.time() - start
    history = trainer.state.log_history
    reports = params.path("reports")
    training.write_curve(history, ["loss"], reports / "sft_loss.csv", reports / "sft_loss.png", "SFT loss")
    first, last = training.first_last(history, "loss")
    out = params.path("sft_model")
    training.save_trained(trainer.model, tok, out, {"stage": "sft", "base": params.base.model,
                                                    "lora": cfg.lora.enabled, "steps": cfg.max_steps})
    return StageResult(stage="sft", outputs={"model": str(out)},
                       metrics={"loss_first": first, "loss_last": last, "train_seconds": round(seconds, 1),
                                "episodes_seen": float(cfg.max_steps * cfg.batch_size)},
                       reports=[str(reports / "sft_loss.png"), str(reports / "sft_loss.csv")])


def main() -> None:
    from components.tracking import stage_main

    stage_main("sft")


if __name__ == "__main__":
    main()
