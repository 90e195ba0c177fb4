"""How sure the evaluation's numbers are: Wilson score intervals for rates, exact McNemar tests for paired models.

- `wilson`: the 95 % Wilson score interval of a rate (successes out of n episodes). Unlike the textbook
  p +- z*sqrt(p(1-p)/n) it stays inside [0, 1] and does not collapse to a point at 0/n or n/n, which matters
  on test splits of a few dozen episodes (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it for small n).
- `clustered`: a rate's interval where items come in groups that succeed or fail together: Wilson's at the
  effective sample size n / deff (Kish's design effect, from the spread between groups).
- `mcnemar`: two models run on the SAME episodes are paired: only the discordant episodes (one right, the other
  wrong) say which is better. Under "no difference" each discordant episode is a fair coin, so the exact two-sided
  p-value is 2 * P(Binomial(a_only + b_only, 1/2) <= min(a_only, b_only)), capped at 1. It is computed exactly
  (integer binomial coefficients) at every size: the cost is nothing at test-split sizes, and it never needs the
  chi-square approximation's "enough discordant pairs" caveat. The mid-p variant is not used: it is less
  conservative but does not guarantee the 5 % false-claim rate.
- `compare`: the test for two models' verdicts (components/evaluation/verdict.py: `id`, `pattern`, `exact`), matched
  by episode id, overall and per pattern, with a verdict word at level alpha (`evaluate.alpha`).

Reads/writes nothing: components/evaluate.py pairs the models, components/evaluation/report.py shows the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb, sqrt
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from components.evaluation.verdict import Verdict

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile: a two-sided 95 % interval


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of the rate successes / n (counts, or an effective sample size's
    fractional ones: `clustered`).

    n = 0 gives (0.0, 1.0): no episodes say nothing about the rate, so every rate stays possible.

    Raises:
        ValueError: Not 0 <= successes <= n.
    """
    if not 0 <= successes <= n:
        raise ValueError(f"Wilson interval needs 0 <= successes <= n; got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)  # clamp float noise at 0/n and n/n


def clustered(groups: list[list[bool]], z: float = Z95) -> tuple[float, float]:
    """The Wilson interval (low, high) of a rate whose items come in groups that tend to succeed or fail together
    (the reward model's on-policy pairs: several per request), at the effective sample size n / deff. The design
    effect deff (Kish) is the cluster-robust variance of the rate (groups as the independent units, with the m/(m-1)
    small-sample factor) over the binomial variance p(1-p)/n, never below 1. One item per group, or a rate of 0 or
    1 (no spread to estimate it from), gives deff 1: the plain Wilson interval. One group of mixed items counts as
    one item; no groups gives (0.0, 1.0)."""
    if not groups:
        return 0.0, 1.0
    wins, sizes = [sum(g) for g in groups], [len(g) for g in groups]
    n, m = sum(sizes), len(groups)
    p = sum(wins) / n
    if max(sizes) == 1 or p in (0.0, 1.0):
        return wilson(sum(wins), n, z)
    if m == 1:  # one group of mixed items: one independent observation
        return wilson(p, 1.0, z)
    robust = m / (m - 1) * sum((w - p * s) ** 2 for w, s in zip(wins, sizes)) / n ** 2
    effective = n / max(1.0, robust / (p * (1 - p) / n))
    return wilson(min(effective, p * effective), effective, z)


def mcnemar(a_only: int, b_only: int) -> float:
    """The exact two-sided McNemar p-value from the discordant pairs (A right and B wrong, and the reverse).

    No discordant pairs gives 1.0: nothing tells the models apart.

    Raises:
        ValueError: A negative count.
    """
    if a_only < 0 or b_only < 0:
        raise ValueError(f"McNemar needs counts >= 0; got a_only={a_only}, b_only={b_only}")
    n = a_only + b_only
    tail = sum(comb(n, i) for i in range(min(a_only, b_only) + 1))
    return min(1.0, 2 * tail / 2 ** n)  # exact integers, one division: no float drift in the tail sum


class Paired(NamedTuple):
    """Two models on their common episodes: pairs, discordant counts, McNemar p-value, rate_a - rate_b."""

    n: int
    a_only: int
    b_only: int
    p_value: float
    delta: float


def paired(a: dict[str, bool], b: dict[str, bool]) -> Paired:
    """McNemar's test of two models' per-episode success (episode id -> success), paired on their common ids.

    Raises:
        ValueError: No common episode id: nothing to pair.
    """
    ids = sorted(a.keys() & b.keys())
    if not ids:
        raise ValueError(f"paired test: no common episode ids ({len(a)} and {len(b)} episodes)")
    a_only = sum(bool(a[i]) and not b[i] for i in ids)
    b_only = sum(bool(b[i]) and not a[i] for i in ids)
    return Paired(len(ids), a_only, b_only, mcnemar(a_only, b_only), (a_only - b_only) / len(ids))


def verdict(result: Paired, alpha: float) -> str:
    """"better" / "worse" (A against B) when p < alpha, else "no significant difference"."""
    if result.p_value >= alpha:
        return "no significant difference"
    return "better" if result.delta > 0 else "worse"


@dataclass(frozen=True)
class Comparison:
    """Model `a` against model `b` on one metric (`exact` or `<pattern>_exact`), with the verdict at `alpha`."""

    a: str
    b: str
    metric: str
    result: Paired
    verdict: str
    alpha: float


def compare(a: str, b: str, verdicts_a: list[Verdict], verdicts_b: list[Verdict], alpha: float) -> list[Comparison]:
    """Model `a` against `b` on `exact`, all episodes then each pattern both have, paired by episode id."""
    out = []
    patterns = sorted({v.pattern for v in verdicts_a} & {v.pattern for v in verdicts_b})
    for pattern, metric in [(None, "exact"), *((p, f"{p}_exact") for p in patterns)]:
        res = paired(_success(verdicts_a, pattern), _success(verdicts_b, pattern))
        out.append(Comparison(a, b, metric, res, verdict(res, alpha), alpha))
    return out


def _success(verdicts: list[Verdict], pattern: str | None) -> dict[str, bool]:
    """Episode id -> `exact`, of one pattern's verdicts (None: all)."""
    return {v.id: bool(v.exact) for v in verdicts if pattern is None or v.pattern == pattern}


def metrics(comparisons: list[Comparison]) -> dict[str, float]:
    """Flat metrics `paired.<a>_vs_<b>.<metric>_p` (McNemar p-value) and `..._delta` (rate_a - rate_b)."""
    out = {}
    for c in comparisons:
        key = f"paired.{c.a}_vs_{c.b}.{c.metric}"
        out[f"{key}_p"], out[f"{key}_delta"] = float(f"{c.result.p_value:.4g}"), round(c.result.delta, 4)  # p: 4 digits
    return out
