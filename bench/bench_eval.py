"""Benchmark: batched evaluation rollouts (`components.evaluation.rollout.run_episodes` with `evaluate.batch_size`) against one
episode at a time (batch_size=1), same model, same episodes, same greedy decoding, in one run. Target: ≥3× faster.

    python bench/bench_eval.py [--params params.yaml] [--profile NAME] [--episodes 20] [--max-new-tokens 64]

Model: the project's base model (`paths.base`, SmolLM2 after the `base` stage) when present, else the tiny random
model. Episodes: the test split (`paths.splits/test.jsonl`) when present, else freshly generated for the domain.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components import domains  # noqa: E402
from components.training import models
from components.evaluation import rollout
from components.config import Params, load_params  # noqa: E402
from components.data.episode import Episode, read_episodes  # noqa: E402

TARGET = 3.0


def load_model(params: Params, folders: list[Path] | None = None) -> tuple[Any, Any, str]:
    """The first existing folder of `folders` (default: the base model's), else the tiny random model (plumbing
    only)."""
    for folder in folders if folders is not None else [params.path("base")]:
        if folder.is_dir():
            model, tok = models.load(folder)
            return model, tok, str(folder)
    model, tok = models.build_tiny(params.base.tiny, ["travel tools weather flights hotels"] * 50, seed=0)
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    return model, tok, "tiny (random)"


def load_episodes(params: Params, n: int) -> list[Episode]:
    """The first `n` test-split episodes, or `n` generated ones when there is no split yet."""
    split = params.path("splits") / "test.jsonl"
    if split.is_file():
        return read_episodes(split)[:n]
    return domains.get(params.project.domain).generate(n, params.ingest.shares, 0.0, params.project.seed)


def timed(model: Any, tok: Any, episodes: list[Episode], params: Params, batch_size: int,
          max_new_tokens: int) -> tuple[float, list[rollout.Rollout]]:
    """Seconds for one full rollout pass over `episodes`, and the rollouts."""
    start = time.perf_counter()
    outs = rollout.run_episodes(model, tok, episodes, domains.get(params.project.domain), params.base.system_prompt,
                                rollout.Decoding(batch_size, max_new_tokens, params.evaluate.max_turns),
                                desc=f"batch {batch_size}")
    return time.perf_counter() - start, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--profile", default=None)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    params = load_params(args.params, args.profile)
    model, tok, name = load_model(params)
    episodes = load_episodes(params, args.episodes)
    batch = params.evaluate.batch_size
    runs = {b: timed(model, tok, episodes, params, b, args.max_new_tokens) for b in (batch, 1)}
    same = sum(a.messages == b.messages for a, b in zip(runs[batch][1], runs[1][1]))
    print(f"model {name}, {len(episodes)} episodes, max_new_tokens {args.max_new_tokens}, "
          f"max_turns {params.evaluate.max_turns}, torch threads {torch.get_num_threads()}")
    print("| rollouts | seconds | episodes/s | turns |\n|---|---|---|---|")
    for b, (seconds, outs) in runs.items():
        print(f"| batch_size={b} | {seconds:.1f} | {len(episodes) / seconds:.2f} | {sum(o.turns for o in outs)} |")
    ratio = runs[1][0] / runs[batch][0]
    print(f"speed-up {ratio:.2f}x (target {TARGET:.0f}x: {'met' if ratio >= TARGET else 'NOT met'}); "
          f"identical conversations {same}/{len(episodes)}")


if __name__ == "__main__":
    main()
