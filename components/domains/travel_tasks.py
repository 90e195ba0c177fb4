"""Task generator of the travel domain: synthetic episodes of every pattern, run through the simulator.

Phrasing templates, cities, dates, passenger names and follow-up tool combinations are each split into a
training side and a held-out side; episodes tagged `test` use only held-out templates and values, so the test
split measures generalisation to new wording, values and combinations, not recall. Patterns: single, parallel,
chain, recovery (a misspelt city or a too-long forecast range: the tool error says how to correct the call),
irrelevance and multi_turn (a follow-up question about the same trip needs a second call).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from components.domains import sim, tasks, travel
from components.domains.tasks import Draft, side
from components.data.episode import Episode, Tool

SINGLE = {
    "get_weather": (
        ["What's the weather in {city} from {d1} to {d2}?", "Weather forecast for {city}, {d1} to {d2}, please.",
         "Will it rain in {city} between {d1} and {d2}?", "How warm will {city} be from {d1} until {d2}?",
         "I'm visiting {city} {d1} to {d2}. What will the weather be like?",
         "Check the forecast in {city} for {d1} through {d2}.", "Do I need an umbrella in {city} from {d1} to {d2}?",
         "Tell me the weather for {city} between {d1} and {d2}.",
         "Forecast for {city} from {d1} to {d2}?", "How's the weather looking in {city} {d1} to {d2}?",
         "Should I pack a jacket for {city}, {d1} to {d2}?", "Is snow expected in {city} from {d1} to {d2}?",
         "Temperature and rain outlook for {city} between {d1} and {d2}.", "Weather check: {city}, {d1} - {d2}.",
         "I'll be in {city} from {d1} to {d2}. Is the weather good?"],
        ["Give me the {city} forecast covering {d1} to {d2}.", "What conditions should I expect in {city}, {d1}-{d2}?",
         "Is it going to be sunny in {city} from {d1} to {d2}?"]),
    "search_flights": (
        ["Find flights from {origin} to {city} on {d1}.", "Are there flights {origin} to {city} on {d1}?",
         "I need to fly from {origin} to {city} on {d1}.", "Search flights {origin} -> {city}, departing {d1}.",
         "Show me planes leaving {origin} for {city} on {d1}.", "Look up flights to {city} from {origin} for {d1}.",
         "Which flights go from {origin} to {city} on {d1}?", "Get me flight options {origin} to {city} on {d1}.",
         "Flights {origin} to {city}, {d1}?", "I want to travel by plane from {origin} to {city} on {d1}.",
         "Just show me the flights from {origin} to {city} on {d1}, no booking yet.",
         "My trip starts in {origin} and I fly to {city} on {d1}. Flight options?",
         "Compare flights from {origin} to {city} for {d1}.", "What airlines fly {origin} to {city} on {d1}?"],
        ["Can I get from {origin} to {city} by air on {d1}?", "Any departures {origin} to {city} on {d1}?",
         "What's flying from {origin} into {city} on {d1}?"]),
    "search_hotels": (
        ["Find a hotel in {city} from {d1} to {d2}.", "I need a room in {city}, check-in {d1}, check-out {d2}.",
         "Search hotels in {city} for {d1} to {d2}.", "Where can I stay in {city} from {d1} until {d2}?",
         "Book-worthy hotels in {city}, arriving {d1} and leaving {d2}?",
         "Show me accommodation in {city} between {d1} and {d2}.", "Hotels in {city}, {d1} to {d2}, please.",
         "Look for a place to stay in {city} from {d1} to {d2}.",
         "I need accommodation in {city} from {d1} to {d2}.", "Hotel options in {city}? Check in {d1}, check out {d2}.",
         "Where should I stay in {city}? I arrive {d1} and leave {d2}.", "Looking for a bed in {city} from {d1} until {d2}.",
         "Find me a guesthouse or hotel in {city}, {d1} to {d2}.", "Search for an inn in {city} from {d1} to {d2}."],
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
     "Write a haiku about the sea.", "How many legs does a spider have?", "Good morning!",
     "What is the population of {city}?", "Is {city} a good place to live?", "How do you pronounce {city}?",
     "My birthday is on {d1}.", "What day of the week is {d1}?", "Tell me something interesting about {city}.",
     "Can you help me write an email?", "What's 15% of 80?", "Recommend a movie for tonight.", "How are you today?",
     "Summarise the plot of Romeo and Juliet.", "How do I reset my password?", "I moved to {city} last year.",
     "What language do they speak in {city}?"],
    ["What's the capital of Australia?", "Any tips for learning the guitar?", "{city} is beautiful in spring.",
     "Explain photosynthesis in one line.", "See you later!"])
NO_CALL_REPLIES = ("I can help with weather forecasts, flights, hotels, itineraries and flight bookings. "
                   "That request needs none of them.")
# Follow-up questions of multi_turn episodes, by (first tool, follow-up tool); an empty training side holds
# the combination out for the test split.
FOLLOW_UPS = {
    ("get_weather", "search_hotels"): (
        ["And hotels there for those dates?", "Thanks. Can you find me a hotel there for the same days?"],
        ["Good to know. Where could I stay during that trip?"]),
    ("get_weather", "search_flights"): (
        ["OK. Any flights there from {origin} on {d1}?", "Then show me flights from {origin} to get there on {d1}."],
        ["Nice. What could I fly on from {origin}, leaving {d1}?"]),
    ("search_flights", "get_weather"): (
        ["And what will the weather be like there until {d2}?", "How's the forecast there from {d1} to {d2}?"],
        ["Should I pack for rain there? I stay until {d2}."]),
    ("search_flights", "search_hotels"): (
        ["Now find me a hotel there until {d2}.", "Great. I also need a room there from {d1} to {d2}."],
        ["Where can I sleep there until {d2}?"]),
    ("search_hotels", "get_weather"): (
        ["And the weather for that stay?", "What's the forecast there for those dates?"],
        ["Will it be nice out during my stay?"]),
    ("search_hotels", "search_flights"): (
        [], ["How do I get there from {origin}? I'd fly on {d1}."]),
}
PASSENGERS = (["Ana Silva", "Tom Becker", "Mia Rossi", "Li Wei", "Sara Novak", "John Smith", "Eva Berg"],
              ["Omar Haddad", "Nina Kovacs", "Yuki Sato"])
LONG_RANGE_DAYS = (8, 12)  # recovery: a forecast range past the simulator's limit, in days after the start


def _dates(rng: random.Random, held: bool) -> tuple[str, str]:
    """A start date on the chosen side of the date split and an end 1-4 days later."""
    while True:
        start = dt.date(2026, 3, 1) + dt.timedelta(days=rng.randrange(240))
        if (sim.stable_hash("date-split", start.isoformat()) % 4 == 0) == held:
            return start.isoformat(), (start + dt.timedelta(days=rng.randint(1, 4))).isoformat()


def _slots(rng: random.Random, held: bool) -> dict[str, str]:
    cities = travel.CITIES_TEST if held else travel.CITIES_TRAIN
    city, origin = rng.sample(cities, 2)
    d1, d2 = _dates(rng, held)
    return {"city": city, "origin": origin, "d1": d1, "d2": d2, "passenger": rng.choice(side(PASSENGERS, held))}


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


SPEC = tasks.Spec(travel.NAME, travel.execute, _answer, NO_CALL_REPLIES)
PHRASINGS = tasks.Phrasings(SINGLE, PARALLEL, IRRELEVANT)


def _chain(rng: random.Random, s: dict[str, str], held: bool, env: travel.TravelEnv) -> Draft:
    """Plan an itinerary from the weather and the cheapest flight, or book the cheapest flight."""
    flight = travel.flights_for(s["origin"], s["city"], s["d1"])[0]["flight_id"]
    if rng.random() < 0.5:
        first = [_call("get_weather", s), _call("search_flights", s)]
        weather = json.loads(env.get_weather(**first[0]["arguments"]))["summary"]
        env.reset()
        plan = {"name": "plan_itinerary", "arguments": {"city": s["city"], "flight_id": flight, "weather": weather}}
        return Draft("chain", [(rng.choice(side(CHAIN_PLAN, held)).format(**s), [first, [plan]])], [(1, 0)],
                     {"itineraries": [{"city": s["city"], "flight_id": flight, "weather": weather}]})
    book = {"name": "book_flight", "arguments": {"flight_id": flight, "passenger": s["passenger"]}}
    user = rng.choice(side(CHAIN_BOOK, held)).format(**s)
    return Draft("chain", [(user, [[_call("search_flights", s)], [book]])], [(1, 0)],
                 {"bookings": [{"flight_id": flight, "passenger": s["passenger"]}]})


def _recovery(rng: random.Random, s: dict[str, str], held: bool) -> Draft:
    """A request whose literal call fails, then the call the tool error corrects: a misspelt city (the error
    names the city meant) or a forecast range past the simulator's limit (the error names the last day)."""
    if rng.random() < 0.5:
        name, template = tasks.phrase(rng, SINGLE, held)
        wrong = {**s, "city": tasks.typo(rng, s["city"], travel.CITIES)}
    else:
        name, template = "get_weather", rng.choice(side(SINGLE["get_weather"], held))
        start = dt.date.fromisoformat(s["d1"])
        wrong = {**s, "d2": (start + dt.timedelta(days=rng.randint(*LONG_RANGE_DAYS))).isoformat()}
        s = {**s, "d2": (start + dt.timedelta(days=travel.MAX_RANGE_DAYS - 1)).isoformat()}
    return Draft("recovery", [(template.format(**wrong), [[_call(name, wrong)], [_call(name, s)]])], [(1, 0)],
                 failing=frozenset({0}))


