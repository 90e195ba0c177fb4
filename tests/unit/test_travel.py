"""Travel domain: catalog from the simulator's methods, deterministic results, errors for bad arguments,
generator that holds templates and values out of training; recovery and multi_turn episodes, and the
evaluation rollout feeding a multi_turn episode's follow-up."""

import json
import types

import pytest

from components import domains
from components.evaluation import rollout
from components.domains import generation, travel
from components.toolcalls import CLOSE, END, OPEN, schema_errors, score_episode, steps_of_messages, tool_index

ALL = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.15, "irrelevance": 0.1, "multi_turn": 0.15}


def test_catalog_is_the_simulator_methods():
    names = [t["function"]["name"] for t in travel.catalog()]
    assert names == list(travel.TOOL_NAMES)
    weather = travel.catalog()[0]["function"]["parameters"]
    assert weather["required"] == ["city", "start_date", "end_date"]
    assert weather["properties"]["start_date"]["pattern"]


def test_simulator_is_deterministic_and_stateful():
    a, b = travel.TravelEnv(), travel.TravelEnv()
    assert a.search_flights("Paris", "Rome", "2026-05-01") == b.search_flights("Paris", "Rome", "2026-05-01")
    flight = json.loads(a.search_flights("Paris", "Rome", "2026-05-01"))["flights"][0]["flight_id"]
    booked = json.loads(a.book_flight(flight, "Ana Silva"))
    assert booked["flight_id"] == flight and a.state["bookings"] == [{"flight_id": flight, "passenger": "Ana Silva"}]
    a.reset()
    assert a.state["bookings"] == [] and a.state["log"] == []


@pytest.mark.parametrize("call, message", [
    ({"name": "get_weather", "arguments": {"city": "Atlantis", "start_date": "2026-05-01", "end_date": "2026-05-02"}},
     "unknown city"),
    ({"name": "get_weather", "arguments": {"city": "Lisbn", "start_date": "2026-05-01", "end_date": "2026-05-02"}},
     "did you mean 'Lisbon'"),
    ({"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", "end_date": "2026-05-12"}},
     "at most 2026-05-07"),
    ({"name": "get_weather", "arguments": {"city": "Paris", "start_date": "May 1", "end_date": "2026-05-02"}},
     "YYYY-MM-DD"),
    ({"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-03", "end_date": "2026-05-01"}},
     "end_date"),
    ({"name": "search_flights", "arguments": {"origin": "Paris", "destination": "Paris", "date": "2026-05-01"}},
     "differ"),
    ({"name": "book_flight", "arguments": {"flight_id": "TT999", "passenger": "Ana"}}, "not found"),
    ({"name": "plan_itinerary", "arguments": {"city": "Paris", "flight_id": "TT1", "weather": "rain"}}, "not found"),
    ({"name": "get_weather", "arguments": {"town": "Paris"}}, "unexpected keyword"),
    ({"name": "book_taxi", "arguments": {}}, "unknown tool"),
])
def test_bad_calls_return_errors_not_exceptions(call, message):
    content, ok = travel.execute(travel.TravelEnv(), call)
    assert not ok and message in json.loads(content)["error"]


def test_plan_needs_weather_and_flight_first():
    env = travel.TravelEnv()
    flight = json.loads(env.search_flights("Oslo", "Rome", "2026-06-01"))["flights"][0]["flight_id"]
    content, ok = travel.execute(env, {"name": "plan_itinerary",
                                       "arguments": {"city": "Rome", "flight_id": flight, "weather": "sunny"}})
    assert not ok and "fetch the weather" in content
    summary = json.loads(env.get_weather("Rome", "2026-06-01", "2026-06-02"))["summary"]
    content, ok = travel.execute(env, {"name": "plan_itinerary",
                                       "arguments": {"city": "Rome", "flight_id": flight, "weather": summary}})
    assert ok and json.loads(content)["weather"] == summary


def test_generator_patterns_gold_and_heldout_split():
    shares = {"single": 0.4, "parallel": 0.2, "chain": 0.2, "irrelevance": 0.2}
    episodes = generation.generate("travel", 200, shares, 0.3, seed=1)
    assert {e.pattern for e in episodes} == set(shares)
    for ep in episodes:  # every gold trajectory scores exact with the shared scorer
        gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
        assert score_episode(steps_of_messages(ep.message_dicts()), gold, tool_index(ep.tool_dicts())).exact
    train_text = " ".join(e.messages[0].content for e in episodes if e.split == "train")
    for ep in (e for e in episodes if e.split == "test"):
        for call in (c for s in ep.expected.steps for c in s):
            for key in ("city", "destination"):
                if key in call.arguments:
                    assert call.arguments[key] in travel.CITIES_TEST
                    assert call.arguments[key] not in train_text
    assert generation.generate("travel", 50, shares, 0.3, seed=1) == episodes[:0] + generation.generate("travel", 50, shares, 0.3, 1)


