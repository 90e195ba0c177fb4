"""Model-made arguments that break a tool (not merely ones it rejects) give an error result and a failed call in the
real simulators of both built-in domains, never an exception out of execution or out of a rollout."""

from __future__ import annotations

import json

import pytest

from components import domains
from components.evaluation import rollout
from components.domains import generation, sim
from components.toolcalls.parse import CLOSE, END, OPEN


def _nested(depth: int) -> list:
    """[[[...]]] `depth` levels deep: what a JSON parser still reads, deeper than a `repr` can go."""
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


HUGE = int("9" * 400)
WEATHER = {"city": "Paris", "start_date": "2025-05-01", "end_date": "2025-05-02"}
ORDER = {"account_id": "ACC-1001", "symbol": "AAPL", "side": "buy", "quantity": 1}
FX = {"name": "get_fx_rate", "arguments": {"base": "USD", "quote": "EUR"}}


@pytest.mark.parametrize("domain, setup, call, raised", [
    ("travel", [], {"name": "get_weather", "arguments": WEATHER | {"start_date": "9999-12-31"}}, "OverflowError"),
    ("travel", [], {"name": "get_weather", "arguments": WEATHER | {"city": _nested(5000)}}, "RecursionError"),
    ("travel", [], {"name": "get_weather", "arguments": WEATHER | {"end_date": ["2025-05-02"]}}, None),
    ("finance", [], {"name": "place_order", "arguments": ORDER | {"quantity": HUGE}}, "OverflowError"),
    ("finance", [FX], {"name": "convert_amount", "arguments": {"amount": HUGE, "base": "USD", "quote": "EUR"}},
     "OverflowError"),
    ("finance", [], {"name": "convert_amount", "arguments": {"amount": _nested(5000), "base": "USD", "quote": "EUR"}},
     "RecursionError"),
    ("finance", [], {"name": "get_portfolio", "arguments": {"account_id": "ACC-1001", "extra": 1}}, None),
])
def test_a_call_that_breaks_a_tool_is_a_failed_call_with_an_error_result(domain, setup, call, raised):
    dom = domains.get(domain)
    env = dom.env()
    for earlier in setup:
        assert dom.execute(env, earlier)[1]
    log = list(env.state["log"])
    content, ok = dom.execute(env, call)
    error = json.loads(content)["error"]
    assert not ok and env.state["log"] == log  # failed, and not recorded as done
    assert (f"{call['name']} failed: {raised}" in error) if raised else "failed:" not in error
    assert len(error) <= sim.MAX_ERROR_CHARS


def test_an_error_echoing_a_huge_argument_is_cut():
    content, ok = domains.get("travel").execute(domains.get("travel").env(),
                                                {"name": "get_weather", "arguments": WEATHER | {"city": "Q" * 50_000}})
    error = json.loads(content)["error"]
    assert not ok and error.startswith("unknown city 'QQQ") and error.endswith("... (truncated)")
    assert len(error) == sim.MAX_ERROR_CHARS


def test_interrupts_still_stop_the_run():
    class Env:
        def stop(self) -> str:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sim.execute(Env(), ("stop",), {"name": "stop", "arguments": {}})


class _Scripted:
    """Stands in for the model: `run_episodes(decode=...generate)` decodes `turns`, so the rollout runs what a model might
    write; parsing, execution in the real simulator, the loop and scoring are the real ones."""

    def __init__(self, turns: list[str]) -> None:
        self.turns = turns

    def eval(self) -> None:
        pass

    def generate(self, model, tok, conversations, tools, *args, **kwargs) -> list[str]:
        turn = sum(m["role"] == "assistant" for m in conversations[0])
        return [self.turns[turn]] * len(conversations)


def test_a_rollout_survives_a_call_that_breaks_the_simulator(params_factory):
    """The year-9999 weather call: before, OverflowError ended the evaluate stage; now the model reads the error,
    the call counts as failed, and the rollout and its verdict complete."""
    bad = {"name": "get_weather", "arguments": WEATHER | {"start_date": "9999-12-31"}}
    model = _Scripted([f"{OPEN}{json.dumps(bad)}{CLOSE}{END}", f"Sorry, no forecast.{END}"])
    episodes = generation.generate("travel", 3, {"single": 1.0}, 0.0, seed=4)
    outs = rollout.run_episodes(model, None, episodes, domains.get("travel"), params_factory().base.system_prompt,
                                rollout.Decoding(batch_size=4, max_new_tokens=8, max_turns=3), decode=model.generate)
    for out, episode in zip(outs, episodes):
        tool = next(m for m in out.messages if m["role"] == "tool")
        assert "get_weather failed: OverflowError" in json.loads(tool["content"])["error"]
        assert out.failed_calls == 1 and out.final == "Sorry, no forecast." and not out.goal_reached
        row = rollout.judge(out, episode)
        assert not row.exact and not row.completion
