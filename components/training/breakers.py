"""Breakers: one per error class of the shared scorer (`components.toolcalls`), each turning a good trajectory into
candidate trajectories with that one mistake, as a model makes it.

A breaker yields candidates lazily, most realistic first in a seeded order; `pairs.break_case` keeps the first one
the scorer finds wrong with exactly the intended class. The mistakes draw on what a model has in front of it: the
catalog's schemas (enums, other tools' parameter names, optional parameters), the user's own words (a value the
request names, a date in any format the phrasing writes: a wrong or an extra call on the request's own city and
dates, as the SFT model makes them), the tool results so far, and the values the episode set's calls pass
(`Pool`): a wrong value is another city, a swapped origin and destination, the other flight of the search, a date a
day or a month off, a number ten times too big; never a placeholder such as "unknown". How a mistake enters the
trajectory: components/training/trajectory.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from components.domains.phrasing import DATE_FORMATS
from components.training.trajectory import Call, Case, Messages, Pool, block, call_message, decoded, with_step, \
    without_steps

# Verbs a model swaps for a tool name's own (search_flights -> find_flights): the hallucinated names it invents.
_SYNONYMS = {"search": ("find", "lookup"), "find": ("search", "get"), "get": ("fetch", "retrieve"),
             "fetch": ("get",), "list": ("get", "search"), "book": ("reserve",), "reserve": ("book",),
             "place": ("submit", "create"), "create": ("add", "make"), "plan": ("create", "build"),
             "convert": ("calculate",), "check": ("get", "verify"), "send": ("post",), "update": ("set", "edit")}
_STOPWORDS = frozenset("a an and are can for from get how in is it me my of on or please the there to what with you "
                       "your i we our this that".split())


# ---------------------------------------------------------------------------------------------- realistic values


@functools.lru_cache(maxsize=65536)
def spoken(value: str) -> tuple[str, ...]:
    """How a user writes `value`: as it is, and a date in each format the phrasing knows (June 3rd, Wed 3 Jun)."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return (value.lower(),)
    return (value, *(render(day).lower() for render in DATE_FORMATS.values()))


def said(text: str, value: str) -> Iterator[re.Match[str]]:
    """Where the lowercased `text` names `value` (two characters or more) as whole words, in any way a user writes
    it (`spoken`)."""
    for form in spoken(value) if len(value) > 1 else ():
        if form in text:
            yield from re.finditer(rf"(?<!\w){re.escape(form)}(?!\w)", text)


def _mentioned(case: Case, values: list[Any], taken: Iterable[Any] = ()) -> list[Any]:
    """The strings of `values` the user wrote (a date in any format), in the order the request first names them,
    those in `taken` (already passed in the call) last."""
    where = {}
    for v in values:
        if isinstance(v, str) and (found := [m.start() for m in said(case.user, v)]):
            where[v] = min(found)
    used = [json.dumps(t, sort_keys=True) for t in taken]
    return sorted(where, key=lambda v: (json.dumps(v, sort_keys=True) in used, where[v]))


def plausible(case: Case, pool: Pool, tool: str, key: str, rng: random.Random, taken: Iterable[Any] = (),
              shown: Iterable[str] = ()) -> Any:
    """A value a model would pass as `tool`'s `key`: the first one the user mentioned that the call does not pass
    yet (`taken`: a check-in and a check-out take the request's two dates in turn; a date slot takes any date the
    request names for any of the tool's dates), else the first string of the tool results so far (`shown`) shaped
    like the values the gold calls pass there (the flight the search found, booked), else one of those values,
    else the schema's enum or default; None when nothing is known."""
    seen = pool.values.get((tool, key), [])
    fits = seen
    if seen and all(_is_date(v) for v in seen):
        fits = [v for k in case.tools.get(tool, {}).get("properties", {}) for v in pool.values.get((tool, k), [])
                if _is_date(v)]
    if said := _mentioned(case, fits, taken):
        return said[0]
    shapes = {_shape(v) for v in seen if isinstance(v, str)}
    if found := [s for s in shown if _shape(s) in shapes]:
        return found[0]
    if seen:
        return rng.choice(seen)
    schema = case.tools.get(tool, {}).get("properties", {}).get(key, {})
    if isinstance(schema, dict) and schema.get("enum"):
        return rng.choice(schema["enum"])
    return schema.get("default") if isinstance(schema, dict) else None


