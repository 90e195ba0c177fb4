"""Task generator of the travel domain: synthetic episodes of every pattern, run through the simulator.

Phrasing templates, cities, dates and passenger names are each split into a training side and a
held-out side; episodes tagged `test` use only held-out templates and values, so the test split
measures generalisation to new wording and new values, not recall.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from components.domains import travel
from components.episode import Episode

SINGLE = {
    "get_weather": (
        ["What's the weather in {city} from {d1} to {d2}?", "Weather forecast for {city}, {d1} to {d2}, please.",
         "Will it rain in {city} between {d1} and {d2}?", "How warm will {city} be from {d1} until {d2}?",
         "I'm visiting {city} {d1} to {d2}. What will the weather be like?",
         "Check the forecast in {city} for {d1} through {d2}.", "Do I need an umbrella in {city} from {d1} to {d2}?",
         "Tell me the weather for {city} between {d1} and {d2}."],
        ["Give me the {city} forecast covering {d1} to {d2}.", "What conditions should I expect in {city}, {d1}-{d2}?",
         "Is it going to be sunny in {city} from {d1} to {d2}?"]),
    "search_flights": (
        ["Find flights from {origin} to {city} on {d1}.", "Are there flights {origin} to {city} on {d1}?",
         "I need to fly from {origin} to {city} on {d1}.", "Search flights {origin} -> {city}, departing {d1}.",
         "Show me planes leaving {origin} for {city} on {d1}.", "Look up flights to {city} from {origin} for {d1}.",
         "Which flights go from {origin} to {city} on {d1}?", "Get me flight options {origin} to {city} on {d1}."],
        ["Can I get from {origin} to {city} by air on {d1}?", "Any departures {origin} to {city} on {d1}?",
         "What's flying from {origin} into {city} on {d1}?"]),
    "search_hotels": (
        ["Find a hotel in {city} from {d1} to {d2}.", "I need a room in {city}, check-in {d1}, check-out {d2}.",
         "Search hotels in {city} for {d1} to {d2}.", "Where can I stay in {city} from {d1} until {d2}?",
         "Book-worthy hotels in {city}, arriving {d1} and leaving {d2}?",
         "Show me accommodation in {city} between {d1} and {d2}.", "Hotels in {city}, {d1} to {d2}, please.",
         "Look for a place to stay in {city} from {d1} to {d2}."],
        ["I need somewhere to sleep in {city}, arriving {d1}, departing {d2}.",
         "Any lodging available in {city} for {d1} to {d2}?", "Get me a room in {city} for the nights {d1} to {d2}."]),
}
PARALLEL = {
    ("get_weather", "search_hotels"): (
        ["What's the weather in {city} from {d1} to {d2}, and find me a hotel there for those dates.",
         "Check the {city} forecast for {d1} to {d2} and search hotels for the same stay."],
        ["I'll be in {city} {d1} to {d2}: I need the forecast and a hotel."]),
    ("search_flights", "search_hotels"): (
        ["Find flights from {origin} to {city} on {d1} and a hotel in {city} from {d1} to {d2}.",
         "Search flights {origin} to {city} on {d1}; also hotels in {city}, {d1} to {d2}."],
        ["Flying {origin} to {city} on {d1}, staying until {d2}: show flights and hotels."]),
    ("search_flights", "get_weather"): (
        ["Find flights from {origin} to {city} on {d1} and tell me the weather there from {d1} to {d2}.",
         "Search flights {origin} -> {city} on {d1}, plus the {city} forecast for {d1} to {d2}."],
        ["Before I fly {origin} to {city} on {d1}: flights and the weather until {d2}?"]),
}
CHAIN_PLAN = (
    ["Plan my trip to {city} from {origin}, {d1} to {d2}: take the cheapest flight and plan around the weather.",
     "I fly from {origin} to {city} on {d1} and stay until {d2}. Pick the cheapest flight and build an itinerary "
     "that fits the weather.",
     "Make me an itinerary for {city} ({d1} to {d2}), flying from {origin} on the cheapest flight, weather-aware."],
    ["Organise {city} for me: from {origin}, {d1} to {d2}, cheapest flight, activities suited to the weather."])
CHAIN_BOOK = (
    ["Book the cheapest flight from {origin} to {city} on {d1} for {passenger}.",
     "Please find flights {origin} to {city} on {d1} and book the cheapest one for {passenger}.",
     "Get {passenger} on the cheapest {origin}-{city} flight on {d1}."],
    ["Reserve {passenger} a seat on the least expensive flight {origin} to {city}, {d1}."])
IRRELEVANT = (
    ["Hi there!", "Thanks, that's all.", "Tell me a joke.", "What is 12 times 7?", "Who wrote Hamlet?",
     "How do I boil an egg?", "What's your name?", "Translate 'hello' into Spanish.", "My friend lives in {city}.",
     "I loved my last trip to {city}.", "Can you recommend a good book?", "What time zone is used in {city}?",
     "Write a haiku about the sea.", "How many legs does a spider have?", "Good morning!"],
    ["What's the capital of Australia?", "Any tips for learning the guitar?", "{city} is beautiful in spring.",
     "Explain photosynthesis in one line.", "See you later!"])
NO_CALL_REPLIES = ("I can help with weather forecasts, flights, hotels, itineraries and flight bookings. "
                   "That request needs none of them.")
PASSENGERS = (["Ana Silva", "Tom Becker", "Mia Rossi", "Li Wei", "Sara Novak", "John Smith", "Eva Berg"],
              ["Omar Haddad", "Nina Kovacs", "Yuki Sato"])


def _split(pool: tuple[list, list] | list, held: bool) -> list:
    return pool[1] if held else pool[0]


def _dates(rng: random.Random, held: bool) -> tuple[str, str]:
    """A start date on the chosen side of the date split and an end 1-4 days later."""
    while True:
        start = dt.date(2026, 3, 1) + dt.timedelta(days=rng.randrange(240))
        if (travel._h("date-split", start.isoformat()) % 4 == 0) == held:
            return start.isoformat(), (start + dt.timedelta(days=rng.randint(1, 4))).isoformat()


def _slots(rng: random.Random, held: bool) -> dict[str, str]:
    cities = travel.CITIES_TEST if held else travel.CITIES_TRAIN
    city, origin = rng.sample(cities, 2)
    d1, d2 = _dates(rng, held)
    return {"city": city, "origin": origin, "d1": d1, "d2": d2, "passenger": rng.choice(_split(PASSENGERS, held))}


def _call(name: str, s: dict[str, str]) -> dict[str, Any]:
    args = {"get_weather": {"city": s["city"], "start_date": s["d1"], "end_date": s["d2"]},
            "search_flights": {"origin": s["origin"], "destination": s["city"], "date": s["d1"]},
            "search_hotels": {"city": s["city"], "check_in": s["d1"], "check_out": s["d2"]}}[name]
    return {"name": name, "arguments": args}


def _answer(call: dict[str, Any], result: dict[str, Any]) -> str:
    name = call["name"]
    if name == "get_weather":
        highs = result["highs_c"]
        return f"{result['city']}: mostly {result['summary']}, highs {min(highs)}-{max(highs)} C."
    if name == "search_flights":
        best = result["flights"][0]
        route = f"{call['arguments']['origin']}-{call['arguments']['destination']}"
        return f"Cheapest {route} flight: {best['flight_id']} at {best['price_eur']} EUR."
    if name == "search_hotels":
        hotel = result["hotels"][0]
        return f"{hotel['name']} ({hotel['hotel_id']}): {hotel['price_per_night_eur']} EUR per night."
    if name == "plan_itinerary":
        return f"Itinerary {result['itinerary_id']} for {result['city']} is ready: {', '.join(result['activities'])}."
    return f"Booked {result['passenger']} on {result['flight_id']}, confirmation {result['confirmation']}."


def _run_steps(env: travel.TravelEnv, user: str, steps: list[list[dict]]) -> list[dict[str, Any]]:
    """Execute the gold steps in the simulator and write the messages of the trajectory."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": user}]
    answers = []
    for k, step in enumerate(steps):
        calls = [{"type": "function", "id": f"call_{k}_{j}", "function": c} for j, c in enumerate(step)]
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})
        for tc in calls:
            content, ok = travel.execute(env, tc["function"])
            if not ok:
                raise RuntimeError(f"generator produced a failing gold call {tc['function']}: {content}")
            messages.append({"role": "tool", "tool_call_id": tc["id"], "name": tc["function"]["name"],
                             "content": content})
            answers.append((tc["function"], json.loads(content)))
    if steps:
        last = [a for a in answers if a[0]["name"] in {c["name"] for c in steps[-1]}]
        messages.append({"role": "assistant", "content": " ".join(_answer(c, r) for c, r in last)})
    return messages


