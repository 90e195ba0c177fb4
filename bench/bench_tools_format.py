"""Benchmark: the compact against the json tool list (`base.tools_format`) on one model, zero-shot on BFCL.

    python bench/bench_tools_format.py [--model smollm2-135m|FOLDER] [--data ../shared/data/bfcl] [--limit 20]
                                       [--out reports/bench_tools_format]

The model gets the project's ChatML template with each tool list in turn (`toolcalls.render.chat_template`; a
model folder written by `base` or a training stage is re-templated the same way) and answers the same BFCL
questions (first `--limit` of each category) through `tooltune bfcl`'s path (`bfcl.evaluate`: engine, parser,
checker); `bfcl_compare` then pairs the two runs per category (Wilson intervals, McNemar json against compact).
Writes `<out>/compact/`, `<out>/json/` (each the usual bfcl outputs) and `<out>/compare.*`; prints the table and
the seconds per arm (on a shared machine the ratio, not the seconds, compares).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.config import load_params  # noqa: E402
from components.evaluation import bfcl, bfcl_compare  # noqa: E402
from components.toolcalls import render  # noqa: E402
from components.training import models  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=models.SMOLLM2, help="smollm2-135m (the base) or a model folder")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "bfcl"))
    parser.add_argument("--limit", type=int, default=20, help="first N questions per category")
    parser.add_argument("--out", default="reports/bench_tools_format")
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params, "")
    found = bfcl.discover(args.data)
    if args.model == models.SMOLLM2:
        model, tok = models.load_smollm2()
        models.apply_tool_template(model, tok)
        models.set_padding(model, tok)
    else:
        model, tok = models.load(args.model)
    chatml = models.chat_template()
    scores, summaries = {}, {}
    for fmt in render.FORMATS:
        tok.chat_template = render.chat_template(chatml, fmt)
        start = time.time()
        scores[fmt], summaries[fmt] = bfcl.evaluate(model, tok, params, found, Path(args.out) / fmt, args.limit)
        print(f"{fmt}: {time.time() - start:.0f} s", flush=True)
    rows = bfcl_compare.compare(scores, params.evaluate.alpha)
    bfcl_compare.write(rows, summaries, {f: f"{args.model} {f}" for f in render.FORMATS}, params.evaluate.alpha,
                       Path(args.out))
    print(bfcl_compare.markdown(rows, summaries, params.evaluate.alpha))


if __name__ == "__main__":
    main()
