"""Layered RL rewards on hand-made rollouts, with a real simulator for task completion."""

import json

from components import rewards
from components.domains import travel

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", "end_date": "2026-05-02"}}


def _turn(*calls):
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": c} for c in calls]}


def test_correctness_credit():
    exp = json.dumps([[WEATHER]])
    wrong_city = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": "Rome"}}
    got = rewards.correctness([[_turn(WEATHER)], [_turn(wrong_city)], [{"role": "assistant", "content": "hi"}]],
                              [exp] * 3)
    assert got == [1.0, 0.5, 0.0]
    assert rewards.correctness([[{"role": "assistant", "content": "Hi!"}], [_turn(WEATHER)]], ["[]", "[]"]) == [1.0, 0.0]


def test_completion_reads_simulator_state():
    env = travel.TravelEnv()
    env.get_weather(**WEATHER["arguments"])
    done = [_turn(WEATHER), {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Sunny."}]
    stopped = [_turn(WEATHER), {"role": "tool", "content": "{}"}]
    exp = json.dumps([[WEATHER]])
    assert rewards.completion([done, stopped], [exp, exp], ["{}", "{}"], environments=[env, env]) == [1.0, 0.0]
    assert rewards.completion([done], [exp], ["{}"], environments=[travel.TravelEnv()]) == [0.0]


def test_efficiency_penalises_extra_calls():
    exp = json.dumps([[WEATHER]])
    assert rewards.efficiency([[_turn(WEATHER)], [_turn(WEATHER), _turn(WEATHER)]], [exp, exp]) == [1.0, 0.5]
