"""Stage `reward_model`: a learned reward on preference pairs made by breaking good trajectories
(wrong tool, wrong argument, missing step, wrong order, premature stop), with TRL RewardTrainer.

Reads: `paths.base`, `paths.splits/pairs.jsonl`, params `reward_model`.
Writes: `paths.reward_model` (sequence-classification model, safetensors), `paths.reports/reward_model_curve.*`;
while training, a checkpoint every `reward_model.save_steps` under `paths.checkpoints/reward_model/`, resumed by a
rerun after a kill (components/training/checkpoints.py).
Run: `python -m components.reward_model`.
"""

from __future__ import annotations

import json

from components import training
from components.config import Params
from components.data.fileio import read_jsonl
from components.result import StageResult
from components.training import checkpoints


def run(params: Params) -> StageResult:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from components.tracking import step_metrics_callback

    training.check_quantization(params.base)  # 4-bit without CUDA: stop before any work
    cfg = params.reward_model
    drawn = training.rows_needed(cfg.max_steps, cfg.batch_size, cfg.grad_accum)  # over all processes
    pairs = training.sample_rows(read_jsonl(params.path("splits") / "pairs.jsonl"), drawn, params.project.seed)
    dataset = Dataset.from_list([{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"],
                                  "tools": json.dumps(p["tools"])} for p in pairs], on_mixed_types="use_json")
    base = params.path("base")
    model, tok = training.load_for_training(params, base, cfg.lora.enabled, sequence_classification=True)
    model.config.pad_token_id = tok.pad_token_id
    resume = checkpoints.start(params, "reward_model", [params.path("splits") / "pairs.jsonl", base])
    args = RewardConfig(max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
                        max_length=cfg.max_length, logging_steps=1, report_to="none",
                        seed=params.project.seed, **checkpoints.trainer_args(params, "reward_model", cfg.save_steps),
                        **training.precision(params.base))
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                            peft_config=training.lora_config(cfg.lora, "SEQ_CLS", model, modules_to_save=["score"]),
                            callbacks=[step_metrics_callback(), checkpoints.sealer()])
    seconds = checkpoints.train(trainer, resume)
    history = trainer.state.log_history
    reports = params.path("reports")
    training.write_curve(history, ["loss", "accuracy"], reports / "reward_model_curve.csv",
                         reports / "reward_model_curve.png", "Reward model")
    first, last = training.first_last(history, "loss")
    _, acc = training.first_last(history, "accuracy")
    out = params.path("reward_model")
    training.save_trained(trainer.model, tok, out, {"stage": "reward_model", "base": params.base.model}, trainer)
    checkpoints.finish(params, "reward_model")
    return StageResult(stage="reward_model", outputs={"model": str(out)},
                       metrics={"loss_first": first, "loss_last": last, "accuracy_last": acc,
                                "pairs": float(len(pairs)), "train_seconds": round(seconds, 1),
                                "resumed_from_step": float(checkpoints.resumed_step(resume))},
                       reports=[str(reports / "reward_model_curve.png")])


def main() -> None:
    from components.tracking import stage_main

    stage_main("reward_model")


if __name__ == "__main__":
    main()
