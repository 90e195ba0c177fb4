"""How the call gate's fit settings (examples, layer, L2) separate call and no-call requests: on the model's own
training requests (5-fold), its held-out test split, and BFCL.

    .venv/bin/python bench/call_gate_fit.py --model runs/general/artifacts/sft --workdir runs/general \
        [--profile general] [--layers 15,20] [--examples 600,1200,2400] [--l2 1,10,100] \
        [--data ../shared/data/bfcl] [--limit N] [--out reports/call_gate_fit.md]

For each setting the probe is fit as the sft stage fits it (`gate.requests`, `gate.fit_probe`, `gate.out_of_fold`)
on the training split's first requests, and scored on:
- the training requests out of fold (AUC, calls kept, no-calls refused): what the setting is chosen on;
- the workdir's test split (its first requests; no-call refusals per kind of no-call episode);
- with `--data`, every BFCL question: the gate's AUC between call questions and irrelevance questions, and each
  category's accuracy as if the model were gated by this probe. That is exact without generating per setting: the
  model answers every question once without its gate (written to `<out stem>_ungated/`), a question the probe
  passes gets that answer, and one it refuses gets text (the gate bans `<` for the whole turn): right for
  irrelevance, wrong for the others.
Run it alone on the machine: the ungated BFCL pass is most of its time (28 min for the 620 shared questions here).
"""

from __future__ import annotations

import argparse
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


def numbers(text: str, kind: type) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def auc_cell(score: torch.Tensor, y: torch.Tensor) -> str:
    """The AUC, or n/a when the set holds one class only (BFCL's irrelevance alone, say)."""
    value = gate.auc(score, y)
    return "n/a" if value != value else f"{value:.3f}"


def split_rows(x: torch.Tensor, y: torch.Tensor, kinds: list[str], probe: gate.CallGate) -> list[str]:
    """AUC, calls kept, no-calls refused, and refusals per no-call kind of one scored set."""
    said = probe.calls(x)
    cells = [auc_cell(probe.score(x), y), pct(said[y].float().mean()), pct((~said[~y]).float().mean())]
    by_kind = {}
    for k, s, called in zip(kinds, said.tolist(), y.tolist()):
        if not called:
            right, n = by_kind.get(k, (0, 0))
            by_kind[k] = (right + (not s), n + 1)
    return cells + [" ".join(f"{k} {r}/{n}" for k, (r, n) in sorted(by_kind.items()))]


def write_table(lines: list[str], out: str) -> None:
    """Write a markdown table's lines to `out` (its folder made) and print it."""
    table = "\n".join(lines) + "\n"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table)
    print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a trained model folder (its own gate, if any, is not used)")
    ap.add_argument("--workdir", required=True, help="the model's workdir (its train and test splits)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--layers", default="15,20", help="decoder layers whose output the probe reads")
    ap.add_argument("--examples", default="600,1200,2400", help="training requests fit on (decoding.call_gate_examples)")
    ap.add_argument("--l2", default="1,10,100", help="L2 penalties (decoding.call_gate_l2)")
    ap.add_argument("--data", default=None, help="a BFCL data folder: also score the gate on its questions")
    ap.add_argument("--limit", type=int, default=None, help="first N BFCL questions per category")
    ap.add_argument("--out", default="reports/call_gate_fit.md")
    args = ap.parse_args()

    params = load_params(Path(args.params), profile=args.profile)
    seed, system = params.project.seed, params.base.system_prompt
    model, tok = models.load(args.model)
    model.call_gate = None  # the probes below decide; the model answers BFCL ungated
    model.eval()
    layers, sizes, l2s = numbers(args.layers, int), numbers(args.examples, int), numbers(args.l2, float)

    train = list(iter_episodes(Path(args.workdir) / "data" / "splits" / "train.jsonl"))
    prompts, calls = gate.requests(train, system, tok, max(sizes), seed)
    index = {p: i for i, p in enumerate(prompts)}
    chosen = {n: torch.tensor([index[p] for p in gate.requests(train, system, tok, n, seed)[0]]) for n in sizes}
    y = torch.tensor(calls)
    test = list(iter_episodes(Path(args.workdir) / "data" / "splits" / "test.jsonl"))
    test_prompts, test_calls = zip(*(gate.first_request(e, system, tok) for e in test))
    test_y, test_kinds = torch.tensor(test_calls), [e.source.split(":")[-1] for e in test]

    verdicts, bfcl_prompts, bfcl_ids, bfcl_cats = {}, [], [], []
    if args.data:
        found = bfcl.discover(args.data)
        ungated = Path(args.out).with_name(Path(args.out).stem + "_ungated")
        scores, _ = bfcl.evaluate(model, tok, params, found, ungated, args.limit)
        for c in found:
            verdicts[c.name] = {i: r["valid"] for i, r in scores[c.name].results.items()}
            for e in importer.import_episodes(c.questions, c.answers)[:args.limit]:
                bfcl_ids.append(e.id)
                bfcl_cats.append(c.name)
                bfcl_prompts.append(render.prompt(tok, bfcl.conversation(e, params.bfcl.system_prompt),
                                                  e.tool_dicts()))
    bfcl_y = torch.tensor(["irrelevance" not in c for c in bfcl_cats])
    names = sorted(verdicts, key=lambda c: ("irrelevance" in c, c))

    head = ["layer", "examples", "l2", "train AUC (5-fold)", "train calls kept", "train no-calls refused",
            "test AUC", "test calls kept", "test no-calls refused", "test refused by kind"]
    if args.data:
        head += ["BFCL AUC (calls vs irrelevance)"] + names + ["non-live AST"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer in layers:
        x = gate.features(model, tok, prompts, layer)
        x_test = gate.features(model, tok, list(test_prompts), layer)
        x_bfcl = gate.features(model, tok, bfcl_prompts, layer) if bfcl_prompts else None
        for n in sizes:
            for l2 in l2s:
                xs, ys = x[chosen[n]], y[chosen[n]]
                mean, std = xs.mean(0), xs.std(0).clamp(min=1e-6)
                weight, bias = gate.fit_probe((xs - mean) / std, ys, l2)
                probe = gate.CallGate(layer, weight, bias, mean, std)
                held = gate.out_of_fold(xs, ys, l2, seed)
                cells = [str(layer), str(len(ys)), f"{l2:g}", auc_cell(held, ys),
                         pct((held[ys] > 0).float().mean()), pct((held[~ys] <= 0).float().mean())]
                cells += split_rows(x_test, test_y, test_kinds, probe)
                if x_bfcl is not None:
                    moved = bfcl.gated(verdicts, dict(zip(bfcl_ids, probe.calls(x_bfcl).tolist())))
                    ast = bfcl.aggregate(moved)["non_live_ast"]
                    cells += [auc_cell(probe.score(x_bfcl), bfcl_y)] + [pct(moved[c].accuracy) for c in names]
                    cells += ["n/a" if ast is None else pct(ast)]
                lines.append("| " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
