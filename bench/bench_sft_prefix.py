"""Benchmark: SFT steps with the shared system-turn prefix (`sft.share_prefix`) against TRL's plain
padding-free SFTTrainer, same model, same batches, in one run; also checks the loss and the LoRA
gradients agree.

    python bench/bench_sft_prefix.py [--params params.yaml] [--profile NAME] [--steps 4] [--batch 4]

Needs the `base` and `build` stages' outputs (run `tooltune stage base` / `... build` first).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from components.training import models
from components import sft, training
from components.config import load_params
from components.data.fileio import read_jsonl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    params = load_params(args.params, args.profile)
    rows = training.sample_rows(read_jsonl(params.path("splits") / "sft.jsonl"), args.steps * args.batch, 0)
    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in rows]
    dataset = Dataset.from_list(rows, on_mixed_types="use_json")
    model, tok = models.load(params.path("base"))
    config = SFTConfig(output_dir="/tmp/bench_sft_prefix", per_device_train_batch_size=args.batch, padding_free=True,
                       max_length=None, assistant_only_loss=True, report_to="none", **training.precision())
    shared_cls = sft.shared_prefix_trainer(SFTTrainer, sft.prefix_ids(tok, rows[0]))
    results = {}
    for name, cls in (("trl padding-free", SFTTrainer), ("shared prefix", shared_cls)):
        trainer = cls(model=copy.deepcopy(model), args=config, train_dataset=dataset, processing_class=tok,
                      peft_config=training.lora_config(params.sft.lora, "CAUSAL_LM", model))
        trainer.model.train()
        batches = list(trainer.get_train_dataloader())
        tokens = sum(b["input_ids"].numel() for b in batches)
        start, losses = time.perf_counter(), []
        for i, batch in enumerate(batches):
            loss = trainer.compute_loss(trainer.model, dict(batch))
            loss.backward()
            if i == 0:
                grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
            trainer.model.zero_grad()
            losses.append(loss.item())
        results[name] = (time.perf_counter() - start, tokens, losses, grads)
    (t0, tokens, l0, g0), (t1, _, l1, g1) = results.values()
    diff = max((g0[k] - g1[k]).abs().max().item() for k in g0)
    print(f"{len(l0)} steps x {args.batch} episodes, {tokens} tokens per run (torch threads {torch.get_num_threads()})")
    print("| trainer | seconds | s/step | episode tokens/s |\n|---|---|---|---|")
    for name, (sec, tok_n, _, _) in results.items():
        print(f"| {name} | {sec:.1f} | {sec / len(l0):.2f} | {tok_n / sec:.0f} |")
    print(f"speed-up {t0 / t1:.2f}x; max |loss diff| {max(abs(a - b) for a, b in zip(l0, l1)):.2e}; "
          f"max |grad diff| step 1 {diff:.2e}")


if __name__ == "__main__":
    main()