@pytest.fixture(scope="module")
def episodes():
    return generation.generate("travel", 300, ALL, 0.3, seed=2)


def test_every_pattern_runs_in_the_simulator(episodes):
    domain, index = domains.get("travel"), tool_index(travel.catalog())
    assert {e.pattern for e in episodes} == set(ALL)
    for ep in episodes:
        gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
        assert score_episode(steps_of_messages(ep.message_dicts()), gold, tool_index(ep.tool_dicts())).exact
        assert all(schema_errors(c, index) == [] for s in gold for c in s)
        env = domain.env()
        outcomes = [domain.execute(env, c)[1] for s in gold for c in s]
        assert outcomes == [not (ep.pattern == "recovery" and k == 0) for k in range(len(outcomes))]
        assert domain.goal_reached(env, gold, ep.expected.goal)


def test_recovery_corrects_what_the_error_names(episodes):
    recoveries = [e for e in episodes if e.pattern == "recovery"]
    kinds = set()
    for ep in recoveries:
        wrong, fixed = (s[0].model_dump()["arguments"] for s in ep.expected.steps)
        error = json.loads(ep.messages[2].content)["error"]
        changed = [k for k in fixed if fixed[k] != wrong[k]]
        assert len(changed) == 1 and f"{fixed[changed[0]]}" in error
        kinds.add("date" if changed[0] == "end_date" else "city")
        if changed[0] == "city":  # the misspelt city is in the request as the user wrote it (dates are in any format)
            assert wrong["city"] in ep.messages[0].content
    assert kinds == {"date", "city"}


def test_multi_turn_follow_up_and_heldout_combination(episodes):
    follow = {split: set() for split in ("train", "test")}
    for ep in (e for e in episodes if e.pattern == "multi_turn"):
        users = [m.content for m in ep.messages if m.role == "user"]
        assert len(users) == 2 and len(ep.expected.steps) == 2
        follow[ep.split].add(tuple(s[0].name for s in ep.expected.steps))
    assert ("search_hotels", "search_flights") not in follow["train"]
    held = generation.generate("travel", 60, {"multi_turn": 1.0}, 1.0, seed=2)
    assert ("search_hotels", "search_flights") in {tuple(s[0].name for s in e.expected.steps) for e in held}


def test_rollout_feeds_the_follow_up_after_the_answer(episodes):
    """A scripted model that calls the gold step of the latest user turn, then gives its gold answer: the rollout
    feeds the second user turn after the first answer, and the episode scores exact and complete."""
    ep = next(e for e in episodes if e.pattern == "multi_turn")
    gold = [[c.model_dump(exclude_none=True) for c in s] for s in ep.expected.steps]
    answers = [m.content for m in ep.messages if m.role == "assistant" and not m.tool_calls]

    def scripted(model, tok, conversations, tools, max_new_tokens, prefixes=None, sampling=None):
        out = []
        for conv in conversations:
            turn = sum(m["role"] == "user" for m in conv) - 1
            if conv[-1]["role"] == "tool":
                out.append(answers[turn] + END)
                continue
            out.append("".join(f"{OPEN}{json.dumps(c)}{CLOSE}" for c in gold[turn]) + END)
        return out

    ro, = rollout.run_episodes(types.SimpleNamespace(eval=lambda: None), None, [ep], domains.get("travel"),
                               "system", rollout.Decoding(batch_size=2, max_new_tokens=8, max_turns=2),
                               decode=scripted)
    assert ro.steps == gold and ro.final == answers[-1] and ro.turns == 4
    assert [m["content"] for m in ro.messages if m["role"] == "user"] == [m.content for m in ep.messages
                                                                         if m.role == "user"]
    row = rollout.judge(ro, ep)
    assert row.exact and row.completion


def test_outputs_are_tool_facts_the_gold_answer_states(episodes):
    single = next(e for e in episodes if e.pattern == "single" and e.expected.steps[0][0].name == "search_flights")
    result = json.loads(next(m.content for m in single.messages if m.role == "tool"))
    best = result["flights"][0]
    assert single.expected.outputs == [best["flight_id"].lower(), str(best["price_eur"]).lower()]
    asked = single.messages[0].content.lower()
    assert all(o not in asked for o in single.expected.outputs)  # what the user said is no fact to report
    assert all(not e.expected.outputs for e in episodes if e.pattern == "irrelevance")
