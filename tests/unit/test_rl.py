"""RL stage wiring without training: rewards bound to the project's domain, prompts GRPO can earn."""

import json

from components import rl


def test_reward_layers_follow_the_project_domain(params_factory):
    params = params_factory(project={"domain": "finance"}, rl={"reward_weights": {"efficiency": 0.0}})
    chosen = rl.reward_functions(params)
    assert [(name, weight) for name, _, weight in chosen] == [("correctness", 1.0), ("completion", 1.0),
                                                              ("reward_model", 0.5)]
    correctness = chosen[0][1]
    quote = {"name": "get_quote", "arguments": {"symbol": "AAPL"}}
    turn = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": quote}]}
    assert correctness([[turn]], [json.dumps([[quote]])]) == [1.0]  # a finance call, scored on the finance catalog


def test_multi_turn_prompts_are_left_out():
    rows = [{"prompt": [], "expected": "[]", "goal": "{}", "outputs": "[]", "pattern": p, "id": p} for p in ("single", "multi_turn")]
    assert [r["pattern"] for r in rl.rl_rows(rows)] == ["single"]
