"""Finance domain: catalog from the simulator's methods (enums, types, required), deterministic stateful
simulator, errors for bad arguments, and a generator of every pattern whose gold trajectories run in the
simulator and whose held-out templates, values and tool combinations never reach training."""

import json

import pytest

from components import domains
from components.domains import finance, finance_tasks, generation
from components.toolcalls import schema_errors, score_episode, steps_of_messages, tool_index

SHARES = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.15, "irrelevance": 0.1, "multi_turn": 0.15}
ORDER = {"account_id": "ACC-1001", "symbol": "AAPL", "side": "buy", "quantity": 2}


@pytest.fixture(scope="module")
def episodes():
    return generation.generate("finance", 400, SHARES, 0.3, seed=1)


def test_catalog_has_types_enums_and_required():
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in finance.catalog()}
    assert list(tools) == list(finance.TOOL_NAMES)
    order = tools["place_order"]
    assert order["required"] == ["account_id", "symbol", "side", "quantity"]
    assert order["properties"]["side"]["enum"] == ["buy", "sell"]
    assert order["properties"]["quantity"] == {**order["properties"]["quantity"], "type": "integer", "minimum": 1}
    assert tools["get_fx_rate"]["properties"]["base"]["enum"] == list(finance.USD_VALUE)
    assert tools["convert_amount"]["properties"]["amount"]["type"] == "number"
    index = tool_index(finance.catalog())
    assert [k for k, _ in schema_errors({"name": "place_order", "arguments": {**ORDER, "side": "hold"}}, index)] == [
        "wrong_value"]


def test_simulator_is_deterministic_and_stateful():
    a, b = finance.FinanceEnv(), finance.FinanceEnv()
    assert a.get_quote("NVDA") == b.get_quote("nvda ")
    start = json.loads(a.get_portfolio("ACC-1001"))
    filled = json.loads(a.place_order(**ORDER))
    after = json.loads(a.get_portfolio("ACC-1001"))
    assert after["cash_usd"] == round(start["cash_usd"] - filled["total_usd"], 2) == filled["cash_usd"]
    assert after["holdings"]["AAPL"] == start["holdings"].get("AAPL", 0) + 2
    assert a.state["orders"] == [ORDER]
    a.reset()
    assert a.state["orders"] == [] and a.state["log"] == [] and json.loads(a.get_portfolio("ACC-1001")) == start


@pytest.mark.parametrize("call, message", [
    ({"name": "get_quote", "arguments": {"symbol": "APPL"}}, "did you mean 'AAPL'"),
    ({"name": "get_fx_rate", "arguments": {"base": "EUR", "quote": "EUR"}}, "differ"),
    ({"name": "get_fx_rate", "arguments": {"base": "XYZ", "quote": "EUR"}}, "base must be one of"),
    ({"name": "convert_amount", "arguments": {"amount": 100, "base": "USD", "quote": "EUR"}}, "get_fx_rate before"),
    ({"name": "convert_amount", "arguments": {"amount": -5, "base": "USD", "quote": "EUR"}}, "greater than 0"),
    ({"name": "get_portfolio", "arguments": {"account_id": "ACC-9999"}}, "unknown account"),
    ({"name": "place_order", "arguments": {**ORDER, "side": "hold"}}, "side must be"),
    ({"name": "place_order", "arguments": {**ORDER, "quantity": -3}}, "whole number"),
    ({"name": "place_order", "arguments": {**ORDER, "quantity": 2.5}}, "whole number"),
    ({"name": "place_order", "arguments": {**ORDER, "quantity": 10_000}}, "insufficient funds"),
    ({"name": "place_order", "arguments": {**ORDER, "side": "sell"}}, "cannot sell"),
    ({"name": "get_quote", "arguments": {"ticker": "AAPL"}}, "unexpected keyword"),
    ({"name": "wire_money", "arguments": {}}, "unknown tool"),
])
def test_bad_calls_return_errors_not_exceptions(call, message):
    content, ok = finance.execute(finance.FinanceEnv(), call)
    assert not ok and message in json.loads(content)["error"]


