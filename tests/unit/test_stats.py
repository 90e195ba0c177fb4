"""Wilson intervals and exact McNemar tests: against hand-computed values and their defining equations."""

import itertools
from math import sqrt

import pytest

from components.evaluation import stats
from components.evaluation.verdict import Verdict


@pytest.mark.parametrize(("x", "n", "low", "high"), [
    # 8/10: p = .8, z^2/n = .38415; centre = (.8 + .19207) / 1.38415 = .71674;
    # half = (1.95996 / 1.38415) * sqrt(.016 + .0096036) = 1.41601 * .16001 = .22658
    (8, 10, 0.4902, 0.9433),
    # 0/10: low = 0 exactly; high = 2 * centre = 2 * .19207 / 1.38415 = .27753
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),  # the mirror image of 0/10
    # 40/40: z^2/(2n) = .048018, 1 + z^2/n = 1.096037; low = (1 + .048018 - .048018 * 2) / 1.096037 = .91236
    (40, 40, 0.9124, 1.0),
    # 30/40 (a pattern of the default test split): p = .75, z^2/n = .0960365, z^2/(2n) = .0480182;
    # centre = .7980182 / 1.0960365 = .728096; half = 1.788227 * sqrt(.0046875 + .00060023) = 1.788227 * .0727168
    # = .130035
    (30, 40, 0.5981, 0.8581),
])
def test_wilson_matches_hand_computed_values(x, n, low, high):
    assert stats.wilson(x, n) == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(("x", "n"), [(1, 7), (8, 10), (13, 60), (59, 60), (250, 1000)])
def test_wilson_bounds_solve_the_score_equation(x, n):
    """Independent check: the Wilson bounds are the rates p with |x/n - p| = z * sqrt(p(1 - p) / n)."""
    for p in stats.wilson(x, n):
        assert abs(x / n - p) == pytest.approx(stats.Z95 * sqrt(p * (1 - p) / n), abs=1e-12)
    low, high = stats.wilson(x, n)
    assert low < x / n < high


def test_wilson_without_episodes_and_bad_counts():
    assert stats.wilson(0, 0) == (0.0, 1.0)  # no episodes: every rate stays possible
    with pytest.raises(ValueError, match="successes=11, n=10"):
        stats.wilson(11, 10)
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        stats.wilson(-1, 10)


def test_clustered_is_wilson_for_independent_items_and_wider_when_the_misses_share_a_group():
    assert stats.clustered([[True]] * 45 + [[False]] * 5) == stats.wilson(45, 50)  # one item per group
    assert stats.clustered([[True] * 3] * 20) == stats.wilson(60, 60)  # no spread to estimate the design effect from
    spread = [[True, False]] * 25  # every group half right: no more variance than independent items, deff 1
    assert stats.clustered(spread) == pytest.approx(stats.wilson(25, 50))
    # the same 45 of 50, but 5 pairs per request and every miss in one request: 10 requests, one of them bad.
    # wins 0, 5 x9; p = .9; robust var = 10/9 * (4.5^2 + 9 * .5^2) / 2500 = .01; binomial .0018; deff 5.556, n_eff 9
    low, high = stats.clustered([[False] * 5] + [[True] * 5] * 9)
    assert (low, high) == pytest.approx(stats.wilson(8.1, 9.0))
    assert low < stats.wilson(45, 50)[0] - 0.2
    assert stats.clustered([[True, False, True]]) == stats.wilson(2 / 3, 1.0)  # one request: one observation
    assert stats.clustered([]) == (0.0, 1.0)


