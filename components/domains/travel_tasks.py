"""Task generator of the travel domain: synthetic episodes of every pattern, run through the simulator.

Exports only what the shared generator (components/domains/generation.py) needs, as `BUILDERS`: values,
gold calls, phrasing parts (`INTENTS`: heads and slot phrases composed by `phrasing.Voice`), near misses,
requests that lack an argument, and the builders of chain, recovery (a misspelt city or a too-long forecast
range: the tool error says how to correct the call) and multi_turn (a follow-up about the same trip needs a
second call). Every part, city, date, passenger and tool combination is split into a training side and a
held-out side; episodes tagged `test` use only the held-out side.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from components.domains import sim, tasks, travel
from components.domains.phrasing import Intent, heads, side
from components.domains.tasks import Ctx, Draft

RANGE = (["from {d1} to {d2}", "between {d1} and {d2}", "{d1} through {d2}", "for {d1} to {d2}",
          "from {d1} until {d2}"], ["from {d1} till {d2}", "{d1} to {d2} inclusive"])
INTENTS = {
    "get_weather": Intent(
        (heads("ask", "what's the weather", "what will the weather be like", "will it rain", "how warm will it be",
              "do I need an umbrella", "should I pack a jacket", "is snow expected", "what's the forecast") +
         heads("do", "check the forecast", "get me the weather forecast", "tell me the weather", "look up the weather",
             "show me the forecast", "find the weather outlook") + heads("say", "I'd like the forecast", "I need the weather"),
         heads("ask", "how's the weather shaping up", "what conditions should I expect") + heads("do", "give me the outlook")),
        {"city": (["in {city}", "for {city}", "over in {city}"], ["in the city of {city}"]), "range": RANGE},
        ["weather {city} {d1} to {d2}", "{city} forecast {d1} to {d2}", "wx {city}, {d1} to {d2}?"]),
    "search_flights": Intent(
        (heads("do", "find me flights", "search flights", "look up flights", "show me flights", "get me flight options",
             "compare flights", "check flights", "list the flights") +
         heads("ask", "are there any flights", "which flights are there", "what flights do you have", "what can I fly") +
         heads("say", "I need a flight", "I want to fly", "I'm looking for flights"),
         heads("ask", "any departures", "what's flying") + heads("say", "I'm after a flight")),
        {"origin": (["from {origin}", "leaving {origin}", "out of {origin}"], ["setting off from {origin}"]),
         "dest": (["to {city}", "into {city}", "going to {city}"], ["bound for {city}", "headed to {city}"]),
         "date": (["on {d1}", "for {d1}", "departing on {d1}"], ["with a departure on {d1}", "for travel on {d1}"])},
        ["flights {origin} to {city} {d1}", "{origin} to {city} flights, {d1}", "fly {origin} -> {city} {d1}?"]),
    "search_hotels": Intent(
        (heads("do", "find a hotel", "find me a room", "search hotels", "show me accommodation", "look for a place to stay",
             "get me hotel options", "find me a guesthouse or hotel") +
         heads("ask", "where can I stay", "are there hotels", "what hotels are available") +
         heads("say", "I need a room", "I need accommodation", "I'm looking for a bed"),
         heads("ask", "any lodging") + heads("say", "I need somewhere to sleep") + heads("do", "sort me out a room")),
        {"city": (["in {city}", "somewhere in {city}"], ["in the city of {city}"]),
         "range": (["from {d1} to {d2}", "check-in {d1}, check-out {d2}", "arriving {d1} and leaving {d2}",
                    "for {d1} to {d2}", "from {d1} until {d2}"],
                   ["checking in {d1} and out {d2}", "for the nights {d1} to {d2}"])},
        ["hotel {city} {d1} to {d2}", "{city} hotels, {d1} to {d2}", "room in {city}, {d1} to {d2}"]),
}
# Parallel intents; the held-out side also asks in an order training never uses.
PARALLEL = ([("get_weather", "search_hotels"), ("search_flights", "search_hotels"), ("search_flights", "get_weather")],
            [("get_weather", "search_hotels"), ("search_flights", "search_hotels"), ("search_flights", "get_weather"),
             ("search_hotels", "get_weather")])
# Requests without a part the call needs: the assistant asks for it (`ASK_FOR`) instead of guessing.
MISSING = {"get_weather": ([("range",), ("city",)], [("range",), ("city",)]),
           "search_flights": ([("origin",), ("date",), ("origin", "date"), ("dest",)],
                              [("origin",), ("date",), ("origin", "date")]),
           "search_hotels": ([("range",), ("city",)], [("range",)])}
ASK_FOR = {"city": "which city", "range": "which dates", "origin": "which city you are flying from",
           "dest": "where you are flying to", "date": "which day you want to fly"}
NEAR_MISSES = (
    ["Rent me a car in {city} from {d1} to {d2}.", "Book a table for two in {city} on {d1}.",
     "Get me train tickets from {origin} to {city} on {d1}.", "Do I need a visa to visit {city}?",
     "Book a taxi to the airport in {city}.", "Cancel my hotel reservation in {city}.",
     "Can you get me a rental car at {city} airport on {d1}?", "Find a bus from {origin} to {city} on {d1}.",
     "How much luggage can I take on my flight?", "Reserve a restaurant in {city} for {d1}.",
     "Buy me travel insurance for my trip to {city}.", "Upgrade my seat to business class.",
     "Book museum tickets in {city} for {d1}.", "Change the name on my plane ticket.",
     "What's the exchange rate for my trip to {city}?"],
    ["Hire a car for me in {city}, {d1} to {d2}.", "Is there a ferry from {origin} to {city} on {d1}?",
     "Get me a dinner reservation in {city} on {d1}.", "What vaccinations do I need for {city}?",
     "Find me a train from {origin} to {city} on {d1}."])
CONTEXTS = (["I'm going with my kids.", "My budget is tight.", "It's a work trip.", "We're celebrating our anniversary.",
             "I hate long layovers.", "It's my first time there.", "I'm travelling solo.", "My partner is coming too.",
             "I prefer mornings.", "We're a family of four."],
            ["My mum is joining me.", "Money is a bit short this month.", "I'm going for a conference.",
             "It's a surprise for my wife.", "We are a group of five."])
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
# Statements that ask for nothing, for the aside twins' contrast pairs (`ingest.aside_twins`); training side only,
# none of them a held-out small-talk form or context.
ASIDES = ("My friend lives in {city}.", "I loved my last trip to {city}.", "I moved to {city} last year.",
          "My birthday is on {d1}.", "My cousin just got back from {city}.", "I've heard the food in {city} is great.",
          "I grew up near {origin}.", "We went to {city} for our honeymoon.", "The last time I flew, my bag got lost.",
          "I've never been abroad before.", "My sister works at the airport.", "I collect postcards from {city}.")
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
    """The gold call of one intent (here: a tool) with the episode's values."""
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


