"""SFT's draw of the episodes a run sees (`training.sample_rows`, `sft.pattern_weights`) and the reward model's of
its pairs (`reward_model.balance_classes`, `reward_model.class_weights`)."""

from __future__ import annotations

import random
from collections import Counter
from typing import get_args

import pytest

from components import training
from components.data.draw import quotas
from components.config import ON_POLICY, PATTERNS, ConfigError, PairKind

ROWS = ([{"id": f"s{i}", "pattern": "single"} for i in range(60)]
        + [{"id": f"c{i}", "pattern": "chain"} for i in range(20)]
        + [{"id": f"p{i}", "pattern": "parallel"} for i in range(5)])


def test_without_weights_the_draw_is_the_seeded_shuffle_cut():
    rows = list(ROWS)
    random.Random(3).shuffle(rows)
    assert training.sample_rows(ROWS, 28, 3) == rows[:28]


def test_weights_set_each_pattern_s_count_and_a_short_pattern_repeats():
    drawn = training.sample_rows(ROWS, 34, 0, {"chain": 3.0, "parallel": 4.0})
    # mass: single 60 x 1, chain 20 x 3, parallel 5 x 4 -> 60 : 60 : 20 of 34 -> 14.57, 14.57, 4.86
    # (floors 14, 14, 4; the two left go to the largest remainders, ties by name)
    assert Counter(r["pattern"] for r in drawn) == {"single": 14, "chain": 15, "parallel": 5}
    assert len(drawn) == 34
    many = training.sample_rows(ROWS, 40, 0, {"single": 0.0, "chain": 0.0})
    assert Counter(r["pattern"] for r in many) == {"parallel": 40}  # 5 rows, each 8 times
    assert Counter(r["id"] for r in many) == {f"p{i}": 8 for i in range(5)}
    assert training.sample_rows(ROWS, 34, 0, {"chain": 3.0}) == training.sample_rows(ROWS, 34, 0, {"chain": 3.0})
    assert [r["pattern"] for r in drawn[:10]] != sorted(r["pattern"] for r in drawn[:10])  # mixed, not grouped


def test_quotas_add_up_and_follow_the_largest_remainders():
    assert quotas({"single": 60, "chain": 60, "parallel": 20}, 34) == {"single": 14, "chain": 15, "parallel": 5}
    assert quotas({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}  # ties by key
    assert quotas({"a": 7, "b": 0}, 3) == {"a": 3, "b": 0}
    for n in range(12):
        assert sum(quotas({"x": 5, "y": 3, "z": 1}, n).values()) == n


def test_weights_of_only_absent_patterns_at_zero_are_refused():
    with pytest.raises(ValueError, match="weight 0"):
        training.sample_rows(ROWS, 10, 0, {"single": 0.0, "chain": 0.0, "parallel": 0.0})


@pytest.mark.parametrize("weights, rule", [({"chains": 2.0}, "unknown patterns"), ({"chain": -1.0}, ">= 0"),
                                           ({p: 0.0 for p in PATTERNS}, "at least one")])
def test_params_refuse_bad_pattern_weights(params_factory, weights, rule):
    with pytest.raises(ConfigError, match=rule):
        params_factory(sft={"pattern_weights": weights})


def test_class_weights_tilt_the_reward_model_s_draw_by_error_class():
    pairs = ([{"id": f"v{i}", "kind": "wrong_value"} for i in range(40)]
             + [{"id": f"o{i}", "kind": "wrong_order"} for i in range(40)])
    drawn = training.sample_rows(pairs, 40, 0, {"wrong_value": 3.0}, key="kind")
    assert Counter(r["kind"] for r in drawn) == {"wrong_value": 30, "wrong_order": 10}
    shuffled = list(pairs)
    random.Random(0).shuffle(shuffled)
    assert training.sample_rows(pairs, 40, 0, key="kind") == shuffled[:40]  # no weights: the seeded shuffle cut
    with pytest.raises(ValueError, match="every kind in the data"):
        training.sample_rows(pairs, 40, 0, {"wrong_value": 0.0, "wrong_order": 0.0}, key="kind")


def test_a_balanced_draw_gives_classes_of_equal_weight_equal_counts_whatever_their_rows():
    pairs = ([{"id": f"v{i}", "kind": "wrong_value"} for i in range(60)]
             + [{"id": f"o{i}", "kind": "wrong_order"} for i in range(10)]
             + [{"id": f"n{i}", "kind": "no_call"} for i in range(30)])
    level = training.sample_rows(pairs, 36, 0, key="kind", balanced=True)
    assert Counter(r["kind"] for r in level) == {"wrong_value": 12, "wrong_order": 12, "no_call": 12}
    assert Counter(r["id"] for r in level if r["kind"] == "wrong_order").most_common(1)[0][1] == 2  # 10 rows, 12 draws
    tilted = training.sample_rows(pairs, 40, 0, {"no_call": 2.0}, key="kind", balanced=True)
    assert Counter(r["kind"] for r in tilted) == {"wrong_value": 10, "wrong_order": 10, "no_call": 20}
    by_rows = training.sample_rows(pairs, 40, 0, {"no_call": 2.0}, key="kind")  # 60 : 10 : 60
    assert Counter(r["kind"] for r in by_rows) == {"wrong_value": 18, "wrong_order": 3, "no_call": 19}


@pytest.mark.parametrize("weights, rule", [({"wrong_values": 2.0}, "unknown classes .*wrong_values.*known: .*wrong_value"),
                                           ({"no_call": -1.0}, ">= 0"),
                                           ({k: 0.0 for k in (*get_args(PairKind), ON_POLICY)}, "at least one")])
def test_params_refuse_bad_class_weights(params_factory, weights, rule):
    with pytest.raises(ConfigError, match=rule):
        params_factory(reward_model={"class_weights": weights})
    tilted = params_factory(reward_model={"class_weights": {"no_call": 2.0}})
    assert tilted.reward_model.class_weights == {"no_call": 2.0}
