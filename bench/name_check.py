"""The name check against name floors: how many held-out calls each floor keeps and how many no-call requests it
refuses, on a trained model's first requests (the name check: components/training/gate.py).

    .venv/bin/python bench/name_check.py --model runs/default/artifacts/sft --workdir runs/default \
        [--floors 0,0.05,0.1,0.2,0.3,0.5] [--handwritten FILE|builtin] [--out reports/name_check.md] [--no-gate]

The model answers the first request of every test-split episode (and of `--handwritten` episodes) once, constrained
and gated as the evaluation decodes it, with the name check recording but never refusing (floor 0). For greedy
decoding that one pass is exact for every floor: a turn's name mass does not depend on the floor, and a turn whose
mass is under the floor would have been answered in text. Each row of the table: calls made (any call), calls whose
tools are the expected ones (names as a multiset), no-call requests refused, per no-call kind. `--no-gate` decodes
the same requests with the model's own first token deciding (what the gate is measured against). Run it alone.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import load_params  # noqa: E402
from components.data.episode import iter_episodes  # noqa: E402
from components.domains import handwritten  # noqa: E402
from components.evaluation.engine import Engine, Request  # noqa: E402
from components.evaluation.rollout import PrefixCache, chooser  # noqa: E402
from components.toolcalls import parse_output  # noqa: E402
from components.training import models  # noqa: E402
from call_gate_fit import write_table  # noqa: E402  (bench/ is on sys.path: this script's folder)


def first_turns(model, tok, episodes, system: str, batch_size: int, max_new_tokens: int) -> dict[str, tuple]:
    """id -> (called tool names, name mass or None) of each episode's first answer, name check recording only."""
    texts: dict[str, str] = {}
    engine = Engine(model, tok, batch_size, max_new_tokens, PrefixCache(model, tok), chooser(None), constrained=True)
    sys_turn = [{"role": "system", "content": system}] if system else []
    engine.run([Request(e.id, sys_turn + e.prompt_messages(), e.tool_dicts()) for e in episodes],
               lambda key, text: texts.__setitem__(key, text))
    masses = dict(engine.names)
    out = {}
    for e in episodes:
        parsed = parse_output(texts[e.id], tok=tok, tools=e.tool_dicts())
        out[e.id] = (sorted(c["name"] for c in parsed.calls), masses.get(e.id))
    return out


def rows(episodes, answers: dict[str, tuple], floors: list[float], label: str) -> list[str]:
    lines = []
    for floor in floors:
        calls = kept = right = refused = 0
        by_kind: Counter = Counter()
        kinds: Counter = Counter()
        for e in episodes:
            names, mass = answers[e.id]
            called = bool(names) and (mass is None or mass >= floor)
            expected = e.expected.steps[0] if e.expected.steps else []
            if expected:
                calls += 1
                kept += called
                right += called and names == sorted(c.name for c in expected)
            else:
                kind = e.source.split(":")[-1]
                kinds[kind] += 1
                refused += not called
                by_kind[kind] += not called
        no_calls = sum(kinds.values())
        detail = " ".join(f"{k} {by_kind[k]}/{n}" for k, n in sorted(kinds.items()))
        lines.append(f"| {label} | {floor:g} | {pct(kept, calls)} | {pct(right, calls)} | {pct(refused, no_calls)} "
                     f"({refused}/{no_calls}) | {detail} |")
    return lines


def episode_sets(workdir: str, extra: str | None, domain: str) -> dict[str, list]:
    """The workdir's test split, and `extra` as the "hand-written" set: an episodes file, or `builtin` (the built-in
    domain's hand-written set)."""
    sets = {"test": list(iter_episodes(Path(workdir) / "data" / "splits" / "test.jsonl"))}
    if extra == "builtin":
        sets["hand-written"] = handwritten.episodes(domain)
    elif extra:
        sets["hand-written"] = list(iter_episodes(Path(extra)))
    return sets


def pct(a: int, n: int) -> str:
    return f"{100 * a / n:.1f}" if n else "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a trained model folder with its call gate")
    ap.add_argument("--workdir", required=True, help="the model's workdir (its test split)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--floors", default="0,0.05,0.1,0.2,0.3,0.5")
    ap.add_argument("--handwritten", default=None,
                    help="an episodes file scored as its own set; builtin: the built-in domain's hand-written set")
    ap.add_argument("--out", default="reports/name_check.md")
    ap.add_argument("--no-gate", action="store_true",
                    help="decode without the call gate: the model's own first token decides (no name check either)")
    args = ap.parse_args()

    params = load_params(Path(args.params), profile=args.profile)
    model, tok = models.load(args.model)
    if model.call_gate is None:
        raise SystemExit(f"{args.model}: no call gate (the name check is part of it)")
    model.call_gate.name_floor = model.call_gate.value_floor = 0.0  # the floors below alone: the saved ones off
    if args.no_gate:
        model.call_gate = None
    model.eval()
    floors = [float(x) for x in args.floors.split(",")]
    sets = episode_sets(args.workdir, args.handwritten, params.project.domain)
    head = ["set", "name floor", "calls made", "expected tools called", "no-calls refused", "refused by kind"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, episodes in sets.items():
        answers = first_turns(model, tok, episodes, params.base.system_prompt, params.evaluate.batch_size,
                              params.evaluate.max_new_tokens)
        lines += rows(episodes, answers, floors, label)
        masses = sorted((m, bool(e.expected.steps and e.expected.steps[0])) for e in episodes
                        if (m := answers[e.id][1]) is not None)
        print(label, "lowest name masses (mass, is a call):", [(round(m, 3), c) for m, c in masses[:25]])
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
