"""The promotion gate's evidence: the candidate against the champion on THIS run's test split, episode by episode.

Reads: `metrics/evaluate.json` (already read by register: `champion.<gate_metric>`, and `champion.version` when the
evaluate stage records which registry version it measured) and the evaluate stage's per-episode verdict rows,
`paths.reports/evaluate/<model>_rollouts.jsonl` (`id`, `pattern`, `exact`, `first_exact`, `tool_ok`, `completion`,
`errors`) of the candidate and of the `champion` column.
Writes nothing: components/register.py records the decision (tags, description) under the promotion lock.
Run: `register.run` calls `load`, `register.decide` calls `decide`; nothing runs this module alone.

The rule (after register's check that the candidate beats the base model by more than `register.min_gain`):

1. Gate metric. Both models ran on the same episodes, so they are compared pairwise: `a` = episodes the candidate
   gets right and the champion wrong, `b` = the reverse, `n` = episodes both were scored on for the metric. The
   candidate must win by a margin the paired test supports: (a - b) / n > `register.min_gain` AND the exact
   two-sided McNemar p-value (components/evaluation/stats.py) < `register.alpha`. A higher rate on noise (p >= alpha)
   keeps the champion: the burden of proof is on the candidate.
2. Error classes (the taxonomy of `components.toolcalls`, per episode "the class occurs at least once"). For each of
   the k classes seen in either model, the same pairing: `a` = episodes where only the candidate has the class, `b` =
   where only the champion has it. The class GREW when a > b and the exact McNemar p < alpha / k; a grown class
   blocks promotion whatever the gate metric says. The counts shown are episodes with the class (champion ->
   candidate). Why alpha / k: k classes are tested at once, and at alpha each, a candidate no worse than the champion
   would be blocked by chance on some class far more often than alpha (up to k * alpha / 2); Bonferroni keeps that
   family-wise rate at alpha / 2 (growth is one tail). For "does any class grow", Holm's step-down procedure gives
   the same answer (it rejects something iff the smallest p < alpha / k), so nothing is lost by the simpler rule.
   The asymmetry is deliberate: a class blocks only when its growth is beyond chance, otherwise every small test
   split would block every candidate on some rare class.

Episodes are matched by id; the gate metric's success per episode mirrors `evaluate.summarize` (`METRIC_FIELDS`), and
the rate recomputed from the rows must equal the score in evaluate.json, so rows and scores of different evaluate
runs are never mixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.data.episode import DataError
from components.evaluation.verdict import Verdict
from components.evaluation import stats

CHAMPION = "champion"  # the evaluate stage's column name for the registry's champion
VERSION_KEY = "champion.version"  # the registry version evaluate measured, when it records it
GREW, FELL, SAME = "GREW", "fewer", "no significant change"


@dataclass(frozen=True)
class ClassChange:
    """One error class: episodes with it for the champion and the candidate, the paired test, the verdict."""

    name: str
    champion: int
    candidate: int
    p_value: float
    verdict: str

    def change(self) -> str:
        """`30 -> 10 (fewer, p=1.9e-06)`: episodes with the class, champion -> candidate, the verdict."""
        return f"{self.champion} -> {self.candidate} ({self.verdict}, p={self.p_value:.2g})"

    def text(self) -> str:
        return f"{self.name} {self.change()}"


@dataclass(frozen=True)
class Evidence:
    """The candidate against the champion column of this run's evaluation."""

    champion_version: str | None  # the registry version evaluate measured; None: evaluate did not record it
    champion_value: float  # the champion's gate metric on this run's test split
    gate: stats.Paired  # candidate (a) against champion (b) on the gate metric
    classes: tuple[ClassChange, ...]
    alpha: float

    def grown(self) -> list[ClassChange]:
        return [c for c in self.classes if c.verdict == GREW]

    def classes_text(self, version: str) -> str:
        if not self.classes:
            return "error classes: none in either model"
        return (f"error classes (episodes with the class, champion v{version} -> candidate, level alpha/k = "
                f"{self.alpha}/{len(self.classes)}): " + "; ".join(c.text() for c in self.classes))


# gate metric -> (pattern the verdicts must have, None: all; the verdict field that is the episode's success)
METRIC_FIELDS: dict[str, tuple[str | None, str]] = {
    "exact": (None, "exact"), "single_exact": ("single", "first_exact"), "single_tool": ("single", "tool_ok"),
    "irrelevance_no_call": ("irrelevance", "exact")}


