"""How well the call gate's probe separates call from no-call requests it was not fit on, per layer and per kind.

    .venv/bin/python bench/call_gate_probe.py --model runs/default/artifacts/sft --workdir runs/default \
        [--layers 10 15 20] [--examples 600] [--l2 1.0] [--pool 0 300] [--out reports/call_gate_probe.md]

Fits the gate's probe (components/training/gate.py, the same requests, features and fit as the `sft` stage's) on
`--examples` first-turn requests of the workdir's training split, then scores every first-turn request of its test
split (and the domain's hand-written set, where there is one): AUC, each class right at the fitted threshold, the
no-call kinds (the episode's `source`: chat, near miss, missing argument, pool, removed tool...) each on its own, and
what the call class keeps when the threshold is moved until 90 % / 95 % of the test's no-call requests are refused.
That last column is a look at the test, not a way to choose the threshold: it says how far a threshold alone can go.
`--pool N ...`: also fit with N training-side requests of the shipped off-domain pool (`no_call.pool_episodes`, as
ingest draws them) beside the training split's, the SFT data unchanged.
Run it alone on the machine (it is a forward pass to the gate layer over every request).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components import domains  # noqa: E402
from components.config import load_params  # noqa: E402
from components.data.episode import Tool, iter_episodes  # noqa: E402
from components.domains import handwritten, no_call  # noqa: E402
from components.training import gate, models  # noqa: E402


def keeps_at(score: torch.Tensor, y: torch.Tensor, refuse: float) -> float:
    """Share of call requests still called when the threshold refuses `refuse` of the no-call requests."""
    neg = score[~y].sort().values
    k = min(len(neg) - 1, max(0, int(torch.ceil(torch.tensor(refuse * len(neg))).item()) - 1))
    return float((score[y] > neg[k]).float().mean())


def kind(episode) -> str:
    """An episode's no-call kind: the general generator's `source` (synthetic:foreign), else its id's last part
    (travel-t-000123-nearmiss), else its source."""
    if ":" in episode.source:
        return episode.source.split(":")[-1]
    last = episode.id.rsplit("-", 1)[-1]
    return last if last.isalpha() else episode.source


def first_turns(episodes: list, system_prompt: str, tok) -> tuple[list[str], torch.Tensor, list[str]]:
    """Every episode's first-request prompt, whether it calls, and its kind."""
    prompts, calls = zip(*(gate.first_request(e, system_prompt, tok) for e in episodes))
    return list(prompts), torch.tensor(calls), [kind(e) for e in episodes]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model folder (a saved sft / rl model)")
    ap.add_argument("--workdir", required=True, help="the run's workdir: splits/train.jsonl and splits/test.jsonl")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default="")
    ap.add_argument("--layers", type=int, nargs="*", help="hidden-state indexes (default: the gate's middle layer)")
    ap.add_argument("--examples", type=int, default=None, help="training requests (default: decoding's)")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--pool", type=int, nargs="*", default=[0], help="off-domain pool requests added to the fit")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()

    params = load_params(Path(args.params), profile=args.profile)
    system = params.base.system_prompt
    model, tok = models.load(args.model)
    model.eval()
    work = Path(args.workdir) / "splits"
    n = args.examples or params.decoding.call_gate_examples
    train = list(iter_episodes(work / "train.jsonl"))
    sets = {"test": first_turns(list(iter_episodes(work / "test.jsonl")), system, tok)}
    written = handwritten.episodes(params.project.domain)  # [] for a domain without a hand-written set
    if written:
        sets["hand-written"] = first_turns(written, system, tok)
    layers = args.layers or [gate.default_layer(model)]
    lines = [f"model `{args.model}`, L2 {args.l2}", "",
             "| layer | fit on | set | AUC | no-call right | call right | call kept at 90 % / 95 % refused | "
             "no-call right by kind |", "|---|---|---|---|---|---|---|---|"]
    catalog = [Tool.model_validate(t) for t in domains.of(params).catalog()]
    for layer, pooled in itertools.product(layers, args.pool):
        extra = no_call.pool_episodes(params.project.domain, catalog, pooled, 0.0, params.project.seed)
        # the stage's own fit: same requests, features and probe
        fitted, metrics = gate.fit(model, tok, train + extra, system, n + pooled, params.project.seed, layer, args.l2)
        if fitted is None:
            raise SystemExit(f"{work / 'train.jsonl'}: its first requests are all of one kind; nothing to fit")
        examples = f"{metrics['call_gate_examples']:.0f} ({metrics['call_gate_no_call_examples']:.0f} no-call" + (
            f", {pooled} pool)" if pooled else ")")
        for name, (prompts, calls, kinds) in sets.items():
            score = fitted.score(gate.features(model, tok, prompts, layer))
            said = score > 0
            kind_right = defaultdict(list)
            for k, c, s in zip(kinds, calls.tolist(), said.tolist()):
                if not c:
                    kind_right[k].append(not s)
            by_kind = ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(kind_right.items()))
            lines.append(f"| {layer} | {examples} | {name} (n = {len(calls)}) | {gate.auc(score, calls):.3f} | "
                         f"{float((~said[~calls]).float().mean()):.1%} | {float(said[calls].float().mean()):.1%} | "
                         f"{keeps_at(score, calls, 0.90):.1%} / {keeps_at(score, calls, 0.95):.1%} | {by_kind} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
