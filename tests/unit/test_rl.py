"""RL stage wiring without training: rewards bound to the project's domain, prompts GRPO can earn."""

import json

from components import domains, rl


def test_reward_layers_follow_the_project_domain(params_factory):
    params = params_factory(project={"domain": "finance"}, rl={"reward_weights": {"efficiency": 0.0}})
    chosen = rl.reward_functions(params, domains.of(params))
    assert [(name, weight) for name, _, weight in chosen] == [("correctness", 1.0), ("completion", 1.0),
                                                              ("reward_model", 0.5)]
    correctness = chosen[0][1]
    quote = {"name": "get_quote", "arguments": {"symbol": "AAPL"}}
    turn = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": quote}]}
    assert correctness([[turn]], [json.dumps([[quote]])]) == [1.0]  # a finance call, scored on the finance catalog


def test_multi_turn_prompts_are_left_out():
    rows = [{"prompt": [], "expected": "[]", "goal": "{}", "outputs": "[]", "pattern": p, "id": p} for p in ("single", "multi_turn")]
    assert [r["pattern"] for r in rl.grpo_rows(rows)] == ["single"]


def test_rft_samples_every_pattern_and_grpo_needs_a_simulator_for_the_engine(params_factory):
    import pytest

    from components.config import ConfigError
    from components.data.fileio import write_jsonl

    def arm(profile, **rl_settings):  # quick: travel, with a simulator; general: none
        params = params_factory(profile, rl=rl_settings)
        write_jsonl(params.path("splits") / "rl.jsonl", _rows(["single", "multi_turn", "chain"]))
        return params, domains.of(params)

    for profile in ("quick", "general"):  # rft samples through the engine whatever rl.rollout says
        for rollout in ("trl", "engine"):
            assert len(rl.prompts(*arm(profile, algorithm="rft", rollout=rollout))) == 3
    assert [r["pattern"] for r in rl.prompts(*arm("quick", algorithm="grpo", rollout="trl"))] == ["single", "chain"]
    assert len(rl.prompts(*arm("quick", algorithm="grpo", rollout="engine"))) == 3
    assert len(rl.prompts(*arm("general", algorithm="grpo", rollout="trl"))) == 3  # single-step prompts, no simulator
    with pytest.raises(ConfigError, match="rl.rollout: engine rolls episodes out in the domain's simulator"):
        rl.prompts(*arm("general", algorithm="dapo", rollout="engine"))


def _rows(patterns):
    return [{"id": f"{p}-{i}", "pattern": p} for i, p in enumerate(patterns)]


def test_weighted_order_draws_heavy_patterns_first_and_skips_weight_zero():
    from components.training import selection

    rows = _rows(["single"] * 500 + ["chain"] * 500 + ["irrelevance"] * 50)
    order = selection.weighted_order(rows, {"chain": 4.0, "irrelevance": 0.0}, seed=1)
    assert len(order) == 1000 and not any(r["pattern"] == "irrelevance" for r in order)
    head = [r["pattern"] for r in order[:200]]
    assert head.count("chain") > 0.7 * len(head)  # odds 4:1 -> ~80 % of an early draw
    assert selection.weighted_order(rows, None, seed=1) == selection.weighted_order(rows, None, seed=1)
    assert sorted(r["id"] for r in selection.weighted_order(rows, None, seed=1)) == sorted(r["id"] for r in rows)


def test_select_keeps_prompts_with_reward_spread_and_stops_when_enough():
    from components.training import selection

    rows = _rows(["single"] * 40)
    verdicts = {r["id"]: [i % 3 == 0, i % 3 != 2, False, i % 3 == 1] for i, r in enumerate(rows)}
    # i % 3 == 0: [T, T, F, F] spread; == 1: [F, T, F, T] spread; == 2: [F, F, F, F] never
    asked = []

    def draw(chunk):
        asked.append(len(chunk))
        return [verdicts[r["id"]] for r in chunk]

    kept, metrics = selection.select(rows, needed=6, k=4, weights=None, seed=0, draw=draw)
    assert len(kept) >= 6 and all(int(r["id"].split("-")[1]) % 3 != 2 for r in kept)
    assert asked[0] == 12 and sum(asked) == metrics["select_candidates"] < len(rows)  # chunks, not the whole file
    assert metrics["select_kept"] == len(kept) and metrics["select_never"] == metrics["select_candidates"] - len(kept)
    plain, none = selection.select(rows, needed=6, k=0, weights=None, seed=0, draw=draw)
    assert len(plain) == 6 and none == {} and sum(asked) == metrics["select_candidates"]  # k 0: nothing sampled


