"""Travel domain: catalog from the simulator's methods, deterministic results, errors for bad arguments,
generator that holds templates and values out of training."""

import json

import pytest

from components.domains import travel, travel_tasks
from components.toolcalls import score_episode, steps_of_messages, tool_index


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
    episodes = travel_tasks.generate(200, shares, 0.3, seed=1)
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
    assert travel_tasks.generate(50, shares, 0.3, seed=1) == episodes[:0] + travel_tasks.generate(50, shares, 0.3, 1)
