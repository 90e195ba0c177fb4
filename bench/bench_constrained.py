"""Benchmark: constrained decoding (`components.evaluation.constrained`) against unconstrained greedy decoding in
one run: seconds per decode step at batch 1 and 16, and their ratio.

    python bench/bench_constrained.py [--steps 48] [--threads 1] [--no-smollm2]

Arm "decode": the tiny random model (`base.tiny`, the travel tool template) decodes greedily in a batched KV-cache
loop over generated travel prompts, each row with its own offered tools; the constrained arm adds `mask` and
`advance` to every step. Rows are never dropped (a finished row only repeats the end of turn), so both arms
run the same number of steps at the same batch size. The tiny tokenizer has ~1k tokens, which understates the
engine's cost on a real vocabulary, so arm "mask only" times `mask` + `advance` alone on random logits with the
SmolLM2 tokenizer (49k tokens, the default base), steering no one: the rows write free text or calls as the
random logits fall. Grammars are compiled before timing (they are cached per tool list; the first compile of a
tool list costs ~0.1-0.5 s). Prints the load average before and after: on a shared machine only ratios compare.

Arm "episodes" (`--model FOLDER`): a trained model rolled out on the evaluation's episodes (the test split of the
params' workdir, first `--episodes` of them, and the hand-written set) by the evaluation itself
(`components.evaluate.compute`, the engine, the simulator), unconstrained then constrained, one after the other in
one process: seconds per episode and their ratio, and side by side the rates (95 % Wilson intervals) and the
error classes constraints should remove, with an exact McNemar test on `exact` over the same episodes.

    python bench/bench_constrained.py --params W/params.yaml --model W/artifacts/sft [--episodes 310]
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
from components.config import load_params  # noqa: E402
from components.evaluation import constrained  # noqa: E402
from components.toolcalls import render  # noqa: E402
from components.training import models  # noqa: E402


@torch.no_grad()
def decode_seconds(model: Any, tok: Any, prompts: list[str], tools: list[list[dict]], steps: int,
                   constrain: bool) -> float:
    """Seconds per step of a batched greedy KV-cache decode of `steps` tokens (prefill not counted)."""
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    mask = enc["attention_mask"]
    out = model(**enc, use_cache=True)
    cache, logits = out.past_key_values, out.logits[:, -1]
    c = constrained.Constraint(tok, tools) if constrain else None
    rows = list(range(len(prompts)))
    start = time.perf_counter()
    for _ in range(steps):
        if c is not None:
            logits = c.mask(logits, rows)
        picked = logits.argmax(-1)
        if c is not None:
            c.advance(rows, picked.tolist())
        mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype)], dim=1)
        out = model(input_ids=picked[:, None], attention_mask=mask, past_key_values=cache, use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1]
    return (time.perf_counter() - start) / steps


def mask_seconds(tok: Any, tools: list[list[dict]], steps: int, seed: int) -> float:
    """Seconds per step of `mask` + greedy pick + `advance` alone, on random logits the width of the vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    c = constrained.Constraint(tok, tools)
    rows, width = list(range(len(tools))), len(tok)
    start = time.perf_counter()
    for _ in range(steps):
        picked = c.mask(torch.randn(len(rows), width, generator=gen), rows).argmax(-1).tolist()
        c.advance(rows, picked)
    return (time.perf_counter() - start) / steps


