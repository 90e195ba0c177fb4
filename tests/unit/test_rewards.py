"""Layered RL rewards on hand-made rollouts, with a real simulator for task completion, bound to each domain."""

import json

from components import domains
from components.training import rewards
from components.domains import finance, travel

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", "end_date": "2026-05-02"}}
TRAVEL = rewards.layers(domains.get("travel"))


def _turn(*calls):
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": c} for c in calls]}


def test_correctness_credit():
    exp = json.dumps([[WEATHER]])
    wrong_city = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": "Rome"}}
    got = TRAVEL["correctness"]([[_turn(WEATHER)], [_turn(wrong_city)], [{"role": "assistant", "content": "hi"}]],
                                [exp] * 3)
    assert got == [1.0, 0.5, 0.0]
    no_call = [{"role": "assistant", "content": "Hi!"}]
    assert TRAVEL["correctness"]([no_call, [_turn(WEATHER)]], ["[]", "[]"]) == [1.0, 0.0]


def test_completion_reads_simulator_state():
    env = travel.TravelEnv()
    env.get_weather(**WEATHER["arguments"])
    done = [_turn(WEATHER), {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Sunny."}]
    stopped = [_turn(WEATHER), {"role": "tool", "content": "{}"}]
    exp = json.dumps([[WEATHER]])
    assert TRAVEL["completion"]([done, stopped], [exp, exp], ["{}", "{}"], environments=[env, env]) == [1.0, 0.0]
    assert TRAVEL["completion"]([done], [exp], ["{}"], environments=[travel.TravelEnv()]) == [0.0]
    facts = [json.dumps(["sunny", "21"]), json.dumps(["rain"])]  # the answer must state the expected outputs
    assert TRAVEL["completion"]([done, done], [exp, exp], ["{}", "{}"], environments=[env, env],
                                outputs=facts) == [0.0, 0.0]
    said = [*done[:2], {"role": "assistant", "content": "Sunny, highs 21 C."}]
    assert TRAVEL["completion"]([said], [exp], ["{}"], environments=[env], outputs=facts[:1]) == [1.0]


def test_efficiency_penalises_extra_calls():
    exp = json.dumps([[WEATHER]])
    assert TRAVEL["efficiency"]([[_turn(WEATHER)], [_turn(WEATHER), _turn(WEATHER)]], [exp, exp]) == [1.0, 0.5]


def test_layers_follow_the_domain():
    """Finance calls are scored against the finance catalog and completed in the finance simulator."""
    layers = rewards.layers(domains.get("finance"))
    order = {"name": "place_order", "arguments": {"account_id": "ACC-1001", "symbol": "AAPL", "side": "buy",
                                                  "quantity": 2}}
    exp, goal = json.dumps([[order]]), json.dumps({"orders": [{**order["arguments"]}]})
    env = finance.FinanceEnv()
    env.place_order(**order["arguments"])
    done = [_turn(order), {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Bought."}]
    assert layers["correctness"]([done], [exp]) == [1.0]
    assert layers["completion"]([done], [exp], [goal], environments=[env]) == [1.0]
    assert layers["completion"]([done], [exp], [goal], environments=[finance.FinanceEnv()]) == [0.0]
    assert [getattr(fn, "func", fn).__name__ for fn in layers.values()] == list(layers)  # TRL's reward names