def _multi_turn(rng: random.Random, s: dict[str, str], held: bool) -> Draft:
    """One request, then a follow-up about the same trip ("and hotels there?") that needs another tool."""
    (first, second), follow = tasks.phrase(rng, FOLLOW_UPS, held)
    opening = rng.choice(side(SINGLE[first], held)).format(**s)
    return Draft("multi_turn", [(opening, [[_call(first, s)]]), (follow.format(**s), [[_call(second, s)]])])


def make_episode(pattern: str, rng: random.Random, held: bool, idx: int, tools: list[Tool]) -> Episode:
    """One synthetic episode of `pattern`, its gold trajectory executed in the simulator."""
    s = _slots(rng, held)
    env = travel.TravelEnv()
    draft = tasks.draft(pattern, rng, s, held, PHRASINGS, _call,
                        {"chain": lambda: _chain(rng, s, held, env), "recovery": lambda: _recovery(rng, s, held),
                         "multi_turn": lambda: _multi_turn(rng, s, held)})
    draft.frame(rng, held)
    return tasks.write(SPEC, env, draft, held, idx, tools)


def generate(n: int, shares: dict[str, float], heldout_fraction: float, seed: int) -> list[Episode]:
    """Generate `n` episodes with the given pattern shares; a `heldout_fraction` share is held out."""
    return tasks.generate(make_episode, travel.catalog(), n, shares, heldout_fraction, seed)


def generate_lines(n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                   workers: int = 1) -> list[tasks.Generated]:
    """`generate`'s episodes as JSON lines, drawn by up to `workers` processes (see `tasks.generate_lines`)."""
    return tasks.generate_lines(make_episode, travel.catalog(), n, shares, heldout_fraction, seed, workers=workers)
