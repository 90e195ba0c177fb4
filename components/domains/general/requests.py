"""Requests for the general generator's functions: argument values drawn for a call, the words a user says them
with, the `phrasing.Intent` a `Voice` turns into a request, and the gold call.

Values are spelled in the voice of the episode: dates in its date format ("June 3rd"), amounts in its number
format ("1,500"), small integers sometimes as words ("three"), enum values by one of their spellings ("in
Fahrenheit" for `fahrenheit`), times in 24- or 12-hour form, lists as "a, b and c". The call holds the canonical
value. The gold call also lists, BFCL-style, the acceptable values of each argument (`Call.accept`): the value said,
and for an optional parameter the request does not mention, its default or leaving it out.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

from components.domains.general.apis import CONCEPTS, Api, Param, head_pool
from components.domains.general.concepts import Concept
from components.domains.phrasing import DATE_FORMATS, Intent, Pool, Voice, side

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve").split()
WORD_RATE = 0.25  # share of integers up to twelve spelled as a word
TIME_FORMATS: Pool = (["24h", "12h"], ["12h_tight", "24h"])  # 14:30, 2:30 pm; 2:30pm (held-out only)
FIRST_DAY = dt.date(2026, 3, 2)  # dates fall in 2026 after "today" (the system prompt's 1 March 2026)
LIST_TAGS = "abcdefgh"  # slot-name prefixes of the requests in one message
SLOT = re.compile(r"\{(\w+)\}")


def value(concept: Concept, rng: random.Random, held: bool, avoid: Any = None) -> Any:
    """A canonical value of `concept` (not `avoid`: an optional parameter said aloud differs from its default)."""
    for _ in range(20):
        v = _value(concept, rng, held)
        if v != avoid:
            return v
    raise ValueError(f"{concept.label}: no value besides its default {avoid!r}")


def _value(c: Concept, rng: random.Random, held: bool) -> Any:
    if c.kind == "string":
        return rng.choice(side(c.values, held))
    if c.kind == "integer":
        return rng.randint(int(c.low), int(c.high))
    if c.kind == "number":
        return round(c.low + c.step * rng.randint(0, round((c.high - c.low) / c.step)), 4) * 1.0
    if c.kind == "boolean":
        return rng.random() < 0.5
    if c.kind == "enum":
        return rng.choice(sorted(c.options))
    if c.kind == "date":
        return (FIRST_DAY + dt.timedelta(days=rng.randint(0, 290))).isoformat()
    if c.kind == "time":
        return f"{rng.randint(7, 21):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    if c.kind == "array":
        n = rng.randint(*c.count)
        if c.item:
            return [value(CONCEPTS[c.item], rng, held) for _ in range(n)]
        return rng.sample(side(c.values, held), min(n, len(side(c.values, held))))
    raise ValueError(f"{c.label}: objects are drawn field by field")


def draw_values(api: Api, rng: random.Random, held: bool, optional_rate: float) -> dict[str, Any]:
    """Argument values of one call: every required parameter, each optional one at `optional_rate` (then not at
    its default); an end date after its start date, a conversion between two different units."""
    values: dict[str, Any] = {}
    for p in api.params:
        if not p.required and rng.random() >= optional_rate:
            continue
        if p.concept.kind == "object":
            values[p.name] = {name: value(CONCEPTS[p.concept.fields[k]], rng, held) for k, name in p.fields}
        else:
            values[p.name] = value(p.concept, rng, held, None if p.required else p.concept.default)
    _distinct(api, values, rng, held)
    by_key = {p.key: p.name for p in api.params if p.name in values}
    if "start_date" in by_key and "end_date" in by_key:
        a, b = sorted((values[by_key["start_date"]], values[by_key["end_date"]]))
        values[by_key["start_date"]], values[by_key["end_date"]] = a, b if a != b else _later(b)
    if "from_unit" in by_key and values[by_key["from_unit"]] == values[by_key["to_unit"]]:
        units = sorted(set(api.params[1].concept.options) - {values[by_key["from_unit"]]})
        values[by_key["to_unit"]] = rng.choice(units)
    return values


def _distinct(api: Api, values: dict[str, Any], rng: random.Random, held: bool) -> None:
    """Two arguments drawn from the same values (origin and destination, two currencies) differ."""
    said: dict[Any, list[Any]] = {}
    for p in api.params:
        pool = tuple(p.concept.options) or p.concept.values[held]
        if p.name not in values or p.concept.kind not in ("string", "enum") or not pool:
            continue
        taken = said.setdefault((p.concept.kind, tuple(pool)), [])
        for _ in range(20):
            if values[p.name] not in taken:
                break
            values[p.name] = value(p.concept, rng, held)
        taken.append(values[p.name])


def _later(iso: str) -> str:
    return (dt.date.fromisoformat(iso) + dt.timedelta(days=1)).isoformat()


def spell(concept: Concept, v: Any, voice: Voice) -> str:
    """How the user of `voice` writes value `v` of `concept`."""
    rng, held, kind = voice.rng, voice.held, concept.kind
    if kind == "integer":
        return NUMBER_WORDS[v] if 0 < v < len(NUMBER_WORDS) and rng.random() < WORD_RATE else str(v)
    if kind == "number":
        return _number(v, voice.formats["amount"])
    if kind == "enum":
        return rng.choice(side(concept.options[v], held))
    if kind == "date":
        return DATE_FORMATS[voice.formats["date"]](dt.date.fromisoformat(v))
    if kind == "time":
        return _time(v, rng.choice(side(TIME_FORMATS, held)))
    if kind == "array":
        items = [spell(CONCEPTS[concept.item], x, voice) if concept.item else str(x) for x in v]
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return str(v)


def _number(x: float, form: str) -> str:
    """A number in one of `phrasing.AMOUNTS`' formats, never in exponent form: 1500, 1,500, 1500.00 (the last only
    for values with at most two decimals)."""
    plain = format(x, "f").rstrip("0").rstrip(".")
    whole, _, decimals = plain.partition(".")
    if form == "comma":
        return f"{int(whole):,}" + (f".{decimals}" if decimals else "") if not whole.startswith("-") else plain
    return f"{x:.2f}" if form == "decimal" and round(x, 2) == x else plain


def _time(hhmm: str, form: str) -> str:
    if form == "24h":
        return hhmm
    hour, minute = map(int, hhmm.split(":"))
    text = f"{(hour - 1) % 12 + 1}:{minute:02d}" if minute else f"{(hour - 1) % 12 + 1}"
    return text + (" " if form == "12h" else "") + ("pm" if hour >= 12 else "am")


def slot_pool(p: Param, v: Any, slot: str) -> Pool:
    """The phrases of one argument, its placeholders named for this request: `{v}` -> `{slot}`, an object's field
    `{x}` -> `{slot_x}`; a boolean's phrases say its value."""
    phrases = (p.concept.phrases if v else p.concept.off) if p.concept.kind == "boolean" else p.concept.phrases
    rename = (lambda t: re.sub(r"\{(\w+)\}", lambda m: "{" + (slot if m.group(1) == "v" else f"{slot}_{m.group(1)}")
                                + "}", t))
    return [rename(t) for t in phrases[0]], [rename(t) for t in phrases[1]]