def make_episode(pattern: str, rng: random.Random, held: bool, idx: int, tools: list[dict]) -> Episode:
    """One synthetic episode of `pattern`, its gold trajectory executed in the simulator."""
    s = _slots(rng, held)
    env = travel.TravelEnv()
    goal: dict[str, Any] = {}
    deps: list[tuple[int, int]] = []
    if pattern == "single":
        name = rng.choice(sorted(SINGLE))
        user, steps = rng.choice(_split(SINGLE[name], held)), [[_call(name, s)]]
    elif pattern == "parallel":
        pair = rng.choice(sorted(PARALLEL))
        user, steps = rng.choice(_split(PARALLEL[pair], held)), [[_call(n, s) for n in pair]]
    elif pattern == "chain" and rng.random() < 0.5:
        user = rng.choice(_split(CHAIN_PLAN, held))
        first = [_call("get_weather", s), _call("search_flights", s)]
        weather = json.loads(env.get_weather(**first[0]["arguments"]))["summary"]
        flight = travel.flights_for(s["origin"], s["city"], s["d1"])[0]["flight_id"]
        env.reset()
        plan = {"name": "plan_itinerary", "arguments": {"city": s["city"], "flight_id": flight, "weather": weather}}
        steps, deps = [first, [plan]], [(1, 0)]
        goal = {"itineraries": [{"city": s["city"], "flight_id": flight, "weather": weather}]}
    elif pattern == "chain":
        user = rng.choice(_split(CHAIN_BOOK, held))
        flight = travel.flights_for(s["origin"], s["city"], s["d1"])[0]["flight_id"]
        book = {"name": "book_flight", "arguments": {"flight_id": flight, "passenger": s["passenger"]}}
        steps, deps = [[_call("search_flights", s)], [book]], [(1, 0)]
        goal = {"bookings": [{"flight_id": flight, "passenger": s["passenger"]}]}
    elif pattern == "irrelevance":
        user, steps = rng.choice(_split(IRRELEVANT, held)), []
    else:
        raise ValueError(f"travel generator: unknown pattern {pattern!r}")
    messages = _run_steps(env, user.format(**s), steps)
    if not steps:
        messages.append({"role": "assistant", "content": NO_CALL_REPLIES})
    return Episode.model_validate({
        "id": f"travel-{'h' if held else 't'}-{idx:06d}", "domain": travel.NAME, "source": "synthetic",
        "pattern": pattern, "split": "test" if held else "train", "tools": tools, "messages": messages,
        "expected": {"steps": steps, "depends_on": deps, "goal": goal}})


def generate(n: int, shares: dict[str, float], heldout_fraction: float, seed: int) -> list[Episode]:
    """Generate `n` episodes with the given pattern shares; a `heldout_fraction` share is held out."""
    rng = random.Random(seed)
    tools = travel.catalog()
    patterns = [p for p, share in shares.items() for _ in range(round(share * n))]
    rng.shuffle(patterns)
    return [make_episode(p, rng, rng.random() < heldout_fraction, i, tools) for i, p in enumerate(patterns)]
