"""Benchmark: score 10k predictions (BFCL records repeated, in every supported syntax) with `components.toolcalls.score`,
against a bare baseline in the same run (json.loads + tool-name equality). Fails if scoring takes over 5 s.

Run: `python bench/bench_score.py [--data ../shared/data/bfcl] [--n 10000]`
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.toolcalls import score  # noqa: E402
from components.data.importers import bfcl  # noqa: E402
from components.data.episode import Episode  # noqa: E402

BUDGET_S = 5.0
SYNTAXES = ("decoded", "python", "hermes", "json", "wrong")


def load(data: Path) -> list[Episode]:
    """Every BFCL question file in `data`, with its possible answers where there are some."""
    episodes = []
    for questions in sorted(data.glob("BFCL_v4_*.json")):
        answers = data / "possible_answer" / questions.name
        episodes += bfcl.import_episodes(questions, answers if answers.exists() else None)
    return episodes


def output(ep: Episode, syntax: str) -> Any:
    """The episode's ground truth as model output in one syntax ("wrong": a changed first argument)."""
    calls = [{"name": c.name, "arguments": dict(c.arguments)} for s in ep.expected.steps for c in s]
    if not calls:
        return "None of the functions fits."
    if syntax == "wrong" and calls[0]["arguments"]:
        calls[0]["arguments"][next(iter(calls[0]["arguments"]))] = "zz"
    if syntax == "python":
        return "[" + ", ".join(f"{c['name']}(" + ", ".join(f"{k}={v!r}" for k, v in c["arguments"].items()) + ")"
                               for c in calls) + "]"
    if syntax == "hermes":
        return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)
    if syntax == "json":
        return json.dumps(calls)
    return [{c["name"]: c["arguments"]} for c in calls]


def workload(episodes: list[Episode], n: int) -> tuple[list[Episode], list[score.Prediction]]:
    """`n` tasks (copies of the BFCL episodes under fresh ids) and one prediction each, syntaxes in rotation."""
    tasks, preds = [], []
    for i in range(n):
        ep = episodes[i % len(episodes)]
        task = ep.model_copy(update={"id": f"{ep.id}#{i}"})
        tasks.append(task)
        preds.append(score.Prediction(task.id, output(ep, SYNTAXES[i % len(SYNTAXES)]), "bench", i + 1))
    return tasks, preds


def baseline(tasks: list[Episode], preds: list[score.Prediction]) -> float:
    """Accuracy of a bare checker: decode JSON when the output is JSON text, compare the tool names only."""
    gold = {t.id: sorted(c.name for s in t.expected.steps for c in s) for t in tasks}
    hits = 0
    for p in preds:
        result = p.result
        if isinstance(result, str):
            try:
                result = json.loads(result)
            except json.JSONDecodeError:
                result = []
        names = sorted(c.get("name", next(iter(c), "")) for c in result if isinstance(c, dict)) \
            if isinstance(result, list) else []
        hits += names == gold[p.id]
    return hits / len(preds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bfcl")
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    tasks, preds = workload(load(args.data), args.n)

    start = time.perf_counter()
    base_acc = baseline(tasks, preds)
    base_s = time.perf_counter() - start
    start = time.perf_counter()
    report = score.score(tasks, preds)
    score_s = time.perf_counter() - start

    print(f"predictions: {len(preds)} ({', '.join(SYNTAXES)} in rotation)")
    print(f"baseline (json.loads + name equality): {base_s:.3f} s  accuracy {base_acc:.4f}")
    print(f"components.toolcalls.score (parse_any + BFCL checker + report): {score_s:.3f} s  accuracy {report['accuracy']:.4f}"
          f"  ({score_s / len(preds) * 1e6:.0f} us/prediction)")
    verdict = "ok" if score_s < BUDGET_S else "OVER"
    print(f"ratio score/baseline: {score_s / base_s:.1f}x  budget {BUDGET_S:.0f} s: {verdict}")
    return 0 if score_s < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