def test_select_falls_back_to_order_with_a_warning_when_no_prompt_has_spread(caplog):
    from components.training import selection

    rows = _rows(["single"] * 5)
    with caplog.at_level("WARNING", logger=selection.__name__):
        kept, metrics = selection.select(rows, 2, 3, None, 0, lambda chunk: [[r["id"] < "single-2"] * 3 for r in chunk])
    assert [r["id"] for r in kept] == [r["id"] for r in selection.weighted_order(rows, None, 0)[:2]]
    assert metrics["select_fallback"] == 1.0 and metrics["select_kept"] == 2
    assert metrics["select_always"] == 2 and metrics["select_never"] == 3  # all 5 sampled: 5 < 4 x 2
    assert "all 3 samples (2) or in none (3)" in caplog.text and "first 2 prompts in order" in caplog.text


def test_select_reports_what_it_kept_and_dropped_per_pattern():
    from components.training import selection

    rows = _rows(["single"] * 6 + ["irrelevance"] * 4 + ["chain"] * 2)
    solved = {"single": [True, False], "irrelevance": [True, True], "chain": [False, False]}
    kept, metrics = selection.select(rows, 12, 2, None, 0, lambda chunk: [solved[r["pattern"]] for r in chunk])
    assert [r["pattern"] for r in kept] == ["single"] * 6
    found = metrics["select_kept_single"], metrics["select_always_irrelevance"], metrics["select_never_chain"]
    assert found == (6, 4, 2)
    assert not any(key.startswith(("select_kept_i", "select_kept_c", "select_always_s", "select_never_s"))
                   for key in metrics)  # a pattern none of whose candidates fell there has no key
    assert sum(v for k, v in metrics.items() if k.startswith("select_always_")) == metrics["select_always"]


def test_select_samples_at_most_max_candidates_per_prompt_needed():
    from components.training import selection

    rows = _rows(["single"] * 100)
    asked = []

    def never(chunk):
        asked.append(len(chunk))
        return [[False] * 4 for _ in chunk]

    kept, metrics = selection.select(rows, 3, 4, None, 0, never)
    assert sum(asked) == metrics["select_candidates"] == selection.MAX_CANDIDATES * 3 and len(kept) == 3
    assert metrics["select_fallback"] == 1.0


def test_rl_params_name_the_new_settings(params_factory):
    import pytest

    from components.config import ConfigError

    params = params_factory(profile=None)
    assert params.rl.select_samples > 0 and params.rl.pattern_weights["chain"] > 1
    assert rl.prompts_needed(params) == params.rl.max_steps * params.rl.batch_size // params.rl.num_generations
    reused = params_factory(profile=None, rl={"max_steps": 5, "num_iterations": 2})  # 3 batches of rollouts
    assert rl.prompts_needed(reused) == 3 * reused.rl.batch_size // reused.rl.num_generations
    with pytest.raises((ConfigError, ValueError), match="unknown patterns"):
        params_factory(rl={"pattern_weights": {"chains": 2.0}})


def test_every_profile_runs_its_rl_arm_in_its_domain():
    """A GRPO arm's engine rollout needs a simulator, and rft needs successes, which the random tiny model's samples
    never are: every profile must pin an arm that runs in its domain on its model."""
    import yaml

    from components.config import load_params
    from tests.conftest import REPO

    names = ["", *yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]]
    for name in names:
        params = load_params(REPO / "params.yaml", profile=name)
        rl.engine_rollout(params, domains.of(params))  # raises ConfigError on a domain without a simulator
        if params.base.model == "tiny":
            assert params.rl.algorithm != "rft", name
    default = load_params(REPO / "params.yaml", profile="")
    assert (default.rl.algorithm, default.rl.rollout, default.rl.lora.enabled, default.rl.rft_references) == (
        "rft", "engine", True, True)
