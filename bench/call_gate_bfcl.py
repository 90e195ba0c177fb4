"""What moving the call gate's threshold trades on BFCL: irrelevance refused against calls kept, per category.

    .venv/bin/python bench/call_gate_bfcl.py --model runs/general/artifacts/sft --results reports/bfcl/sft \
        --workdir runs/general [--data ../shared/data/bfcl] [--profile general] [--out reports/call_gate_bfcl.md]

`--results` is `tooltune bfcl`'s output for the same gated model (its `<category>_score.json` files). The script
scores every question of those categories with the model's gate (the forward pass stops at the gate layer) and
recomputes each category's accuracy as if the threshold were moved by a shift: a question whose gate logit is at or
below the shift gets no call (the gate then bans `<` for the whole turn, so the turn is text, never a call), so a call
question counts right only if it was right and its logit is above the shift, an irrelevance question if it was
right or is now refused. That is exact for shifts >= the gate's own (0 here), no generation needed.

The shifts shown are the ones `decoding.call_gate_no_call_recall` would choose on the model's own training requests
(out-of-fold scores, as the sft stage computes them): the setting's value is picked from training data, and this
table is a look at BFCL, not a way to pick it. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import load_params  # noqa: E402
from components.data.episode import iter_episodes  # noqa: E402
from components.data.importers import bfcl as importer  # noqa: E402
from components.evaluation import bfcl  # noqa: E402
from components.toolcalls import render  # noqa: E402
from components.training import gate, models  # noqa: E402
from call_gate_fit import write_table  # noqa: E402  (bench/ is on sys.path: this script's folder)

RECALLS = (None, 0.8, 0.85, 0.9, 0.95)


def training_shifts(model, tok, params, workdir: Path) -> dict[float | None, tuple[float, float]]:
    """For each no-call recall: the shift it picks on the training split's out-of-fold scores, and the share of
    training call requests still called there."""
    cfg = params.decoding
    episodes = list(iter_episodes(workdir / "data" / "splits" / "train.jsonl"))
    prompts, calls = gate.requests(episodes, params.base.system_prompt, tok, cfg.call_gate_examples,
                                   params.project.seed)
    y = torch.tensor(calls)
    layer = gate.default_layer(model) if cfg.call_gate_layer is None else cfg.call_gate_layer
    held = gate.out_of_fold(gate.features(model, tok, prompts, layer), y, cfg.call_gate_l2, params.project.seed)
    out = {}
    for recall in RECALLS:
        shift = gate.threshold_shift(held, y, recall)
        out[recall] = (shift, float((held[y] > shift).float().mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a model folder with its call_gate.safetensors")
    ap.add_argument("--results", required=True, help="tooltune bfcl's output folder for this model")
    ap.add_argument("--workdir", required=True, help="the model's workdir (its training split)")
    ap.add_argument("--data", default="../shared/data/bfcl")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default="general")
    ap.add_argument("--out", default="reports/call_gate_bfcl.md")
    args = ap.parse_args()

    params = load_params(Path(args.params), profile=args.profile)
    model, tok = models.load(args.model)
    probe = gate.load(args.model, model)
    if probe is None:
        sys.exit(f"{args.model}: no call gate to move")
    results = Path(args.results)
    found = [c for c in bfcl.discover(args.data) if (results / f"{c.name}_score.json").is_file()]
    verdicts = {c.name: {i: r["valid"] for i, r in json.loads((results / f"{c.name}_score.json").read_text())
                         ["results"].items()} for c in found}
    ids, prompts = [], []
    for c in found:
        for e in importer.import_episodes(c.questions, c.answers):
            if e.id in verdicts[c.name]:
                ids.append(e.id)
                prompts.append(render.prompt(tok, bfcl.conversation(e, params.bfcl.system_prompt), e.tool_dicts()))
    logit = dict(zip(ids, probe.score(gate.features(model, tok, prompts, probe.layer)).tolist()))

    shifts = training_shifts(model, tok, params, Path(args.workdir))
    names = [c.name for c in found]
    head = ["no-call recall (training, out of fold)", "shift", "training calls kept"] + names + ["non-live AST"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for recall, (shift, kept) in shifts.items():
        moved = bfcl.gated(verdicts, {i: score > shift for i, score in logit.items()})
        ast = bfcl.aggregate(moved)["non_live_ast"]  # the leaderboard's mean, as `tooltune bfcl` computes it
        cells = ["gate's own" if recall is None else f"{recall:.2f}", f"{shift:.2f}", f"{100 * kept:.1f} %"]
        cells += [f"{100 * moved[n].accuracy:.1f}" for n in names] + ["n/a" if ast is None else f"{100 * ast:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