def workload(params: Any, tok: Any, batch: int) -> tuple[list[str], list[list[dict]]]:
    """`batch` travel prompts (system turn, user request, offered tools) from the domain generator."""
    # Draw more than needed: with the pattern shares a draw of 1 may round every pattern to 0 episodes.
    episodes = domains.get("travel").generate(max(batch, 40), params.ingest.shares, 0.0, params.project.seed)[:batch]
    convs = [[{"role": "system", "content": params.base.system_prompt}] + e.prompt_messages() for e in episodes]
    tools = [e.tool_dicts() for e in episodes]
    prompts = [render.prompt(tok, c, t) for c, t in zip(convs, tools)]
    return prompts, tools


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's); 1 on a loaded machine")
    ap.add_argument("--no-smollm2", action="store_true", help="skip the mask-only arm on the SmolLM2 tokenizer")
    ap.add_argument("--model", type=Path, help="a model folder: run the episodes arm (only) with it")
    ap.add_argument("--episodes", type=int, default=None, help="episodes arm: first N test episodes (default: all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    params = load_params(args.params, None)
    if args.model:
        load_before = os.getloadavg()[0]
        episodes_arm(params, args.model, args.episodes)
        print(f"load average (1 min) {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
        return
    model, tok = models.build_tiny(params.base.tiny, ["travel tools weather flights hotels"] * 50, seed=0)
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    tok.padding_side = "left"
    model.eval()
    smol = None if args.no_smollm2 else _smollm2_tokenizer()
    load_before = os.getloadavg()[0]
    print(f"torch threads {torch.get_num_threads()}, {args.steps} steps per arm")
    print("| arm | vocabulary | batch | unconstrained s/step | constrained s/step | ratio |\n|---|---|---|---|---|---|")
    for batch in (1, 16):
        prompts, tools = workload(params, tok, batch)
        constrained.Constraint(tok, tools)  # compile the grammars before timing
        free = decode_seconds(model, tok, prompts, tools, args.steps, constrain=False)
        cons = decode_seconds(model, tok, prompts, tools, args.steps, constrain=True)
        print(f"| decode, tiny model | {len(tok)} | {batch} | {free:.5f} | {cons:.5f} | {cons / free:.2f} |")
        if smol is not None:
            constrained.Constraint(smol, tools)
            alone = mask_seconds(smol, tools, args.steps, seed=batch)
            print(f"| mask + advance only | {len(smol)} (SmolLM2) | {batch} | - | {alone:.5f} | "
                  f"{alone / free:.2f} x the tiny step |")
    print(f"load average (1 min) {load_before:.2f} -> {os.getloadavg()[0]:.2f}")


WATCHED = ("hallucinated_tool", "unknown_argument", "wrong_type", "missing_argument", "unparsable")


def episodes_arm(params: Any, folder: Path, limit: int | None) -> None:
    """Roll `folder`'s model out on the evaluation's episode sets free, then constrained; print the comparison."""
    from components import evaluate
    from components.evaluation import stats

    domain = domains.of(params)
    sets, _ = evaluate.episode_sets(params, domain)
    model, tok = models.load(folder)
    for s in sets:
        episodes = s.episodes[:limit] if limit and not s.prefix else s.episodes
        runs = {}
        # untimed warm-up of both arms (thread pools, allocator, grammar compiles): the first arm timed would pay it
        for arm in (False, True):
            evaluate.compute("warm-up", params, domain, [model, tok], episodes[:2], sample=False, constrained=arm)
        for arm in (False, True):
            start = time.perf_counter()
            entry = evaluate.compute(f"{'constrained' if arm else 'free'} {s.prefix or 'test'}", params, domain,
                                     [model, tok], episodes, sample=False, constrained=arm)
            runs[arm] = (entry, (time.perf_counter() - start) / len(episodes))
        (free, free_s), (cons, cons_s) = runs[False], runs[True]
        print(f"\n### {folder} on {s.prefix[:-1] or 'the test split'}: {len(episodes)} episodes\n")
        print(f"seconds per episode: free {free_s:.3f}, constrained {cons_s:.3f}, ratio {cons_s / free_s:.2f}\n")
        print("| metric | free | constrained |\n|---|---|---|")
        for key in [k for k in free.metrics if f"{k}_low" in free.metrics]:
            cells = [f"{m[key] * 100:.1f} [{m[key + '_low'] * 100:.0f}-{m[key + '_high'] * 100:.0f}]"
                     if key in m else "-" for m in (free.metrics, cons.metrics)]
            print(f"| {key} | {cells[0]} | {cells[1]} |")
        for cls in WATCHED:
            print(f"| errors.{cls} | {free.metrics.get('errors.' + cls, 0):.0f} | "
                  f"{cons.metrics.get('errors.' + cls, 0):.0f} |")
        print("\n| exact McNemar | pairs | free only | constrained only | p |\n|---|---|---|---|---|")
        for c in stats.compare("constrained", "free", cons.rows, free.rows, params.evaluate.alpha):
            print(f"| {c.metric} | {c.result.n} | {c.result.b_only} | {c.result.a_only} | {c.result.p_value:.4f} |")


def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    gguf = models.smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.chat_template = models.chat_template()
    return tok


if __name__ == "__main__":
    main()
