"""How sure is the model of the values it passes? The probability of each argument value's tokens in a trained
model's first calls, on call requests and on the no-call requests it calls anyway.

    .venv/bin/python bench/value_check.py --model runs/default/artifacts/sft --workdir runs/default \
        [--handwritten builtin|FILE] [--floors 0,0.01,0.02,0.05,0.1,0.2] [--out reports/value_check.md]

A no-call request that the call gate lets through is mostly one that sounds like the domain: a request that lacks a
required detail ("book me a hotel"), or a near miss no offered tool serves ("hire a car"). A call for it has to
carry values the user never gave; a call for a complete request copies or converts them. This bench measures
whether the model's own probabilities tell the two apart. The model answers the first request of every test-split
episode (and of the `--handwritten` set) once, constrained and gated as the evaluation decodes it (greedy); the
engine's trace keeps the tokens it wrote with their probabilities under the model's own distribution (no mask).
Each argument value of a turn's calls gets its lowest token probability, and whether it is a string the user wrote
(a case-insensitive substring of the user's turns). Each table row: a rule and a floor, and what refusing every
first call with a value under the floor would do (rule `any`: any value; `unwritten`: a string value the user did
not write): calls kept, exact first calls kept (names and arguments as expected), no-call requests refused, per
no-call kind. Below the table it prints the values of every no-call request called and of every exact call with a
value under 0.5. Counts only (no timings): it needs no quiet machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import load_params  # noqa: E402
from components.evaluation.engine import Engine, Request  # noqa: E402
from components.evaluation.rollout import PrefixCache, chooser  # noqa: E402
from components.toolcalls import parse_output  # noqa: E402
from components.training import gate, models  # noqa: E402
from call_gate_fit import write_table  # noqa: E402  (bench/ is on sys.path: this script's folder)
from name_check import episode_sets, pct  # noqa: E402


class Tokens:
    """An engine trace that keeps each finished turn's token ids and their probabilities under the model's own
    (unmasked) distribution: the tokens the model wrote, not a re-tokenisation of their text."""

    temperature = 1.0

    def __init__(self) -> None:
        self.turns: dict[str, tuple[list[int], list[float]]] = {}

    def request(self, key: str, ids: list[int]) -> None:
        pass

    def turn(self, key: str, ids: list[int], logps: list[tuple[float, float]]) -> None:
        self.turns[key] = (list(ids), [math.exp(free) for _, free in logps])


def first_turns(model, tok, conversations: dict[str, list[dict]], tools: dict[str, list[dict]],
                batch_size: int, max_new_tokens: int) -> tuple[dict[str, str], Tokens]:
    """key -> the text of the model's answer to each conversation, constrained and gated as evaluation decodes it
    (greedy), with the trace of its tokens."""
    texts: dict[str, str] = {}
    trace = Tokens()
    engine = Engine(model, tok, batch_size, max_new_tokens, PrefixCache(model, tok), chooser(None), constrained=True,
                    trace=trace)
    engine.run([Request(k, c, tools[k]) for k, c in conversations.items()],
               lambda key, text: texts.__setitem__(key, text))
    return texts, trace


def values(tok, ids: list[int], probs: list[float], user_text: str) -> list[dict]:
    """Each argument value of the turn's closed calls (`gate.value_probabilities`, as the engine's check reads them):
    its lowest token probability, and whether it is a string the user wrote (`gate.written`)."""
    pieces = [tok.decode([i], skip_special_tokens=False) for i in ids]
    return [{"argument": argument, "value": value, "lowest": lowest,
             "written": isinstance(value, str) and gate.written(value, user_text)}
            for _, argument, value, lowest in gate.value_probabilities(pieces, probs)]


def exact(calls: list[dict], expected) -> bool:
    """The first step's calls as expected: names and arguments (as a multiset; `accept` lists any listed value)."""
    def key(name, args):
        return name, json.dumps(args, sort_keys=True)

    want = Counter(key(c.name, c.arguments) for c in expected)
    got = Counter(key(c["name"], c.get("arguments") or {}) for c in calls)
    return want == got