def _is_date(value: Any) -> bool:
    return isinstance(value, str) and bool(_shifted_dates(value))


def _shifted_dates(text: str) -> list[str]:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return []
    month = day.replace(month=day.month % 12 + 1) if day.day <= 28 else day + dt.timedelta(days=31)
    return [(day + dt.timedelta(days=1)).isoformat(), (day - dt.timedelta(days=1)).isoformat(), month.isoformat()]


def _kind(value: Any) -> tuple[type, bool]:
    """What a value is, as far as swapping two arguments goes: dates swap with dates, names with names."""
    return type(value), _is_date(value)


def _near_numbers(value: int | float) -> list[int | float]:
    if isinstance(value, int):
        return [value + 1, value * 10] if value else [1, 10]
    return [round(value * 10, 4), round(value / 10, 4)] if value else [1.0]


def _shape(text: str) -> str:
    return re.sub(r"\d", "0", text)


def _shown(case: Case, i: int) -> list[str]:
    """The strings of the tool results before step i, in order of appearance."""
    found: dict[str, None] = {}
    for start, end in case.blocks[:i]:
        for m in case.rest[start + 1:end]:
            found.update(dict.fromkeys(strings(decoded(m.get("content")))))
    return list(found)


def _seen_before(case: Case, i: int, value: Any) -> list[str]:
    """Strings of the tool results before step i shaped like `value` (digits aside): the other flight of a search
    result where the cheapest was asked for."""
    if not isinstance(value, str):
        return []
    return [s for s in _shown(case, i) if s != value and _shape(s) == _shape(value)]


