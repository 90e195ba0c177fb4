"""GPU check: the evaluation's engine on a CUDA device, against the CPU, and its speed there against plain generate.

    python bench/gpu_check.py prepare DIR [--model FOLDER]   # here: what the GPU machine needs, into DIR
    python bench/gpu_check.py run DIR [--episodes 256] [--out FILE]   # there (or anywhere: CPU rows only)

`prepare` copies a trained project model (default: the quick profile's SFT model, runs/quick/artifacts/sft, with its
call gate) to DIR/tiny and writes DIR/smollm2: SmolLM2-135M-Instruct's tokenizer with the project's tool template
and its config, without weights (the GGUF is 98 MB; a random model of the same shape costs what SmolLM2 costs).

`run`, part 1 (correctness): the trained model rolls out the same travel episodes (every pattern, the evaluation's
settings: constrained, gated) as `models.load_for_inference` places it: on the CPU in fp32, on the GPU in fp32 and
in bf16 (the GPU default). Per arm: seconds, exact, calls of a tool not offered (`hallucinated_tool`), unparsable,
and the share of rollouts identical to the CPU's. Then sampled, ungated rollouts with the RL trace on the GPU: the
largest gap between the traced log-probability of a token (plus the grammar's log mass) and a forward pass over
the whole sequence, in fp32 and in bf16 (what RL's importance ratios see).
Part 2 (speed, GPU only): a randomly initialised model of SmolLM2-135M's shape and vocabulary decodes one turn of
each episode, max 64 new tokens, in the engine (batch 16 / 64 / 256, free and constrained) and with plain
`model.generate` at batch 1; tokens per second and the ratio. Random weights write random text: the numbers are
about cost, not quality.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components import domains  # noqa: E402
from components.domains import generation  # noqa: E402
from components.evaluation import rollout  # noqa: E402
from components.training import models  # noqa: E402

SHARES = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.1, "irrelevance": 0.15, "multi_turn": 0.15}
SYSTEM = "You are a helpful travel assistant. Call a tool when it helps; answer directly when no tool fits."


def prepare(out: Path, model: Path) -> None:
    from transformers import AutoConfig

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(model, out / "tiny")
    smol, tok = models.load_smollm2()
    models.set_padding(smol, tok)
    models.apply_tool_template(smol, tok)
    (out / "smollm2").mkdir(parents=True)
    tok.save_pretrained(out / "smollm2")
    smol.config.save_pretrained(out / "smollm2")
    assert AutoConfig.from_pretrained(out / "smollm2").vocab_size == smol.config.vocab_size
    print(f"prepared {out}: tiny ({model}), smollm2 (tokenizer + config)")


def placed(folder: Path, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    model, tok = models.load(folder, dtype=dtype, device=device)
    return model.eval(), tok


def rollouts(model: Any, tok: Any, episodes: list, decoding: rollout.Decoding, trace: Any = None) -> tuple[float, list]:
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    done = rollout.run_episodes(model, tok, episodes, domains.get("travel"), SYSTEM, decoding, desc="rollout",
                                trace=trace)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, done


def correctness(folder: Path, episodes: list, gpu: bool) -> list[dict[str, Any]]:
    """Part 1: the same episodes on each placement, constrained and gated as evaluation decodes."""
    decoding = rollout.Decoding(batch_size=64, max_new_tokens=96, max_turns=3, constrained=True, gated=True)
    arms = [("cpu", "float32")] + ([("cuda", "float32"), ("cuda", "bfloat16")] if gpu else [])
    rows, reference = [], None
    for device, dtype in arms:
        model, tok = placed(folder, torch.device(device), getattr(torch, dtype))
        assert model.call_gate is not None, "the check needs a model with a call gate"
        rollouts(model, tok, episodes[:4], decoding)  # warm-up: kernels, grammar compiles
        seconds, done = rollouts(model, tok, episodes, decoding)
        verdicts = [rollout.judge(ro, ep) for ro, ep in zip(done, episodes)]
        reference = reference or done
        rows.append({"arm": f"{device} {dtype}", "seconds": round(seconds, 2),
                     "episodes_per_s": round(len(episodes) / seconds, 2),
                     "exact": round(sum(v.exact for v in verdicts) / len(verdicts), 4),
                     "hallucinated_tool": sum("hallucinated_tool" in v.errors for v in verdicts),
                     "unparsable": sum(v.unparsable for v in verdicts),
                     "same_as_cpu": round(sum(a.messages == b.messages and a.final == b.final
                                              for a, b in zip(done, reference)) / len(done), 4)})
        print(rows[-1], flush=True)
    return rows


@torch.no_grad()
def logprob_gap(folder: Path, episodes: list, device: str, dtype: str) -> dict[str, Any]:
    """Sampled, ungated rollouts with the RL trace; the largest |traced + log mass - forward| over model tokens."""
    from components.training.engine_rollout import Trace

    model, tok = placed(folder, torch.device(device), getattr(torch, dtype))
    trace = Trace(1.0)
    decoding = rollout.Decoding(batch_size=64, max_new_tokens=64, max_turns=3, constrained=True, gated=False,
                                sampling=rollout.Sampling(1.0, 1.0, seed=0))
    rollouts(model, tok, episodes, decoding, trace)
    gaps, tokens = [], 0
    for ep in episodes:
        seq = trace.sequences[ep.id]
        whole = torch.tensor([seq.prompt + seq.completion], device=model.device)
        logits = model(whole).logits[0, len(seq.prompt) - 1:-1].float()
        forward = torch.log_softmax(logits, -1).gather(-1, torch.tensor(seq.completion, device=model.device)[:, None])
        picked = [i for i, m in enumerate(seq.mask) if m]
        mass = iter(seq.log_mass)
        for i in picked:
            gaps.append(abs(seq.logprobs[i] + next(mass, 0.0) - forward[i, 0].item()))
        tokens += len(picked)
    gaps.sort()
    return {"arm": f"{device} {dtype}", "model_tokens": tokens, "max_gap": round(gaps[-1], 4),
            "p99_gap": round(gaps[int(0.99 * (len(gaps) - 1))], 4), "mean_gap": round(sum(gaps) / len(gaps), 5)}


@torch.no_grad()
def speed(folder: Path, episodes: list) -> list[dict[str, Any]]:
    """Part 2: one turn of each episode, a random SmolLM2-shaped model in bf16 on the GPU."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(REPO / "bench"))
    from bench_generate import plain_generate

    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
    model = model.to("cuda").eval()
    model.call_gate = None
    conversations = {e.id: [{"role": "system", "content": SYSTEM}] + e.prompt_messages() for e in episodes}
    tools = {e.id: e.tool_dicts() for e in episodes}

    def count(texts: list[str]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    def timed(fn: Any) -> tuple[float, list[str]]:
        torch.cuda.synchronize()
        start = time.perf_counter()
        texts = fn()
        torch.cuda.synchronize()
        return time.perf_counter() - start, texts

    rows = []
    plain_eps = episodes[:32]
    plain_generate(model, tok, [conversations[e.id] for e in plain_eps[:2]], [tools[e.id] for e in plain_eps[:2]], 8)
    seconds, texts = timed(lambda: plain_generate(model, tok, [conversations[e.id] for e in plain_eps],
                                                  [tools[e.id] for e in plain_eps], 64))
    plain_rate = count(texts) / seconds
    rows.append({"arm": "plain model.generate, batch 1", "episodes": len(plain_eps), "seconds": round(seconds, 2),
                 "tokens_per_s": round(plain_rate, 1), "ratio": 1.0})
    for constrained in (False, True):
        for batch in (16, 64, 256):
            rollout.one_turn(model, tok, {k: conversations[k] for k in list(conversations)[:batch]}, tools, batch, 8,
                             constrained=constrained)  # warm-up at this batch
            seconds, out = timed(lambda: list(rollout.one_turn(model, tok, conversations, tools, batch, 64,
                                                               constrained=constrained).values()))
            rate = count(out) / seconds
            rows.append({"arm": f"engine, batch {batch}{', constrained' if constrained else ''}",
                         "episodes": len(out), "seconds": round(seconds, 2), "tokens_per_s": round(rate, 1),
                         "ratio": round(rate / plain_rate, 2)})
            print(rows[-1], flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows])


def run(folder: Path, n: int, out: Path | None) -> None:
    gpu = torch.cuda.is_available()
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, device "
          f"{torch.cuda.get_device_name(0) if gpu else 'none (CPU rows only)'}", flush=True)
    episodes = generation.generate("travel", n, SHARES, 0.0, seed=0)
    report = {"correctness": correctness(folder / "tiny", episodes, gpu)}
    report["logprobs"] = [logprob_gap(folder / "tiny", episodes[:64], *arm)
                          for arm in ([("cuda", "float32"), ("cuda", "bfloat16")] if gpu else [("cpu", "float32")])]
    if gpu:
        report["speed"] = speed(folder / "smollm2", episodes)
    text = "\n\n".join(f"## {part}\n\n{table(rows)}" for part, rows in report.items())
    print("\n" + text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir", type=Path)
    p.add_argument("--model", type=Path, default=REPO / "runs/quick/artifacts/sft")
    r = sub.add_parser("run")
    r.add_argument("dir", type=Path)
    r.add_argument("--episodes", type=int, default=256)
    r.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.command == "prepare":
        prepare(args.dir, args.model)
    else:
        run(args.dir, args.episodes, args.out)


if __name__ == "__main__":
    main()
