"""Benchmark: reward-model steps with each pair's common prefix run once (`reward_model.share_prefix`) against
TRL's RewardTrainer on its padded batches, same model, same batches, in one run; also checks the loss and the
gradients agree.

    python bench/bench_rm_prefix.py [--params params.yaml] [--profile NAME] [-S key=value ...] [--steps 4] [--batch 4]

Needs the `base` and `build` stages' outputs (`paths.base`, `paths.splits/pairs.jsonl`). The arms alternate step by
step, on the same batches, after one untimed warm-up step each; LoRA as `reward_model.lora` sets it.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from components import reward_model, training
from components.config import load_params
from components.training import models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("-S", "--set", action="append", default=[], help="a params override, as the CLI's -S")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    params = load_params(args.params, args.profile, overrides=args.set)
    cfg = params.reward_model
    rows = reward_model.read_pairs(params.path("splits") / "pairs.jsonl")
    pairs = training.sample_rows(rows, (args.steps + 1) * args.batch, params.project.seed, key="kind", balanced=True)
    dataset = Dataset.from_list(reward_model.preference_rows(pairs), on_mixed_types="use_json")
    model, tok = models.load(params.path("base"), sequence_classification=True)
    model.config.pad_token_id = tok.pad_token_id
    config = RewardConfig(output_dir="/tmp/bench_rm_prefix", per_device_train_batch_size=args.batch,
                          max_length=cfg.max_length, report_to="none", train_sampling_strategy="sequential",
                          **training.precision(params.base))
    arms = {}
    shared_cls = reward_model.shared_prefix_trainer(RewardTrainer)
    for name, cls in (("trl padded", RewardTrainer), ("shared prefix", shared_cls)):
        start = copy.deepcopy(model)
        trainer = cls(model=start, args=config, train_dataset=dataset, processing_class=tok,
                      peft_config=training.lora_config(cfg.lora, "SEQ_CLS", start, modules_to_save=["score"]))
        trainer.model.train()
        arms[name] = {"trainer": trainer, "seconds": [], "losses": [], "grads": None}
    batches = list(next(iter(arms.values()))["trainer"].get_train_dataloader())
    load = os.getloadavg()[0]
    for i, batch in enumerate(batches):
        for name in (list(arms) if i % 2 else list(arms)[::-1]):  # rotate who goes first
            arm, start = arms[name], time.perf_counter()
            loss = arm["trainer"].compute_loss(arm["trainer"].model, dict(batch))
            loss.backward()
            if i == 0:  # the warm-up step: gradients compared, not timed
                arm["grads"] = {n: p.grad.clone() for n, p in arm["trainer"].model.named_parameters()
                                if p.grad is not None}
            else:
                arm["seconds"].append(time.perf_counter() - start)
            arm["trainer"].model.zero_grad()
            arm["losses"].append(loss.item())
    plain, shared = arms.values()
    real = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    cells = sum(b["input_ids"].numel() for b in batches[1:])
    diff = max((plain["grads"][k] - shared["grads"][k]).abs().max().item() for k in plain["grads"])
    print(f"{len(batches) - 1} timed steps x {args.batch} pairs: {real} real tokens in {cells} padded cells "
          f"(torch threads {torch.get_num_threads()}, load average {load:.1f} -> {os.getloadavg()[0]:.1f})")
    print("| trainer | s/step | real tokens/s |\n|---|---:|---:|")
    for name, arm in arms.items():
        sec = sum(arm["seconds"])
        print(f"| {name} | {sec / len(arm['seconds']):.2f} | {real / sec:.0f} |")
    print(f"speed-up {sum(plain['seconds']) / sum(shared['seconds']):.2f}x; max |loss diff| "
          f"{max(abs(a - b) for a, b in zip(plain['losses'], shared['losses'])):.2e}; max |grad diff| step 1 "
          f"{diff:.2e} (largest gradient {max(g.abs().max().item() for g in plain['grads'].values()):.2e})")


if __name__ == "__main__":
    main()
