"""pass@k and pass^k: the estimators against hand-computed values, and their summary over episodes."""

import itertools

import pytest

from components.evaluation import passk
from components.evaluation.verdict import Verdict


@pytest.mark.parametrize(("n", "c", "j", "at", "hat"), [
    (5, 2, 2, 1 - 3 / 10, 1 / 10),  # C(3,2)/C(5,2) = 3/10 fail both; C(2,2)/C(5,2) = 1/10 pass both
    (3, 1, 2, 1 - 1 / 3, 0.0),       # two draws from {pass, fail, fail}: one pair of the three fails both
    (4, 3, 2, 1.0, 3 / 6),           # one failure cannot fill two draws; C(3,2)/C(4,2) = 3/6
    (4, 0, 3, 0.0, 0.0),             # c = 0
    (4, 4, 3, 1.0, 1.0),             # c = n
    (4, 1, 4, 1.0, 0.0),             # j = n: any success / every sample
    (4, 4, 4, 1.0, 1.0),
    (4, 3, 1, 0.75, 0.75),           # j = 1: the share of successes
    (1, 1, 1, 1.0, 1.0),
    (1, 0, 1, 0.0, 0.0),
])
def test_estimators_match_hand_computed_values(n, c, j, at, hat):
    assert passk.pass_at(n, c, j) == pytest.approx(at)
    assert passk.pass_hat(n, c, j) == pytest.approx(hat)


def test_estimators_order_in_j():
    """pass@j rises with j, pass^j falls, pass@j >= pass^j; both equal c/n at j = 1."""
    for n in range(1, 7):
        for c in range(n + 1):
            at = [passk.pass_at(n, c, j) for j in range(1, n + 1)]
            hat = [passk.pass_hat(n, c, j) for j in range(1, n + 1)]
            assert at == sorted(at) and hat == sorted(hat, reverse=True)
            assert all(a >= h for a, h in zip(at, hat))
            assert at[0] == pytest.approx(c / n) and hat[0] == pytest.approx(c / n)


@pytest.mark.parametrize(("n", "c", "j"), [(3, 1, 0), (3, 1, 4), (3, 4, 1), (3, -1, 1), (0, 0, 1)])
def test_estimators_reject_impossible_counts(n, c, j):
    with pytest.raises(ValueError, match=f"n={n}, c={c}, j={j}"):
        passk.pass_at(n, c, j)
    with pytest.raises(ValueError, match="1 <= j <= n"):
        passk.pass_hat(n, c, j)


def _group(pattern, exact, completion=None):
    """One episode's sample verdicts (only the fields pass@k reads)."""
    completion = exact if completion is None else completion
    return [Verdict.from_row({"id": f"{pattern}#{i}", "pattern": pattern, "exact": e, "completion": d})
            for i, (e, d) in enumerate(zip(exact, completion))]


def test_summary_averages_over_episodes_overall_and_per_pattern():
    groups = [_group("single", [True, False, False]), _group("single", [True, True, True]),
              _group("chain", [False, False, False], completion=[True, True, False])]
    out = passk.summarize(groups)
    assert set(out) == {f"{pre}pass_{kind}_{j}" for pre, kind, j in itertools.product(
        ("", "single_", "chain_", "completion_"), ("at", "hat"), (1, 2, 3))}
    assert out["pass_at_1"] == out["pass_hat_1"] == round((1 / 3 + 1 + 0) / 3, 4)  # mean sample success
    assert out["pass_at_2"] == round((2 / 3 + 1 + 0) / 3, 4)
    assert out["pass_at_3"] == round(2 / 3, 4) and out["pass_hat_3"] == round(1 / 3, 4)
    assert out["pass_hat_2"] == round((0 + 1 + 0) / 3, 4)
    assert (out["single_pass_at_3"], out["single_pass_hat_3"], out["single_pass_at_1"]) == (1.0, 0.5, round(2 / 3, 4))
    assert out["chain_pass_at_3"] == 0.0
    assert out["completion_pass_at_3"] == 1.0 and out["completion_pass_hat_2"] == round((0 + 1 + 1 / 3) / 3, 4)


@pytest.mark.parametrize("groups", [[], [_group("single", [True, False]), _group("single", [True])]])
def test_summary_needs_the_same_number_of_samples_per_episode(groups):
    with pytest.raises(ValueError, match="same number of samples"):
        passk.summarize(groups)