def _chain(c: Ctx) -> Draft:
    """Plan an itinerary from the weather and the cheapest flight, or book the cheapest flight."""
    s = c.slots
    flight = travel.flights_for(s["origin"], s["city"], s["d1"])[0]["flight_id"]
    if c.rng.random() < 0.5:
        first = [_call("get_weather", s), _call("search_flights", s)]
        weather = json.loads(c.env.get_weather(**first[0]["arguments"]))["summary"]
        c.env.reset()
        plan = {"name": "plan_itinerary", "arguments": {"city": s["city"], "flight_id": flight, "weather": weather}}
        user = c.text(c.voice.say(c.rng.choice(side(CHAIN_PLAN, c.held))))
        return Draft("chain", [(user, [first, [plan]])], [(1, 0)],
                     {"itineraries": [{"city": s["city"], "flight_id": flight, "weather": weather}]})
    book = {"name": "book_flight", "arguments": {"flight_id": flight, "passenger": s["passenger"]}}
    user = c.text(c.voice.say(c.rng.choice(side(CHAIN_BOOK, c.held))))
    return Draft("chain", [(user, [[_call("search_flights", s)], [book]])], [(1, 0)],
                 {"bookings": [{"flight_id": flight, "passenger": s["passenger"]}]})


def _recovery(c: Ctx) -> Draft:
    """A request whose literal call fails, then the call the tool error corrects: a misspelt city (the error
    names the city meant) or a forecast range past the simulator's limit (the error names the last day)."""
    s = c.slots
    if c.rng.random() < 0.5:
        name = c.rng.choice(sorted(INTENTS))
        wrong = {**s, "city": tasks.typo(c.rng, s["city"], travel.CITIES)}
    else:
        name = "get_weather"
        start = dt.date.fromisoformat(s["d1"])
        wrong = {**s, "d2": (start + dt.timedelta(days=c.rng.randint(*LONG_RANGE_DAYS))).isoformat()}
        s = {**s, "d2": (start + dt.timedelta(days=travel.MAX_RANGE_DAYS - 1)).isoformat()}
    user = c.voice.fill(c.voice.ask(INTENTS[name]), wrong)
    return Draft("recovery", [(user, [[_call(name, wrong)], [_call(name, s)]])], [(1, 0)], failing=frozenset({0}))


def _multi_turn(c: Ctx) -> Draft:
    """One request, then a follow-up about the same trip ("and hotels there?") that needs another tool."""
    (first, second), follow = tasks.phrase(c.rng, FOLLOW_UPS, c.held)
    opening = c.text(c.voice.ask(INTENTS[first]))
    return Draft("multi_turn", [(opening, [[_call(first, c.slots)]]),
                                (c.text(c.voice.follow(follow)), [[_call(second, c.slots)]])])


BUILDERS = tasks.Builders(
    spec=SPEC, env=travel.TravelEnv, slots=_slots, call=_call, intents=INTENTS, parallel=PARALLEL,
    small_talk=IRRELEVANT, near_misses=NEAR_MISSES, missing=MISSING, ask_for=ASK_FOR, contexts=CONTEXTS,
    own={"chain": _chain, "recovery": _recovery, "multi_turn": _multi_turn}, asides=ASIDES)
