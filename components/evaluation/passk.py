"""pass@k and pass^k over k sampled rollouts per episode (k-sample evaluation, `evaluate.samples` > 1).

With c successes among an episode's n samples, for j = 1..n:
- pass@j = 1 - C(n-c, j) / C(n, j): the chance that at least one of j samples (drawn from the n without
  replacement) succeeds; the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374). Capability.
- pass^j = C(c, j) / C(n, j): the chance that all j succeed; tau-bench's reliability metric (Yao et al. 2024,
  arXiv 2406.12045). It falls with j when a model succeeds only sometimes.
Both are averaged over episodes; pass@1 = pass^1 = the mean sample success.

Reads/writes nothing: components/evaluate.py samples and scores, components/evaluation/report.py shows the numbers.
"""

from __future__ import annotations

from collections import defaultdict
from math import comb
from statistics import fmean
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.evaluation.verdict import Verdict


def pass_at(n: int, c: int, j: int) -> float:
    """Unbiased pass@j of one episode: at least one of j samples succeeds, given c successes in n samples."""
    _check(n, c, j)
    # one division of exact integers: pass@1 is c/n to the bit; comb(m, j) = 0 for j > m (fewer than j failures)
    return (comb(n, j) - comb(n - c, j)) / comb(n, j)


def pass_hat(n: int, c: int, j: int) -> float:
    """pass^j of one episode: all of j samples succeed, given c successes in n samples."""
    _check(n, c, j)
    return comb(c, j) / comb(n, j)


def _check(n: int, c: int, j: int) -> None:
    if not (0 <= c <= n and 1 <= j <= n):
        raise ValueError(f"pass@j / pass^j need 0 <= c <= n and 1 <= j <= n; got n={n}, c={c}, j={j}")


def summarize(groups: list[list[Verdict]]) -> dict[str, float]:
    """pass@j and pass^j, j = 1..k, from each episode's k sample verdicts.

    Success is the `exact` verdict: overall (`pass_at_<j>`, `pass_hat_<j>`) and per pattern
    (`<pattern>_pass_at_<j>`, ...); success = `completion` (goal state reached, answered) overall only
    (`completion_pass_at_<j>`, ...). The names spell @ as `_at_` and ^ as `_hat_` (pass^k is often read "pass hat k")
    since MLflow metric names allow neither character.

    Raises:
        ValueError: No episodes, or episodes with different numbers of samples.
    """
    if not groups or len({len(g) for g in groups}) != 1:
        raise ValueError(f"pass@k needs the same number of samples per episode; got {sorted({len(g) for g in groups})}")
    by = defaultdict(list)
    for group in groups:
        by[group[0].pattern].append(group)
    out = _rates(groups, "exact", "") | _rates(groups, "completion", "completion_")
    for pattern, items in sorted(by.items()):
        out |= _rates(items, "exact", f"{pattern}_")
    return out


def _rates(groups: list[list[Verdict]], success: str, prefix: str) -> dict[str, float]:
    n = len(groups[0])
    counts = [sum(bool(getattr(v, success)) for v in g) for g in groups]
    js = range(1, n + 1)
    return ({f"{prefix}pass_at_{j}": round(fmean(pass_at(n, c, j) for c in counts), 4) for j in js}
            | {f"{prefix}pass_hat_{j}": round(fmean(pass_hat(n, c, j) for c in counts), 4) for j in js})
