"""Parameter concepts of the general generator: what a parameter means, its JSON type, the names a function may
give it, the values it takes and the phrases a user says it with.

Every pool is a pair (training side, held-out side), as in components/domains/phrasing.py. A function on the
training side names its parameters from the first side of `names`, a held-out function from the second, and the
two sides never share a name (tests/unit/test_general.py checks it), so no parameter name of a held-out function
is ever shown in training. Phrases hold `{v}` where the value goes (an object's phrases hold its fields' keys);
values are written in the user's voice (dates, amounts, number words, enum spellings) by
components/domains/general/requests.py.

The builders (`text`, `num`, `integer`, `flag`, `enum`, `day`, `clock`, `array`, `obj`) read their pools as
strings: `"a b|c d"` is the pool (["a", "b"], ["c", "d"]) for names, `/` separates phrases and enum spellings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.domains.phrasing import Pool

Kind = str  # string | integer | number | boolean | enum | date | time | array | object


@dataclass(frozen=True)
class Concept:
    """One kind of parameter."""

    kind: Kind
    label: str  # what a user calls it, also the question for a missing one ("could you tell me the radius?")
    names: Pool  # parameter-name spellings
    phrases: Pool  # slot phrases, `{v}` for the value; boolean: the phrases for true
    values: Pool = ((), ())  # string values; array: the items' values
    low: float = 0  # integer, number: range and step
    high: float = 0
    step: float = 1
    options: dict[str, Pool] = field(default_factory=dict)  # enum value -> its spellings
    off: Pool = ((), ())  # boolean: the phrases for false
    default: Any = None  # the default of an optional parameter (None: omitted means not given)
    item: str = ""  # array: the items' concept ("" for strings of `values`)
    count: tuple[int, int] = (2, 3)  # array: lengths
    fields: dict[str, str] = field(default_factory=dict)  # object: field key -> concept key
    unit: str = ""  # named in the description


def pool(spec: str, sep: str = " ") -> Pool:
    """`"a b|c d"` -> (["a", "b"], ["c", "d"]); without `|` both sides are the same."""
    train, _, held = spec.partition("|")
    split = (lambda s: [x.strip() for x in s.split(sep) if x.strip()])
    return split(train), split(held if _ else train)


def _article(label: str) -> str:
    return "an" if label[:1] in "aeiou" else "a"


def _phrases(spec: str | None, label: str, numeric: bool) -> Pool:
    if spec is not None:
        return pool(spec, "/")
    if numeric:
        a = _article(label)
        return ([f"with {a} {label} of {{v}}", f"{label} {{v}}", f"with {label} {{v}}", f"for {a} {label} of {{v}}"],
                [f"where the {label} is {{v}}", f"given {a} {label} of {{v}}"])
    return ["for {v}", f"with {label} {{v}}", f"{label}: {{v}}"], [f"where the {label} is {{v}}", "using {v}"]


def text(label: str, names: str, values: str, phrases: str | None = None, default: Any = None) -> Concept:
    """A string parameter; `values` separated by `/`."""
    return Concept("string", label, pool(names), _phrases(phrases, label, False), pool(values, "/"), default=default)


def num(label: str, names: str, low: float, high: float, step: float, phrases: str | None = None, unit: str = "",
        default: Any = None) -> Concept:
    return Concept("number", label, pool(names), _phrases(phrases, label, True), low=low, high=high, step=step,
                   unit=unit, default=default)


def integer(label: str, names: str, low: int, high: int, phrases: str | None = None, unit: str = "",
            default: Any = None) -> Concept:
    return Concept("integer", label, pool(names), _phrases(phrases, label, True), low=low, high=high, unit=unit,
                   default=default)


def flag(label: str, names: str, on: str, off: str = "", default: bool = False) -> Concept:
    """A boolean: `on` phrases say true, `off` phrases false (a required flag needs both)."""
    return Concept("boolean", label, pool(names), pool(on, "/"), off=pool(off, "/"), default=default)


def enum(label: str, names: str, options: dict[str, str], phrases: str | None = None, default: Any = None) -> Concept:
    """An enum of strings; each option's spellings as `"a/b|c"` (held-out spellings after `|`)."""
    return Concept("enum", label, pool(names), _phrases(phrases, label, False),
                   options={k: pool(v, "/") for k, v in options.items()}, default=default)