def measure(model, tok, episodes, system: str, batch_size: int, max_new_tokens: int) -> list[dict]:
    sys_turn = [{"role": "system", "content": system}] if system else []
    conversations = {e.id: sys_turn + e.prompt_messages() for e in episodes}
    tools = {e.id: e.tool_dicts() for e in episodes}
    texts, trace = first_turns(model, tok, conversations, tools, batch_size, max_new_tokens)
    out = []
    for e in episodes:
        parsed = parse_output(texts[e.id], tok=tok, tools=tools[e.id])
        expected = e.expected.steps[0] if e.expected.steps else []
        user = " ".join(m["content"] or "" for m in conversations[e.id] if m["role"] == "user")
        out.append({"id": e.id, "kind": e.source.split(":")[-1], "should_call": bool(expected),
                    "called": bool(parsed.calls), "exact": bool(expected) and exact(parsed.calls, expected),
                    "values": values(tok, *trace.turns[e.id], user) if parsed.calls else []})
    return out


def refused(row: dict, rule: str, floor: float) -> bool:
    """Would the check refuse this row's call? `any`: some value's lowest token probability is under the floor;
    `unwritten`: some string value the user did not write is."""
    return any(v["lowest"] < floor and (rule == "any" or (isinstance(v["value"], str) and not v["written"]))
               for v in row["values"])


def table(rows: list[dict], floors: list[float], label: str, rule: str) -> list[str]:
    lines = []
    calls = [r for r in rows if r["should_call"]]
    no_calls = [r for r in rows if not r["should_call"]]
    kinds = Counter(r["kind"] for r in no_calls)
    for floor in floors:
        kept = sum(r["called"] and not refused(r, rule, floor) for r in calls)
        right = sum(r["exact"] and not refused(r, rule, floor) for r in calls)
        refusals = [r for r in no_calls if not r["called"] or refused(r, rule, floor)]
        by_kind = Counter(r["kind"] for r in refusals)
        detail = " ".join(f"{k} {by_kind[k]}/{n}" for k, n in sorted(kinds.items()))
        lines.append(f"| {label} | {rule} | {floor:g} | {pct(kept, len(calls))} | {pct(right, len(calls))} ({right}) | "
                     f"{pct(len(refusals), len(no_calls))} ({len(refusals)}/{len(no_calls)}) | {detail} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a trained model folder (its call gate is used when it has one)")
    ap.add_argument("--workdir", required=True, help="the model's workdir (its test split)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--floors", default="0,0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--handwritten", default=None,
                    help="an episodes file scored as its own set; builtin: the built-in domain's hand-written set")
    ap.add_argument("--out", default="reports/value_check.md")
    ap.add_argument("--dump", default=None, help="also write every scored turn as JSON lines here")
    args = ap.parse_args()

    params = load_params(Path(args.params), profile=args.profile, overrides=args.set_param)
    model, tok = models.load(args.model)
    if getattr(model, "call_gate", None) is not None:  # the floors below are the only checks: the model's own off
        model.call_gate.name_floor = model.call_gate.value_floor = 0.0
    model.eval()
    floors = [float(x) for x in args.floors.split(",")]
    sets = episode_sets(args.workdir, args.handwritten, params.project.domain)
    head = ["set", "rule", "value floor", "calls kept", "exact first calls kept", "no-calls refused", "refused by kind"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    dump = []
    for label, episodes in sets.items():
        rows = measure(model, tok, episodes, params.base.system_prompt, params.evaluate.batch_size,
                       params.evaluate.max_new_tokens)
        lines += table(rows, floors, label, "any") + table(rows, floors, label, "unwritten")
        dump += [{"set": label, **r} for r in rows]
        for r in rows:
            if r["values"] and (not r["should_call"] or r["exact"]):
                lowest = min(r["values"], key=lambda v: v["lowest"])
                if not r["should_call"] or lowest["lowest"] < 0.5:
                    print(f"  {label} {r['id']} {'NO-CALL' if not r['should_call'] else 'exact'}: " + ", ".join(
                        f"{v['argument']}={v['value']!r} {v['lowest']:.2f}{'' if v['written'] else ' unwritten'}"
                        for v in r["values"]))
    write_table(lines, args.out)
    if args.dump:
        Path(args.dump).write_text("".join(json.dumps(r) + "\n" for r in dump), encoding="utf-8")


if __name__ == "__main__":
    main()