@pytest.mark.parametrize(("a_only", "b_only", "p"), [
    (1, 9, 0.021484375),  # 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024
    (9, 1, 0.021484375),  # symmetric
    (5, 5, 1.0),          # 2 * 638 / 1024 > 1: capped
    (0, 6, 0.03125),      # 2 * 1 / 64
    (0, 5, 0.0625),       # 2 / 32: five discordant pairs all one way are not enough at 5 %
    (0, 0, 1.0),          # no discordant pairs
    (3, 0, 0.25),         # 2 / 8
    (2, 10, 0.03857421875),  # 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * (1 + 12 + 66) / 4096 = 158 / 4096
])
def test_mcnemar_exact_matches_hand_computed_values(a_only, b_only, p):
    assert stats.mcnemar(a_only, b_only) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize(("a_only", "b_only"), [(2, 7), (4, 4), (0, 11), (6, 3)])
def test_mcnemar_is_the_share_of_fair_coin_outcomes_as_extreme(a_only, b_only):
    """Independent check: enumerate every way n fair coins fall; count those at least as far from n/2."""
    n = a_only + b_only
    far = abs(a_only - n / 2)
    extreme = sum(abs(sum(flips) - n / 2) >= far for flips in itertools.product((0, 1), repeat=n))
    assert stats.mcnemar(a_only, b_only) == pytest.approx(min(1.0, extreme / 2 ** n))


def test_mcnemar_stays_exact_for_large_counts():
    assert stats.mcnemar(500, 500) == 1.0
    assert 0 < stats.mcnemar(400, 600) < 1e-9  # tiny, yet no underflow to 0 and no overflow
    with pytest.raises(ValueError, match="a_only=-1"):
        stats.mcnemar(-1, 3)


def test_paired_matches_on_common_ids_only():
    a = {"e1": True, "e2": True, "e3": False, "e4": True, "only_a": True}
    b = {"e1": True, "e2": False, "e3": False, "e4": False, "only_b": False}
    res = stats.paired(a, b)
    assert res == stats.Paired(n=4, a_only=2, b_only=0, p_value=0.5, delta=0.5)  # 3/4 - 1/4; p = 2 * 1/4
    with pytest.raises(ValueError, match="no common episode ids"):
        stats.paired({"x": True}, {"y": True})


def _rows(pattern, exact, start=0):
    return [Verdict.from_row({"id": f"{pattern}-{i + start}", "pattern": pattern, "exact": e})
            for i, e in enumerate(exact)]


def test_compare_overall_and_per_pattern_with_verdicts():
    # chain: A wins 8 of 8 discordant episodes (p = 2/256); single: 1 each way (p = 1)
    a = _rows("chain", [True] * 8 + [False] * 2) + _rows("single", [True, False, True])
    b = _rows("chain", [False] * 8 + [False] * 2) + _rows("single", [False, True, True]) + _rows("recovery", [True])
    out = stats.compare("rl", "sft", a, b, alpha=0.05)
    assert [c.metric for c in out] == ["exact", "chain_exact", "single_exact"]  # recovery: only b has it
    overall, chain, single = out
    assert overall.result == stats.Paired(13, 9, 1, pytest.approx(22 / 1024), pytest.approx(8 / 13))
    assert (overall.verdict, chain.verdict, single.verdict) == ("better", "better", "no significant difference")
    assert chain.result.p_value == pytest.approx(2 / 256)
    worse = stats.compare("sft", "rl", b, a, alpha=0.05)[0]
    assert worse.verdict == "worse" and worse.result.delta == pytest.approx(-8 / 13)
    assert stats.compare("rl", "sft", a, b, alpha=0.01)[0].verdict == "no significant difference"  # p = .0215


def test_comparison_metrics_have_mlflow_names():
    import re

    out = stats.metrics(stats.compare("rl", "sft", _rows("chain", [True, False]), _rows("chain", [False, False]),
                                      alpha=0.05))
    assert out == {"paired.rl_vs_sft.exact_p": 1.0, "paired.rl_vs_sft.exact_delta": 0.5,
                   "paired.rl_vs_sft.chain_exact_p": 1.0, "paired.rl_vs_sft.chain_exact_delta": 0.5}
    assert all(re.fullmatch(r"[A-Za-z0-9_\-./ ]+", k) for k in out)
