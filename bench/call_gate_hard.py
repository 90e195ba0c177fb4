"""Does the call gate's probe learn domain-like no-call requests (near misses, missing arguments) when it is fit on
more of them, and what do calls pay for it? A built-in domain only (it needs the domain's generator).

    .venv/bin/python bench/call_gate_hard.py --model runs/default/artifacts/sft --workdir runs/default \
        [--extra 400] [--held 300] [--out reports/call_gate_hard.md]

Fits probes (gate.fit_probe, standardised, L2 as given) on the stage's own fit requests (gate.requests over the
workdir's training split) alone and with `--extra` more training-side near-miss and missing-argument requests drawn
by the generator, on one layer or several side by side (gate.features per layer, concatenated); scores the test
split, the domain's hand-written set and `--held` held-out-side near misses and missing-argument requests (the
generator's held-out phrasings and values). Prints and writes a table: calls kept and no-call requests refused in
each set. docs/call_gate.md has the numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import load_params  # noqa: E402
from components.data.episode import iter_episodes  # noqa: E402
from components.domains import generation, handwritten  # noqa: E402
from components.training import gate, models  # noqa: E402

HARD = {"nearmiss": 0.5, "missing": 0.5}
PROBES = [([15], False), ([15], True), ([15, 30], False), ([15, 30], True)]  # (layers side by side, with the extra)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model folder (a saved sft / rl model)")
    ap.add_argument("--workdir", required=True, help="the run's workdir: splits/train.jsonl and splits/test.jsonl")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--extra", type=int, default=400, help="training-side hard no-call requests added to the fit")
    ap.add_argument("--held", type=int, default=300, help="held-out-side hard no-call requests scored")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()

    params = load_params(Path(args.params))
    domain, system, seed = params.project.domain, params.base.system_prompt, params.project.seed
    model, tok = models.load(args.model)
    model.eval()
    work = Path(args.workdir) / "splits"
    fit_prompts, fit_calls = gate.requests(list(iter_episodes(work / "train.jsonl")), system, tok,
                                           params.decoding.call_gate_examples, seed)
    extra = generation.generate(domain, args.extra, {"irrelevance": 1.0}, 0.0, seed + 7001, HARD)
    held = generation.generate(domain, args.held, {"irrelevance": 1.0}, 1.0, seed + 7002, HARD)

    def prompts(episodes: list) -> tuple[list[str], torch.Tensor]:
        texts, calls = zip(*(gate.first_request(e, system, tok) for e in episodes))
        return list(texts), torch.tensor(calls)

    sets = {"fit": (fit_prompts, torch.tensor(fit_calls)), "extra": prompts(extra),
            "test": prompts(list(iter_episodes(work / "test.jsonl"))), "held-out hard": prompts(held),
            "hand-written": prompts(handwritten.episodes(domain))}
    layers = sorted({layer for ls, _ in PROBES for layer in ls})
    feats = {(name, layer): gate.features(model, tok, texts, layer) for name, (texts, _) in sets.items()
             for layer in layers}
    print(f"features of {sum(len(t) for t, _ in sets.values())} requests at layers {layers}", flush=True)

    def x(name: str, ls: list[int]) -> torch.Tensor:
        return torch.cat([feats[name, layer] for layer in ls], dim=1)

    scored = ["test", "held-out hard", "hand-written"]
    lines = [f"model `{args.model}`, L2 {args.l2}, {args.extra} extra hard requests", "",
             "| layers | extra | " + " | ".join(f"{s}: calls kept | {s}: no-call refused" for s in scored) + " |",
             "|---|---|" + "---|---|" * len(scored)]
    for ls, with_extra in PROBES:
        fx, fy = x("fit", ls), sets["fit"][1]
        if with_extra:
            fx, fy = torch.cat([fx, x("extra", ls)]), torch.cat([fy, sets["extra"][1]])
        mean, std = fx.mean(0), fx.std(0).clamp(min=1e-6)
        weight, bias = gate.fit_probe((fx - mean) / std, fy, args.l2)
        cells = []
        for name in scored:
            said = ((x(name, ls) - mean) / std) @ weight + bias > 0
            calls = sets[name][1]
            cells += [f"{int(said[calls].sum())}/{int(calls.sum())}" if calls.any() else "-",
                      f"{int((~said[~calls]).sum())}/{int((~calls).sum())}"]
        lines.append(f"| {'+'.join(map(str, ls))} | {args.extra if with_extra else 0} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
