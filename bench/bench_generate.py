"""Benchmark: the evaluation's rollouts (`rollout.run_episodes`: batched fast greedy decoder, shared prefix cache)
against plain `model.generate` on the same episodes in one run. Target: >= 5x the episodes per second.

    python bench/bench_generate.py [--model PATH] [--episodes 60] [--batch-size N] [--max-new-tokens N]

Both arms run the same simulator loop (`run_episodes`, same turn cap); only the decoding differs. The plain arm
decodes each turn of each episode alone: the full chat-template prompt, `model.generate(do_sample=False)` at
batch 1, no cache carried over. Batch 1 is the fair plain baseline on this CPU: a plain left-padded batch
decodes every row until the longest ends and re-encodes the shared system turn per row. Model: `--model`, else
the SFT model (`paths.sft_model`) when trained, else the base model (`paths.base`), else the tiny random one.
Episodes: freshly drawn by the domain's generator with the ingest pattern shares (every pattern mixed).
Prints the load average before and after: on a shared machine only the ratio is comparable between runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components import domains  # noqa: E402
from components.config import Params, load_params  # noqa: E402
from components.evaluation import rollout  # noqa: E402
from components.toolcalls import render  # noqa: E402

import bench_eval  # noqa: E402  (bench/ is on sys.path: this script's folder)

TARGET = 5.0


def load_model(params: Params, path: str | None) -> tuple[Any, Any, str]:
    """`path`, else the trained SFT model, else the base model, else the tiny random model (plumbing only)."""
    return bench_eval.load_model(params, [Path(path)] if path else [params.path("sft_model"), params.path("base")])


@torch.no_grad()
def plain_generate(model: Any, tok: Any, conversations: list[list[dict]], tools: list[list[dict]],
                   max_new_tokens: int, prefixes: Any = None, sampling: Any = None) -> list[str]:
    """Plain greedy `model.generate` per conversation (batch 1, the whole prompt encoded), text up to end-of-turn."""
    texts = []
    for conv, tool in zip(conversations, tools):
        prompt = render.prompt(tok, conv, tool)
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
        texts.append(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=False))
    return texts


def timed(arm: str, model: Any, tok: Any, episodes: list, params: Params, batch_size: int,
          max_new_tokens: int) -> tuple[float, list[rollout.Rollout]]:
    """Seconds for one rollout pass over `episodes` with the evaluation's decoder or the plain one, and the rollouts."""
    start = time.perf_counter()
    outs = rollout.run_episodes(model, tok, episodes, domains.get(params.project.domain), params.base.system_prompt,
                                rollout.Decoding(batch_size, max_new_tokens, params.evaluate.max_turns), desc=arm,
                                decode=plain_generate if arm == "plain" else None)
    return time.perf_counter() - start, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--profile", default=None)
    ap.add_argument("--model", default=None, help="model folder (default: sft, else base, else tiny)")
    ap.add_argument("--episodes", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=None, help="default: evaluate.batch_size")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: evaluate.max_new_tokens")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's); 1 on a loaded machine")
    args = ap.parse_args()
    if args.threads:  # two threads on two cores busy with other work wait on each other: 5-10x slower forwards
        torch.set_num_threads(args.threads)
    params = load_params(args.params, args.profile)
    batch = args.batch_size or params.evaluate.batch_size
    max_new = args.max_new_tokens or params.evaluate.max_new_tokens
    model, tok, name = load_model(params, args.model)
    episodes = domains.get(params.project.domain).generate(args.episodes, params.ingest.shares, 0.0,
                                                           params.project.seed)
    load_before = os.getloadavg()[0]
    fast = timed("evaluation", model, tok, episodes, params, batch, max_new)
    plain = timed("plain", model, tok, episodes, params, 1, max_new)
    load_after = os.getloadavg()[0]
    same = sum(a.messages == b.messages and a.final == b.final for a, b in zip(fast[1], plain[1]))
    print(f"model {name}, {len(episodes)} episodes ({', '.join(sorted({e.pattern for e in episodes}))}), "
          f"batch_size {batch}, max_new_tokens {max_new}, max_turns {params.evaluate.max_turns}, "
          f"torch threads {torch.get_num_threads()}, load average (1 min) {load_before:.2f} -> {load_after:.2f}")
    print("| decoding | seconds | episodes/s | assistant turns |\n|---|---|---|---|")
    for arm, (seconds, outs) in (("evaluation (rollout.generate)", fast), ("plain model.generate, batch 1", plain)):
        print(f"| {arm} | {seconds:.1f} | {len(episodes) / seconds:.3f} | {sum(o.turns for o in outs)} |")
    ratio = plain[0] / fast[0]
    print(f"speed-up {ratio:.2f}x (target {TARGET:.0f}x: {'met' if ratio >= TARGET else 'NOT met'}); "
          f"identical conversations {same}/{len(episodes)}")
    sys.exit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