def successes(verdicts: list[Verdict], metric: str) -> dict[str, bool]:
    """Episode id -> success on `metric` (`evaluate.summarize`'s definitions), for the rows it is measured on.

    Raises:
        DataError: `metric` has no per-episode verdict (an aggregate such as `failed_calls` or `pass_at_2`).
    """
    if metric in METRIC_FIELDS:
        pattern, field = METRIC_FIELDS[metric]
    elif metric.endswith(("_exact", "_completion")):
        pattern, _, field = metric.rpartition("_")
    else:
        raise DataError(f"register.gate_metric {metric!r}: no per-episode verdict for the paired test; use one of "
                        f"{sorted(METRIC_FIELDS)}, <pattern>_exact or <pattern>_completion")
    return {v.id: bool(getattr(v, field)) for v in verdicts
            if (pattern is None or v.pattern == pattern) and getattr(v, field, None) is not None}


def load(scores: dict[str, float], rollouts: Path, candidate: str, metric: str, alpha: float) -> Evidence | None:
    """The evidence for the gate, or None when evaluate did not measure the champion (`champion.<metric>` absent).

    Raises:
        DataError: A rollouts file is missing or malformed, or its rate differs from evaluate.json's score.
    """
    if f"{CHAMPION}.{metric}" not in scores:
        return None
    rows = {name: _rows(rollouts / f"{name}_rollouts.jsonl", scores, name, metric) for name in (candidate, CHAMPION)}
    try:
        gate = stats.paired(successes(rows[candidate], metric), successes(rows[CHAMPION], metric))
    except ValueError as err:
        raise DataError(f"{rollouts}: {candidate} against {CHAMPION} on {metric}: {err}") from None
    version = scores.get(VERSION_KEY)
    return Evidence(None if version is None else str(int(version)), float(scores[f"{CHAMPION}.{metric}"]), gate,
                    tuple(class_changes(rows[candidate], rows[CHAMPION], alpha)), alpha)


def _rows(path: Path, scores: dict[str, float], name: str, metric: str) -> list[Verdict]:
    """One model's verdicts (its rollouts file's rows), checked against its score in evaluate.json (same evaluate
    run)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (evaluate.json has {name}.{metric}: rerun the evaluate stage)")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON: {err}") from None
        try:
            if not isinstance(row, dict) or "errors" not in row:
                raise ValueError("a verdict row needs id, pattern and errors")
            rows.append(Verdict.from_row(row))
        except ValueError as err:
            raise DataError(f"{path}:{number}: expected a verdict row with id, pattern and errors: {err}") from None
    wins = successes(rows, metric)
    rate = round(sum(wins.values()) / len(wins), 4) if wins else 0.0
    if abs(rate - scores[f"{name}.{metric}"]) > 1e-4:
        raise DataError(f"{path}: {metric} from its rows is {rate}, metrics/evaluate.json says "
                        f"{name}.{metric}={scores[f'{name}.{metric}']}: the files come from different evaluate runs")
    return rows


def class_changes(candidate: list[Verdict], champion: list[Verdict], alpha: float) -> list[ClassChange]:
    """Each error class seen in either model: episodes with it (champion, candidate), paired test at alpha / k."""
    cand = {v.id: set(v.errors) for v in candidate}
    champ = {v.id: set(v.errors) for v in champion}
    ids = sorted(cand.keys() & champ.keys())
    names = sorted({e for i in ids for e in cand[i] | champ[i]})
    out = []
    for name in names:
        only_cand = sum(name in cand[i] and name not in champ[i] for i in ids)
        only_champ = sum(name in champ[i] and name not in cand[i] for i in ids)
        p = stats.mcnemar(only_cand, only_champ)
        verdict = SAME if p >= alpha / len(names) else (GREW if only_cand > only_champ else FELL)
        out.append(ClassChange(name, sum(name in champ[i] for i in ids), sum(name in cand[i] for i in ids), p,
                               verdict))
    return out


def decide(metric: str, evidence: Evidence, min_gain: float, version: str) -> tuple[bool, str]:
    """Promote over champion `version` on this run's evidence? (the decision, the reason naming every class)."""
    g, alpha = evidence.gate, evidence.alpha
    against = (f"champion v{version} {evidence.champion_value:.4f} (this run's test split) by {g.delta:+.4f} on "
               f"{g.n} paired episodes ({g.a_only} won, {g.b_only} lost, exact McNemar p={g.p_value:.2g}")
    classes = evidence.classes_text(version)
    grown = evidence.grown()
    if grown:
        names = ", ".join(f"{c.name} {c.champion} -> {c.candidate} episodes (p={c.p_value:.2g})" for c in grown)
        return False, f"error class grew beyond chance: {names}; {metric} against {against}); {classes}"
    if not g.delta > min_gain:
        return False, f"{metric} does not beat {against}) by more than {min_gain}; {classes}"
    if not g.p_value < alpha:
        return False, f"{metric} against {against} >= {alpha}: the paired test does not support the margin); {classes}"
    return True, f"{metric} beats {against} < {alpha}) by more than {min_gain}; {classes}"
