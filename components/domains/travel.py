"""Built-in domain `travel`: tool catalog, deterministic simulator and the TRL environment.

The tools are the public methods of `TravelEnv` (typed, Google docstrings): the catalog is built from
them with `transformers.utils.get_json_schema`, so the schemas shown in SFT prompts, checked by
validation and offered by GRPO's tool loop are one and the same. Every result is a pure function of
the arguments and the session state; bad arguments raise `ToolError` (GRPO turns it into an error
message the model sees).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any

from components.domains import sim
from components.domains.sim import ToolError
from components.domains.sim import stable_hash as _h

NAME = "travel"
SYSTEM_PROMPT = ("You are a helpful travel assistant. Today is Sunday, 1 March 2026; dates without a year are in "
                 "2026. Call a tool when it helps; ask for a missing detail; answer directly when no tool fits.")  # base.system_prompt: null
CONDITIONS = ("sunny", "cloudy", "rain", "snow")
CITIES_REAL = ("Paris", "Lisbon", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Amsterdam", "Dublin",
                "Oslo", "Stockholm", "Helsinki", "Athens", "Warsaw", "Budapest", "Zurich", "Brussels",
                "Copenhagen", "Barcelona", "Munich", "Milan", "Porto", "Seville", "Krakow", "Edinburgh",
                "Tokyo", "Seoul", "Boston", "Chicago", "Toronto", "New York", "Los Angeles", "San Francisco",
                "Mexico City", "Buenos Aires", "Sao Paulo", "Bogota", "Santiago", "Havana", "Panama City",
                "Cairo", "Marrakesh", "Lagos", "Accra", "Addis Ababa", "Johannesburg", "Casablanca", "Tunis",
                "Istanbul", "Dubai", "Doha", "Tel Aviv", "Amman", "Mumbai", "New Delhi", "Kathmandu", "Colombo",
                "Bangkok", "Hanoi", "Ho Chi Minh City", "Kuala Lumpur", "Singapore", "Jakarta", "Manila",
                "Shanghai", "Beijing", "Hong Kong", "Taipei", "Osaka", "Busan", "Sydney", "Melbourne",
                "Auckland", "Wellington", "Honolulu", "Anchorage", "Quebec City", "Salt Lake City", "Tbilisi",
                "Yerevan", "Almaty", "Tashkent", "Riga", "Tallinn", "Vilnius", "Ljubljana", "Zagreb", "Sofia",
                "Bucharest", "Belgrade", "Sarajevo", "Bratislava", "Luxembourg", "Geneva", "Bergen", "Gothenburg")
SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "tor", "shi", "bel", "dor", "an", "qui", "zar", "mon", "tel", "pra",
             "nor", "vi", "sol", "gar", "lin", "os", "tu", "hel", "ber", "ko", "ya", "ri", "ma", "dun", "es")


def coined_cities(n: int = 120) -> tuple[str, ...]:
    """Made-up place names no pretraining text holds: trained on them, a model must copy the name from the
    request rather than recall a familiar one (what breaks on unseen real cities otherwise)."""
    rng = random.Random("tooltune-coined-cities")
    names: list[str] = []
    while len(names) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        name = rng.choice(("{}", "{}", "{}", "Port {}", "San {}", "{} Bay", "New {}")).format(word)
        if name not in names:
            names.append(name)
    return tuple(names)


CITIES_TRAIN = CITIES_REAL + coined_cities()
CITIES_TEST = ("Hangzhou", "Nairobi", "Lima", "Vancouver", "Cape Town", "Reykjavik", "Kyoto", "Montreal",
               "Valencia", "Rio de Janeiro")
CITIES = CITIES_TRAIN + CITIES_TEST
MAX_RANGE_DAYS = 7


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


def _city(value: str, name: str = "city") -> str:
    return sim.lookup(value, CITIES, name)


def weather_on(city: str, day: dt.date) -> tuple[str, int]:
    """Deterministic forecast (condition, high in C) for one city and day."""
    h = _h("weather", city, day.isoformat())
    return CONDITIONS[h % len(CONDITIONS)], 5 + h % 25


def flights_for(origin: str, destination: str, date: str) -> list[dict[str, Any]]:
    """Deterministic flight offers, cheapest first."""
    offers = []
    for k in range(2):
        h = _h("flight", origin, destination, date, k)
        offers.append({"flight_id": f"TT{100 + h % 900}", "depart": f"{6 + h % 14:02d}:{(h // 7) % 4 * 15:02d}",
                       "price_eur": 60 + h % 400})
    return sorted(offers, key=lambda o: (o["price_eur"], o["flight_id"]))


def hotels_for(city: str, check_in: str) -> list[dict[str, Any]]:
    h = _h("hotel", city, check_in)
    return [{"hotel_id": f"H{1000 + h % 9000}", "name": f"Hotel {city} {('Central', 'Garden', 'Harbour')[h % 3]}",
             "price_per_night_eur": 50 + h % 200}]


class TravelEnv:
    """One user session of the travel simulator; public methods are the tools.

    `reset()` starts a fresh session; `state` holds what the session has done (successful calls,
    itineraries, bookings), which task-completion checks compare against an episode's goal.
    """

    def __init__(self) -> None:
        self.state: dict[str, list] = {}
        self.reset()

    def reset(self, **kwargs: Any) -> None:
        """Start a new session (TRL passes the dataset row's columns; they are not needed)."""
        self.state = {"log": [], "weather": [], "flights": [], "itineraries": [], "bookings": []}

    def _ok(self, name: str, arguments: dict[str, Any], result: dict[str, Any]) -> str:
        return sim.record(self.state, name, arguments, result)

    def get_weather(self, city: str, start_date: str, end_date: str) -> str:
        """Weather forecast for a city over a date range.

        Args:
            city: City name.
            start_date: First day, YYYY-MM-DD.
            end_date: Last day, YYYY-MM-DD.
        """
        name, start, end = _city(city), _date(start_date, "start_date"), _date(end_date, "end_date")
        if end < start or (end - start).days >= MAX_RANGE_DAYS:
            last = start + dt.timedelta(days=MAX_RANGE_DAYS - 1)
            raise ToolError(f"end_date must be 0-{MAX_RANGE_DAYS - 1} days after start_date "
                            f"(from {start_date}: at most {last.isoformat()})")
        days = [weather_on(name, start + dt.timedelta(days=i)) for i in range((end - start).days + 1)]
        summary = Counter(condition for condition, _ in days).most_common(1)[0][0]
        self.state["weather"].append({"city": name, "summary": summary})
        return self._ok("get_weather", {"city": city, "start_date": start_date, "end_date": end_date},
                        {"city": name, "summary": summary, "daily": [c for c, _ in days],
                         "highs_c": [h for _, h in days]})

    def search_flights(self, origin: str, destination: str, date: str) -> str:
        """Flights between two cities on one day, cheapest first.

        Args:
            origin: Departure city.
            destination: Arrival city.
            date: Travel day, YYYY-MM-DD.
        """
        src, dst, _ = _city(origin, "origin"), _city(destination, "destination"), _date(date, "date")
        if src == dst:
            raise ToolError("origin and destination must differ")
        offers = flights_for(src, dst, date)
        self.state["flights"] += [o["flight_id"] for o in offers]
        return self._ok("search_flights", {"origin": origin, "destination": destination, "date": date},
                        {"flights": offers})

    def search_hotels(self, city: str, check_in: str, check_out: str) -> str:
        """Hotels in a city for a stay.

        Args:
            city: City name.
            check_in: Arrival day, YYYY-MM-DD.
            check_out: Departure day, YYYY-MM-DD.
        """
        name, start, end = _city(city), _date(check_in, "check_in"), _date(check_out, "check_out")
        if end <= start:
            raise ToolError("check_out must be after check_in")
        return self._ok("search_hotels", {"city": city, "check_in": check_in, "check_out": check_out},
                        {"city": name, "nights": (end - start).days, "hotels": hotels_for(name, check_in)})

    def plan_itinerary(self, city: str, flight_id: str, weather: str) -> str:
        """Plan a trip from a found flight and the fetched weather.

        Args:
            city: Destination city.
            flight_id: Id of the chosen flight, from search_flights.
            weather: Summary condition from get_weather for the city. (choices: ["sunny", "cloudy", "rain", "snow"])
        """
        name = _city(city)
        if flight_id not in self.state["flights"]:
            raise ToolError(f"flight {flight_id!r} was not found by search_flights in this session")
        fetched = [w["summary"] for w in self.state["weather"] if w["city"] == name]
        if not fetched:
            raise ToolError(f"fetch the weather for {name} before planning")
        if weather not in fetched:
            raise ToolError(f"weather {weather!r} does not match the forecast for {name}")
        outdoor = weather in ("sunny", "cloudy")
        plan = {"city": name, "flight_id": flight_id, "weather": weather,
                "activities": ["walking tour", "bike ride"] if outdoor else ["museum", "food market"]}
        self.state["itineraries"].append({"city": name, "flight_id": flight_id, "weather": weather})
        return self._ok("plan_itinerary", {"city": city, "flight_id": flight_id, "weather": weather},
                        {"itinerary_id": f"IT{_h(name, flight_id) % 10000:04d}", **plan})

    def book_flight(self, flight_id: str, passenger: str) -> str:
        """Book a flight found by search_flights.

        Args:
            flight_id: Id of the flight to book.
            passenger: Full name of the passenger.
        """
        if flight_id not in self.state["flights"]:
            raise ToolError(f"flight {flight_id!r} was not found by search_flights in this session")
        if not str(passenger).strip():
            raise ToolError("passenger must not be empty")
        self.state["bookings"].append({"flight_id": flight_id, "passenger": passenger})
        return self._ok("book_flight", {"flight_id": flight_id, "passenger": passenger},
                        {"confirmation": f"C{_h(flight_id, passenger) % 100000:05d}", "flight_id": flight_id,
                         "passenger": passenger})


TOOL_NAMES = ("get_weather", "search_flights", "search_hotels", "plan_itinerary", "book_flight")


def catalog() -> list[dict[str, Any]]:
    """OpenAI function schemas of the travel tools, built from `TravelEnv`'s methods; dates get a pattern."""
    tools = sim.catalog(TravelEnv(), TOOL_NAMES)
    for schema in tools:
        for prop in schema["function"]["parameters"]["properties"].values():
            if "YYYY-MM-DD" in prop.get("description", ""):
                prop["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
    return tools


def execute(env: TravelEnv, call: dict[str, Any]) -> tuple[str, bool]:
    """Run one parsed call in the simulator; returns (tool message content, succeeded)."""
    return sim.execute(env, TOOL_NAMES, call)


def goal_reached(env: TravelEnv, expected_steps: list[list[dict]], goal: dict[str, Any]) -> bool:
    """Task completion (see `sim.goal_reached`)."""
    return sim.goal_reached(env, TOOL_NAMES, expected_steps, goal)