def strings(value: Any) -> Iterator[str]:
    """The strings in a JSON value, nested ones too, in order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from strings(item)


def _other_values(case: Case, pool: Pool, site: tuple[int, int], key: str) -> list[list[Any]]:
    """Wrong values for one argument, grouped by the kind of slip: a neighbouring date or number, another enum
    member, another value of the same shape in an earlier tool result, another value the calls of the episode set
    pass for the same argument (of the same type)."""
    tool, value = case.steps[site[0]][site[1]]["name"], case.steps[site[0]][site[1]]["arguments"][key]
    schema = case.tools.get(tool, {}).get("properties", {}).get(key, {})
    enum = schema.get("enum", []) if isinstance(schema, dict) else []
    groups = [_seen_before(case, site[0], value),
              _shifted_dates(value) if isinstance(value, str) else [],
              _near_numbers(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else [],
              [not value] if isinstance(value, bool) else [],
              [e for e in enum if e != value],
              [v for v in pool.values.get((tool, key), []) if type(v) is type(value) and v != value]]
    return [g for g in groups if g]


def _retyped(value: Any) -> list[Any]:
    """The value in the type a model confuses it with: a number as text, numeric text as a number, a lone value in a
    list, a list or an object as its JSON text."""
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, (int, float)):
        return [str(value)]
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return [[value]]
        return [int(number) if number.is_integer() else number, [value]]
    if isinstance(value, list):
        return [", ".join(map(str, value)) if all(isinstance(v, (str, int, float)) for v in value) else json.dumps(value)]
    return [json.dumps(value)] if isinstance(value, dict) else []


def _near_names(name: str) -> list[str]:
    """Tool names a model invents for `name`: a synonym verb, the other grammatical number, camelCase."""
    parts = name.split("_")
    out = [f"{s}_{'_'.join(parts[1:])}" if len(parts) > 1 else f"{s}_{name}" for s in _SYNONYMS.get(parts[0], ())]
    last = parts[-1]
    out.append("_".join(parts[:-1] + [last[:-1] if last.endswith("s") else last + "s"]))
    if len(parts) > 1:
        out.append(parts[0] + "".join(p.title() for p in parts[1:]))
    return out if parts[0] in _SYNONYMS else out + [f"get_{name}"]


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOPWORDS}


def _interleave(groups: list[list[Any]], rng: random.Random) -> Iterator[Any]:
    """Items of every group, one group after another in a seeded order and each group shuffled, round robin: no
    kind of slip crowds out the others (a pool of 50 cities against one swapped pair)."""
    groups = [rng.sample(g, len(g)) for g in groups if g]
    rng.shuffle(groups)
    for k in range(max(map(len, groups), default=0)):
        yield from (g[k] for g in groups if k < len(g))


def _sites(case: Case, rng: random.Random) -> list[tuple[int, int]]:
    """(step, call) positions a call-level mistake can go into, in a seeded order."""
    sites = [(i, j) for i in case.sound() for j in range(len(case.steps[i]))]
    return rng.sample(sites, len(sites))


def _replace(case: Case, i: int, j: int, call: Call) -> Messages:
    calls = [dict(c) for c in case.steps[i]]
    calls[j] = call
    return with_step(case, i, calls)


def _fill(case: Case, pool: Pool, tool: str, keys: Iterable[str], rng: random.Random,
          given: dict[str, Any] | None = None, shown: list[str] | None = None) -> dict[str, Any]:
    """Arguments for `keys` of `tool`: from `given` where it has the key, else what the request names, in turn, or
    the tool results so far show (`plausible`); keys with no known value left out."""
    args: dict[str, Any] = {}
    for key in keys:
        value = (given[key] if given and key in given
                 else plausible(case, pool, tool, key, rng, args.values(), shown or ()))
        if value is not None:
            args[key] = value
    return args


def _required(case: Case, tool: str) -> list[str]:
    schema = case.tools[tool]
    return schema.get("required") or list(schema.get("properties", {}))


def _outcome(pool: Pool, tool: str, args: dict[str, Any], rng: random.Random) -> Messages | None:
    """What a last call of `tool` elsewhere in the episode set got back ([tool result, final answer]), its values
    rebound to `args` (a weather result for the city asked about, not the one of that other episode); None when
    no episode ends on one call of it."""
    if not pool.outcomes.get(tool):
        return None
    old, after = rng.choice(pool.outcomes[tool])
    text = json.dumps(after)
    for key, value in old.items():
        new = args.get(key)
        if isinstance(value, str) and isinstance(new, str) and len(value) > 1 and value != new:
            text = text.replace(json.dumps(value)[1:-1], json.dumps(new)[1:-1])
    return json.loads(text)


def _answering(result: dict[str, Any], ident: str, tool: str) -> dict[str, Any]:
    """A borrowed tool result as the answer to call `ident` of `tool`."""
    return {**result, "tool_call_id": ident, "name": tool}


def _by_request(case: Case, pool: Pool, tools: Iterable[str], rng: random.Random) -> list[str]:
    """`tools` ordered by how many of their parameters the request names a value for (a weather call on the
    flight's city and date before a stock quote), ties in a seeded order."""
    def named(tool: str) -> int:
        return sum(bool(_mentioned(case, pool.values.get((tool, k), []))) for k in _required(case, tool))

    return sorted(tools, key=lambda t: (-named(t), rng.random()))


# ------------------------------------------------------------------------------------------------------- breakers


def hallucinated_tool(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """A call of a tool the catalog lacks, named as a model misremembers it (find_flights for search_flights)."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        names = [n for n in dict.fromkeys(_near_names(call["name"])) if n not in case.tools]
        for name in rng.sample(names, len(names)):
            yield _replace(case, i, j, {"name": name, "arguments": call["arguments"]})


def wrong_tool(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """Another tool of the catalog, those sharing most parameters first, its arguments taken from the call where
    the names agree and from plausible values elsewhere."""
    for i, j in _sites(case, rng):
        call, step_names, shown = case.steps[i][j], {c["name"] for c in case.steps[i]}, _shown(case, i)
        others = [t for t in case.tools if t not in step_names]
        others.sort(key=lambda t: (-len(set(case.tools[t].get("properties", {})) & set(call["arguments"])),
                                   rng.random()))
        for tool in others:
            args = _fill(case, pool, tool, _required(case, tool), rng, call["arguments"], shown)
            yield _replace(case, i, j, {"name": tool, "arguments": args})


def wrong_type(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """One argument in a type a model confuses it with ("2" for 2, 250 for "250", ["Oslo"] for "Oslo")."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        for key in rng.sample(sorted(call["arguments"]), len(call["arguments"])):
            for value in _retyped(call["arguments"][key]):
                yield _replace(case, i, j, {"name": call["name"], "arguments": {**call["arguments"], key: value}})


# How often a call with two same-typed values swaps them first (origin and destination, check-in and check-out)
# instead of drawing the swap in the round robin with every other wrong value. A swap is the wrong value only the
# request's words tell apart: in the round robin it came first in 19 % of travel's pairs (finance 8 %), and a reward
# model trained on them ranked 2 of 10 held-out swaps right against all 30 replaced values (docs/reward_model.md, stop
# 50). At 0.4: 53 % of travel's pairs, 25 % of finance's.
SWAP_FIRST = 0.4


def wrong_value(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """One slot filled wrong: two same-typed arguments swapped (origin and destination), a date a day or a month
    off, a number off by one or ten times, another enum member, another value the gold calls use there."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        args = call["arguments"]
        keys = sorted(args)
        swaps = [{**args, a: args[b], b: args[a]} for a in keys for b in keys
                 if a < b and _kind(args[a]) == _kind(args[b]) and args[a] != args[b]]
        singles = [[{**args, key: v} for v in group] for key in keys for group in _other_values(case, pool, (i, j), key)]
        firsts = rng.sample(swaps, len(swaps)) if rng.random() < SWAP_FIRST else []
        for new in [*firsts, *_interleave([[] if firsts else swaps, *singles], rng)]:
            yield _replace(case, i, j, {"name": call["name"], "arguments": new})


def missing_required_argument(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """One argument the call needs left out (the check-out date, the quantity)."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        for key in rng.sample(sorted(call["arguments"]), len(call["arguments"])):
            args = {k: v for k, v in call["arguments"].items() if k != key}
            yield _replace(case, i, j, {"name": call["name"], "arguments": args})


def unknown_argument(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """An extra argument the tool does not define: another tool's parameter (`passenger` on a flight search),
    with a value that parameter takes."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        own = set(case.tools.get(call["name"], {}).get("properties", {}))
        foreign = sorted({(t, k) for t, schema in case.tools.items() if t != call["name"]
                          for k in schema.get("properties", {}) if k not in own and k not in call["arguments"]})
        shown = _shown(case, i)
        for tool, key in rng.sample(foreign, len(foreign)):
            value = plausible(case, pool, tool, key, rng, shown=shown)
            if value is not None:
                yield _replace(case, i, j, {"name": call["name"], "arguments": {**call["arguments"], key: value}})


def unexpected_argument(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """An optional parameter of the tool that the request gives no reason to pass, with a value it takes."""
    for i, j in _sites(case, rng):
        call = case.steps[i][j]
        optional = sorted(set(case.tools.get(call["name"], {}).get("properties", {})) - set(call["arguments"]))
        shown = _shown(case, i)
        for key in rng.sample(optional, len(optional)):
            value = plausible(case, pool, call["name"], key, rng, shown=shown)
            if value is not None:
                yield _replace(case, i, j, {"name": call["name"], "arguments": {**call["arguments"], key: value}})


# How often a parallel step's wrong count is one call short rather than one call more, and how often an extra call
# after the last step is a step of its own rather than one more call beside the last step's.
FEWER_FIRST = 0.5
AFTER_LAST = 0.5
# How often an extra call is first drawn among the tools that take an identifier the results show (the SFT model
# books the flight it was only asked to find: 3 of its 13 on-policy mistakes the stop-55 reward model missed).
FOLLOW_FIRST = 0.5


def wrong_call_count(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """A parallel step one call short of the request, or one call more than it asks for: another tool of the
    catalog on the request's own values (the weather at the flight's destination, an itinerary nobody asked
    for), beside a step's calls or as a step of its own after the last, with what that tool returns."""
    fewer = [with_step(case, i, [case.steps[i][k] for k in keep], keep)
             for i, j in _sites(case, rng) if len(case.steps[i]) > 1
             for keep in [[k for k in range(len(case.steps[i])) if k != j]]]
    first = bool(fewer) and rng.random() < FEWER_FIRST
    yield from fewer if first else ()
    yield from _one_more(case, pool, rng)
    yield from () if first else fewer


def _one_more(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    if not case.steps:
        return
    last = len(case.steps) - 1
    others = [k for k in case.sound() if k != last]
    for i in [last, *rng.sample(others, len(others))]:
        alone = i == last and rng.random() < AFTER_LAST  # a step of its own after the last
        shown = _shown(case, i + alone)
        names = {c["name"] for c in case.steps[i]}
        tools = _by_request(case, pool, [t for t in case.tools if t not in names], rng)
        if rng.random() < FOLLOW_FIRST:  # the flight just found booked, an itinerary planned on it
            ids = {_shape(s) for s in shown if re.search(r"\d", s) and not _is_date(s)}
            tools.sort(key=lambda t: not _follows(case, pool, t, ids))
        for tool in tools:
            args = _fill(case, pool, tool, _required(case, tool), rng, shown=shown)
            after = _outcome(pool, tool, args, rng)
            if after is None:
                continue
            start, end = case.blocks[i]
            if alone:
                ids = [f"call_{len(case.steps)}_0"]
                yield [*case.rest[:end], call_message([{"name": tool, "arguments": args}], ids),
                       _answering(after[0], ids[0], tool), *case.rest[end:]]
                continue
            turn = json.loads(json.dumps(case.rest[start]))
            ident = f"call_{i}_{len(turn['tool_calls'])}"
            turn["tool_calls"].append(call_message([{"name": tool, "arguments": args}], [ident])["tool_calls"][0])
            yield [*case.rest[:start], turn, *case.rest[start + 1:end], _answering(after[0], ident, tool),
                   *case.rest[end:]]


def _follows(case: Case, pool: Pool, tool: str, ids: set[str]) -> bool:
    """Whether a required parameter of `tool` takes an identifier the tool results show (`ids`: the shapes of their
    strings with a digit that are no date: a flight id, an order number), going by the shape of the values the gold
    calls pass there."""
    return any(isinstance(v, str) and _shape(v) in ids
               for k in _required(case, tool) for v in pool.values.get((tool, k), []))


def redundant_call(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """A step made again right after its results came back."""
    for i in rng.sample(case.sound(), len(case.sound())):
        end = case.blocks[i][1]
        yield [*case.rest[:end], *block(case, i, "_again"), *case.rest[end:]]


def missing_step(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """A step left out while a later one is made: the dependent call made without its input, or the first request
    of a conversation answered without a call. A failed first try (recovery) is never the step left out."""
    steps = [i for i in range(len(case.steps) - 1) if not case.failed(i)]
    for i in rng.sample(steps, len(steps)):
        yield without_steps(case, {i})


def wrong_order(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """Two successive steps of one request made the other way round (the itinerary planned before the search), or
    the follow-up's request answered, calls and reply, before the first one's (the user's turns stay in place)."""
    pairs = [i for i in range(len(case.steps) - 1)
             if case.blocks[i][1] == case.blocks[i + 1][0] and not case.failed(i) and not case.failed(i + 1)]
    swaps = []
    for i in pairs:
        (a, _), (_, b) = case.blocks[i], case.blocks[i + 1]
        swaps.append([*case.rest[:a], *block(case, i + 1), *block(case, i), *case.rest[b:]])
    turns = _turns(case)
    for (a, b), (c, d) in zip(turns, turns[1:]):
        if _all_sound(case, a, b) and _all_sound(case, c, d):
            swaps.append([*case.rest[:a], *case.rest[c:d], *case.rest[b:c], *case.rest[a:b], *case.rest[d:]])
    yield from rng.sample(swaps, len(swaps))


def _turns(case: Case) -> list[tuple[int, int]]:
    """(start, end) in `case.rest` of the assistant's part of each user turn: from after the user's message to the
    next one."""
    users = [k for k, m in enumerate(case.rest) if m["role"] == "user"]
    return list(zip([0, *(u + 1 for u in users)], [*users, len(case.rest)]))


def _all_sound(case: Case, start: int, end: int) -> bool:
    """Whether the messages start:end make at least one call step and every one of them succeeds."""
    steps = [k for k, (s, _) in enumerate(case.blocks) if start <= s < end]
    return bool(steps) and not any(case.failed(k) for k in steps)


def premature_stop(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """Stopping with the final answer after step k although later steps remain."""
    n = len(case.steps)
    for k in rng.sample(range(n - 1), max(n - 1, 0)):
        yield without_steps(case, set(range(k + 1, n)))


# How often a one-turn request's no-call mistake is a refusal or a question back rather than answers given from thin
# air: the SFT model's own no-call mistakes are refusals (to terse requests, "fly Vancouver -> Nairobi Thu 30 Apr"),
# 5 of the 13 on-policy mistakes the stop-55 reward model ranked above the right calls.
REFUSAL_FIRST = 0.75


def no_call(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """No call at all: the answers given from thin air, or, to a one-turn request, a refusal or a question back."""
    thin_air = without_steps(case, set(range(len(case.steps))))
    if case.steps and sum(m["role"] == "user" for m in case.rest) == 0 and pool.replies:
        refusal = [{"role": "assistant", "content": rng.choice(pool.replies)}]
        yield from [refusal, thin_air] if rng.random() < REFUSAL_FIRST else [thin_air, refusal]
    else:
        yield thin_air


def call_when_irrelevant(case: Case, pool: Pool, rng: random.Random) -> Iterator[Messages]:
    """A call where the answer needs none: the tool whose name, description and parameters share most words with
    the request, passing what a call of it elsewhere passed with the values the user gave put in, then that call's
    result and answer (a tool no episode ends on: plausible values, no result)."""
    if case.steps:
        return
    said = _words(case.user)

    def overlap(tool: str) -> int:
        schema = case.tools[tool]
        return len(said & _words(f"{tool.replace('_', ' ')} {schema.get('description', '')} "
                                 f"{' '.join(schema.get('properties', {}))}"))

    for tool in sorted(case.tools, key=lambda t: (-overlap(t), rng.random())):
        args = _fill(case, pool, tool, _required(case, tool), rng)
        after = _outcome(pool, tool, args, rng) or []
        yield [call_message([{"name": tool, "arguments": args}], ["call_0_0"]),
               *[_answering(m, "call_0_0", tool) for m in after[:1]], *after[1:]]


Breaker = Callable[[Case, Pool, random.Random], Iterator[Messages]]
BREAKERS: dict[str, Breaker] = {
    "hallucinated_tool": hallucinated_tool, "wrong_tool": wrong_tool, "wrong_type": wrong_type,
    "wrong_value": wrong_value, "missing_required_argument": missing_required_argument,
    "unknown_argument": unknown_argument, "unexpected_argument": unexpected_argument,
    "wrong_call_count": wrong_call_count, "redundant_call": redundant_call, "missing_step": missing_step,
    "wrong_order": wrong_order, "premature_stop": premature_stop, "no_call": no_call,
    "call_when_irrelevant": call_when_irrelevant}