def intent(api: Api, values: dict[str, Any], tag: str, omit: str | None = None) -> tuple[Intent, list[str]]:
    """The `Intent` of one call and its slot names in parameter order (`omit`: a parameter left unsaid)."""
    slots = {f"{tag}{k}": slot_pool(p, values.get(p.name), f"{tag}{k}") for k, p in enumerate(api.params)
             if p.name in values or p.name == omit}
    return Intent(head_pool(api, tag), slots), list(slots)


def fill(template: str, api: Api, values: dict[str, Any], tag: str, voice: Voice,
         spoken: dict[str, str] | None = None) -> str:
    """The template with this call's values spelled in the voice (`spoken`: slot -> text already written, such
    as a list of values one call each); other calls' slots (another `tag`) are left for their own `fill`."""
    said = dict(spoken or {})
    for k, p in enumerate(api.params):
        slot = f"{tag}{k}"
        if p.name not in values or slot in said:
            continue
        if p.concept.kind == "object":
            for key, name in p.fields:
                said[f"{slot}_{key}"] = spell(CONCEPTS[p.concept.fields[key]], values[p.name][name], voice)
        else:
            said[slot] = spell(p.concept, values[p.name], voice)
    return SLOT.sub(lambda m: said.get(m.group(1), m.group(0)), template)


def gold(api: Api, values: dict[str, Any]) -> dict[str, Any]:
    """The expected call: its exact arguments and BFCL-style acceptable values (an unmentioned optional parameter
    with a default: the default or left out; without one: not to be passed)."""
    accept: dict[str, list[Any]] = {}
    for p in api.params:
        if p.name in values:
            v = values[p.name]
            accept[p.name] = [{k: [x] for k, x in v.items()} if isinstance(v, dict) else v]
        elif p.concept.default is not None:
            accept[p.name] = [p.concept.default, ""]
    return {"name": api.name, "arguments": dict(values), "accept": accept}


def omittable(api: Api, held: bool) -> list[Param]:
    """Required parameters a request can leave unsaid (no head of the side names them)."""
    named = {int(n) for text, _ in api.heads[held] for n in re.findall(r"\{(\d+)\}", text)}
    return [p for k, p in enumerate(api.params) if p.required and k not in named]
