"""Benchmark: LoRA SFT on every decoder layer against LoRA on the top N only (`sft.lora.layers`), on
SmolLM2-135M-Instruct and the same batches of generated travel episodes, arms alternating step by step in one
run; also the token length of the system turn (system prompt + tool list) as the SFT template renders it.

    python bench/bench_sft_layers.py [--params params.yaml] [--layers 8 15] [--steps 3] [--batch 4]

Builds the base in memory as the `base` stage does (`models.load_smollm2`, tool template, padding; ~30 s) and
trains as `components/sft.py` does (its SFTConfig settings, its shared-prefix trainer, `training.lora_config`).
Each arm: one untimed warm-up step, then `--steps` timed optimizer steps; all arms see the same batches.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from typing import Any

import torch

from components import build, domains, sft, training
from components.config import load_params
from components.training import models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--layers", type=int, nargs="+", default=[8, 15], help="top-N arms (all layers always runs)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per arm, after one warm-up step")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    params = load_params(args.params, None)
    print(f"load average before: {os.getloadavg()}; torch threads {torch.get_num_threads()}")
    model, tok = models.load_smollm2()  # the base stage's steps for smollm2-135m, without the save
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    rows = episode_rows(params, (args.steps + 1) * args.batch)
    prompt_lengths(tok, params.base.system_prompt, rows)
    arms = {"all layers": None, **{f"top {n}": n for n in args.layers}}
    scratch = tempfile.TemporaryDirectory(prefix="bench_sft_layers_")  # the trainers' unused output_dir
    trainers = {name: make_trainer(params, model, tok, rows, n, args.batch, scratch.name) for name, n in arms.items()}
    batches = list(next(iter(trainers.values())).get_train_dataloader())  # one batch order for every arm
    times: dict[str, list[float]] = {name: [] for name in arms}
    losses: dict[str, list[float]] = {name: [] for name in arms}
    for i, batch in enumerate(batches):
        order = list(arms)[i % len(arms):] + list(arms)[:i % len(arms)]  # rotate who goes first each round
        for name in order:
            seconds, loss = train_step(trainers[name], batch)
            if i:  # step 0 is the warm-up
                times[name].append(seconds)
            losses[name].append(loss)
    tokens = [b["input_ids"].numel() for b in batches[1:]]
    report(trainers, times, losses, tokens, len(model.model.layers))
    print(f"load average after: {os.getloadavg()} (2 shared cores: numbers under contention)")
    scratch.cleanup()


def episode_rows(params: Any, n: int) -> list[dict[str, Any]]:
    """`n` SFT rows (system prompt + messages, tools JSON) of generated training episodes, as `build` writes them."""
    episodes = domains.get("travel").generate(4 * n, params.ingest.shares, params.ingest.heldout_fraction,
                                              params.project.seed)
    rows = build.sft_rows([e for e in episodes if e.split != "test"], params.base.system_prompt)
    rows = training.sample_rows(rows, n, params.project.seed)
    return [{"messages": r["messages"], "tools": r["tools"]} for r in rows]


def make_trainer(params: Any, model: torch.nn.Module, tok: Any, rows: list[dict[str, Any]], layers: int | None,
                 batch: int, scratch: str) -> Any:
    """SFT trainer as `components/sft.py` builds it, on a copy of `model`, LoRA on the top `layers` (None: all)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = params.sft
    args = SFTConfig(
        output_dir=scratch, max_steps=len(rows) // batch,
        per_device_train_batch_size=batch, learning_rate=cfg.learning_rate, lr_scheduler_type="constant",
        max_length=None if cfg.padding_free else cfg.max_length, padding_free=cfg.padding_free,
        train_sampling_strategy=cfg.sampling, assistant_only_loss=True, save_strategy="no", report_to="none",
        seed=params.project.seed, **training.precision())
    cls = SFTTrainer
    if cfg.share_prefix and cfg.padding_free:
        cls = sft.shared_prefix_trainer(SFTTrainer, sft.prefix_ids(tok, rows[0]))
    copied = copy.deepcopy(model)
    lora = cfg.lora.model_copy(update={"enabled": True, "layers": layers})
    trainer = cls(model=copied, args=args, train_dataset=Dataset.from_list(rows, on_mixed_types="use_json"),
                  processing_class=tok, peft_config=training.lora_config(lora, "CAUSAL_LM", copied))
    trainer.create_optimizer()
    trainer.model.train()
    return trainer


def train_step(trainer: Any, batch: dict[str, Any]) -> tuple[float, float]:
    """One optimizer step (forward, backward, AdamW) on `batch`: seconds and loss."""
    start = time.perf_counter()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start, loss.item()


def report(trainers: dict[str, Any], times: dict[str, list[float]], losses: dict[str, list[float]],
           tokens: list[int], n_layers: int) -> None:
    """Print the per-arm table and each arm's speed against all-layer LoRA."""
    base = sum(tokens) / sum(times["all layers"])
    print(f"\n{len(tokens)} timed steps per arm, episode tokens per step {tokens}, {n_layers} decoder layers")
    print("| LoRA on | trainable params | s/step | each step (s) | episode tokens/s | vs all layers | same step vs all "
          "layers | loss per step (warm-up first) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, secs in times.items():
        trainable = sum(p.numel() for p in trainers[name].model.parameters() if p.requires_grad)
        rate = sum(tokens) / sum(secs)
        each = " ".join(f"{v:.1f}" for v in secs)
        paired = " ".join(f"{a / b:.2f}x" for a, b in zip(times["all layers"], secs))  # robust to a slow spell
        print(f"| {name} | {trainable / 1e6:.2f} M | {sum(secs) / len(secs):.2f} | {each} | {rate:.0f} | "
              f"{rate / base:.2f}x | {paired} | {' '.join(f'{v:.3f}' for v in losses[name])} |")


def prompt_lengths(tok: Any, system_prompt: str, rows: list[dict[str, Any]]) -> None:
    """Tokens of the default travel system turn as the SFT template renders it, against a JSON-schema tool list
    (what Hermes/Qwen-style templates render) and a names-only list; and its share of an episode's tokens."""
    tools = domains.get("travel").catalog()
    system = [{"role": "system", "content": system_prompt}]

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    rendered = tok.apply_chat_template(system, tools=tools, tokenize=False)
    head = f"<|im_start|>system\n{system_prompt}"
    as_json = head + "\nTools:" + "".join("\n" + json.dumps(t) for t in tools) + "<|im_end|>\n"
    names = head + "\nTools:" + "".join(
        f"\n- {t['function']['name']}({', '.join(t['function']['parameters']['properties'])})" for t in tools)
    names += rendered[rendered.index("\nTo call tools"):]
    episode = [count(tok.apply_chat_template(r["messages"], tools=json.loads(r["tools"]), tokenize=False))
               for r in rows]
    alone = count(head + "<|im_end|>\n")
    print(f"\nsystem turn, {len(tools)} travel tools: {count(rendered)} tokens as rendered "
          f"(system prompt alone {alone}); JSON schemas {count(as_json)}; names and "
          f"arguments only, no descriptions {count(names)}")
    print(f"episodes of the batches: mean {sum(episode) / len(episode):.0f} tokens, the system turn is "
          f"{count(rendered) / (sum(episode) / len(episode)):.0%} of it")


if __name__ == "__main__":
    main()