def test_convert_needs_the_rate_first():
    env = finance.FinanceEnv()
    call = {"name": "convert_amount", "arguments": {"amount": 100, "base": "USD", "quote": "EUR"}}
    assert not finance.execute(env, call)[1]
    rate = json.loads(env.get_fx_rate("USD", "EUR"))["rate"]
    content, ok = finance.execute(env, call)
    assert ok and json.loads(content)["converted"] == round(100 * rate, 2)


def test_generator_covers_every_pattern_with_gold_that_runs(episodes):
    domain = domains.get("finance")
    assert {e.pattern for e in episodes} == set(SHARES)
    index = tool_index(finance.catalog())
    for ep in episodes:
        gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
        assert score_episode(steps_of_messages(ep.message_dicts()), gold, tool_index(ep.tool_dicts())).exact
        assert all(schema_errors(c, index) == [] for s in gold for c in s)
        env = domain.env()
        outcomes = [domain.execute(env, c)[1] for s in gold for c in s]
        assert outcomes == [not (ep.pattern == "recovery" and k == 0) for k in range(len(outcomes))]
        assert domain.goal_reached(env, gold, ep.expected.goal)
    assert generation.generate("finance", 50, SHARES, 0.3, seed=1) == generation.generate("finance", 50, SHARES, 0.3, seed=1)


def test_recovery_corrects_the_symbol_the_error_names(episodes):
    domain = domains.get("finance")
    for ep in (e for e in episodes if e.pattern == "recovery"):
        wrong, fixed = (s[0].model_dump() for s in ep.expected.steps)
        error = json.loads(ep.messages[2].content)["error"]
        assert f"did you mean {fixed['arguments']['symbol']!r}" in error and wrong["arguments"]["symbol"] in error
        right_away = domain.env()  # a model that gets the symbol right at once completes the task too
        domain.execute(right_away, fixed)
        gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
        assert domain.goal_reached(right_away, gold, ep.expected.goal)
        assert not domain.goal_reached(domain.env(), gold, ep.expected.goal)


def test_multi_turn_follow_up_needs_a_second_call(episodes):
    for ep in (e for e in episodes if e.pattern == "multi_turn"):
        roles = [m.role for m in ep.messages]
        assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant"]
        assert len(ep.expected.steps) == 2


def test_heldout_values_and_combinations_stay_out_of_training(episodes):
    """Held-out phrasing parts: tests/unit/test_phrasing.py."""
    train, test = [e for e in episodes if e.split == "train"], [e for e in episodes if e.split == "test"]
    train_text = json.dumps([e.message_dicts() for e in train])
    assert not [s for s in finance.SYMBOLS_TEST if s in train_text]
    assert not [a for a in finance.ACCOUNTS_TEST if a in train_text]
    held_pairs = set(finance_tasks.PAIR_POOL[1])
    for ep in test:
        for call in (c.arguments for s in ep.expected.steps for c in s):
            assert "base" not in call or (call["base"], call["quote"]) in held_pairs
            assert "account_id" not in call or call["account_id"] in finance.ACCOUNTS_TEST
    combos = {split: {tuple(sorted(c.name for c in e.expected.steps[0])) for e in eps if e.pattern == "parallel"}
              for split, eps in (("train", train), ("test", test))}
    only_test = {("get_portfolio", "get_quote"), ("get_fx_rate", "get_portfolio")}
    assert only_test <= combos["test"] and not only_test & combos["train"]
    follow = {split: {tuple(s[0].name for s in e.expected.steps) for e in eps if e.pattern == "multi_turn"}
              for split, eps in (("train", train), ("test", test))}
    assert ("get_portfolio", "place_order") in follow["test"] - follow["train"]