def day(label: str, names: str, phrases: str = "on {v}/for {v}|dated {v}") -> Concept:
    """A date, YYYY-MM-DD in the call, spelled in the voice's date format in the request."""
    return Concept("date", label, pool(names), pool(phrases, "/"))


def clock(label: str, names: str, phrases: str = "at {v}|at around {v}") -> Concept:
    """A time of day, HH:MM (24-hour) in the call, spelled 24- or 12-hour in the request."""
    return Concept("time", label, pool(names), pool(phrases, "/"))


def array(label: str, names: str, values: str = "", item: str = "", count: tuple[int, int] = (2, 3),
          phrases: str | None = None) -> Concept:
    """A list of strings (`values`) or of another concept's values (`item`)."""
    return Concept("array", label, pool(names), _phrases(phrases, label, False), pool(values, "/"), item=item,
                   count=count)


def obj(label: str, names: str, fields: dict[str, str], phrases: str) -> Concept:
    """A nested object whose `fields` (key -> concept) are all required; its phrases name the fields' keys."""
    return Concept("object", label, pool(names), pool(phrases, "/"), fields=fields)


CITIES = ("Paris/Tokyo/Berlin/Nairobi/Toronto/Sydney/Mumbai/Lima/Cairo/Seoul/Madrid/Chicago/Oslo/Dublin/Bangkok/Lisbon|"
          "Hanoi/Quito/Perth/Accra/Helsinki/Montevideo/Tbilisi/Krakow")
COUNTRIES = ("France/Japan/Brazil/Kenya/Canada/Norway/India/Peru/Egypt/Mexico/Italy/Germany|"
             "Vietnam/Chile/Ghana/Finland/Uruguay")
TICKERS = "AAPL/MSFT/TSLA/AMZN/NVDA/GOOGL/META/NFLX/IBM/INTC|ORCL/SAP/SONY/ADBE"
PEOPLE = ("Alice Chen/Marco Rossi/Priya Patel/John Smith/Fatima Khan/Lucas Silva/Emma Brown/Kenji Sato|"
          "Olga Ivanova/Diego Ramos/Amara Okafor/Lena Fischer")
EMAILS = ("alice.chen@example.com/marco@rossi.it/priya.p@mail.com/j.smith@work.org/fatima.khan@example.net|"
          "olga.i@example.org/diego@ramos.dev/amara.o@mail.co")
UNITS = {  # convert: unit enums, value -> spellings
    "length": {"meters": "meters/metres/m", "kilometers": "kilometers/km", "miles": "miles|mi", "feet": "feet/ft",
               "inches": "inches|in"},
    "weight": {"kilograms": "kilograms/kg/kilos", "pounds": "pounds/lbs", "grams": "grams/g", "ounces": "ounces|oz"},
    "temperature": {"celsius": "Celsius/degrees Celsius|°C", "fahrenheit": "Fahrenheit|°F", "kelvin": "Kelvin"},
    "volume": {"liters": "liters/litres|L", "gallons": "gallons", "milliliters": "milliliters/ml", "cups": "cups"},
    "speed": {"kmh": "km/h/kilometres per hour", "mph": "mph/miles per hour", "mps": "metres per second|m/s",
              "knots": "knots"},
    "area": {"square_meters": "square meters/m2", "square_feet": "square feet|sq ft", "acres": "acres",
             "hectares": "hectares"},
    "data": {"bytes": "bytes", "kilobytes": "kilobytes/KB", "megabytes": "megabytes/MB", "gigabytes": "gigabytes/GB",
             "terabytes": "terabytes|TB"},
    "cooking": {"cups": "cups", "tablespoons": "tablespoons/tbsp", "teaspoons": "teaspoons|tsp",
                "milliliters": "milliliters/ml"},
    "pressure": {"psi": "psi", "bar": "bar", "kpa": "kilopascals/kPa", "atm": "atmospheres|atm"},
    "energy": {"joules": "joules/J", "calories": "calories|cal", "kwh": "kilowatt-hours/kWh", "btu": "BTU"},
    "currency": {"USD": "USD/US dollars/dollars|bucks", "EUR": "EUR/euros", "GBP": "GBP/pounds sterling|quid",
                 "JPY": "JPY/yen", "CHF": "CHF/Swiss francs", "INR": "INR/rupees", "CAD": "CAD/Canadian dollars"},
}
