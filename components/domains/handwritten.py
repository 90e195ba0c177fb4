"""The hand-written test sets of the built-in domains: requests people wrote in their own words, with the calls
that answer them, kept apart from every generator (a fixed extra test set, reported as its own column).

Reads: `components/domains/handwritten/<domain>.jsonl` (package data: the installed wheel carries it). Writes:
nothing. `episodes(domain)` runs each record's gold steps in the domain's simulator (`tasks.write`, as the
generators do) and returns full `Episode`s: ids from the file, `source` "handwritten", split "test".

One compact record per line (strict JSON, `components.data.inputs`):

    {"id": "hw-travel-001", "pattern": "chain",
     "turns": [{"user": "...", "steps": [[CALL, ...], [CALL]], "reply": "..."}],
     "depends_on": [[1, 0]], "goal": {"bookings": [...]}, "failing": [0]}

- `turns`: the user messages in order, each with the gold call steps that answer it (a step is the calls made
  together; `[]` for a turn answered without a call). `reply` (no-call turns only) is the assistant's answer,
  e.g. the question asking for a missing argument; without it the domain's usual no-call reply is used.
- CALL: `{"name", "arguments", "accept"}`; `accept` (optional) lists, per argument, further acceptable values
  (BFCL-style; `""` = may be omitted); the episode's `accept` holds the argument's own value first, then these.
- `depends_on`: (later step, earlier step) edges, steps numbered over all turns from 0.
- `goal`: simulator state the episode must reach (bookings, itineraries, orders, conversions).
- `failing`: steps that must fail (recovery: the literal call with a misspelt name, then the one its error names).

A bad record is a `DataError` naming the file, the line, the id and the rule broken:
`record_schema` (the shape above), `duplicate_id`, `unknown_tool`, `tool_schema` (arguments or an `accept`
value break the tool's JSON Schema), `accept` (an alternative for an argument the call does not pass),
`pattern` (turns and steps do not have the pattern's shape), `simulator` (a gold call the simulator rejects
that is not a `failing` step, or a `failing` step it accepts), `depends_on` (an edge that does not point back,
or a later step that takes nothing from the earlier one: none of its values is in that step's results unsaid by
the user, it does not fail without that step, and no whole number of it is a user's number divided by a result's)
and `goal` (the run does not reach the goal state).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components import toolcalls
from components.data.episode import DataError, Episode, Pattern, Tool
from components.data.inputs import iter_json_lines, schema_error
from components.domains import get, tasks

FOLDER = Path(__file__).parent / "handwritten"
SOURCE = "handwritten"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Call(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any]
    accept: dict[str, list[Any]] | None = None


class _Turn(_Strict):
    user: str = Field(min_length=1)
    steps: list[list[_Call]]
    reply: str | None = None


class _Record(_Strict):
    id: str = Field(min_length=1)
    pattern: Pattern
    turns: list[_Turn] = Field(min_length=1)
    depends_on: list[tuple[int, int]] = Field(default_factory=list)
    goal: dict[str, Any] = Field(default_factory=dict)
    failing: list[int] = Field(default_factory=list)


def simulation(domain: str) -> tuple[tasks.Spec, type] | None:
    """The episode writer's spec and the simulator class of a built-in domain; None for any other domain.

    The one place that knows where these live (the task modules are being reshaped)."""
    if domain == "travel":
        from components.domains import travel, travel_tasks
        return travel_tasks.SPEC, travel.TravelEnv
    if domain == "finance":
        from components.domains import finance, finance_tasks
        return finance_tasks.SPEC, finance.FinanceEnv
    return None


def path_of(domain: str) -> Path:
    """Where the hand-written set of `domain` lives (it may not exist)."""
    return FOLDER / f"{domain}.jsonl"


def episodes(domain: str, path: Path | None = None) -> list[Episode]:
    """The hand-written test episodes of `domain` (from `path`, by default its package file); [] for a domain
    without a simulator or without a set.

    Raises:
        DataError: A record breaks a rule (see the module docstring): file, line, id and rule named.
    """
    found = simulation(domain)
    path = path_of(domain) if path is None else Path(path)
    if found is None or not path.is_file():
        return []
    spec, env_class = found
    catalog = get(domain).catalog()
    tools = [Tool.model_validate(t) for t in catalog]
    out: list[Episode] = []
    ids: set[str] = set()
    for lineno, value in iter_json_lines(path):
        if isinstance(value, DataError):
            raise value
        where = f"{path}:{lineno}"
        record = _record(value, where)
        where = f"{where} (id {record.id})"
        if record.id in ids:
            raise DataError(where=where, rule="duplicate_id", detail="an earlier record has this id")
        ids.add(record.id)
        out.append(_episode(record, where, spec, env_class, catalog, tools))
    return out


def _record(value: Any, where: str) -> _Record:
    if not isinstance(value, dict):
        raise DataError(where=where, rule="record_schema", detail="a record must be a JSON object")
    try:
        return _Record.model_validate(value)
    except ValidationError as err:
        raise schema_error(err, f"{where} (id {value.get('id', '?')})") from None


def _episode(record: _Record, where: str, spec: tasks.Spec, env_class: type, catalog: list[dict[str, Any]],
             tools: list[Tool]) -> Episode:
    """One record checked (calls, shape, simulator run, dependencies, goal) and written as an episode."""
    index = toolcalls.tool_index(catalog)
    steps = [step for turn in record.turns for step in turn.steps]
    for call in (c for step in steps for c in step):
        _check_call(call, index, where)
    _check_pattern(record, steps, where)
    results = _run(record, steps, spec, env_class, where)
    _check_depends_on(record, steps, results, spec, env_class, where)
    draft = tasks.Draft(record.pattern, [(t.user, [[_plain(c) for c in s] for s in t.steps]) for t in record.turns],
                        [tuple(e) for e in record.depends_on], record.goal, frozenset(record.failing))
    env = env_class()
    episode = tasks.write(spec, env, draft, True, 0, tools)
    if not all(item in env.state.get(key, []) for key, items in record.goal.items() for item in items):
        raise DataError(where=where, rule="goal", detail=f"the gold steps do not reach the goal {record.goal}")
    return _finished(episode, record)


def _plain(call: _Call) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments}


def _check_call(call: _Call, index: dict[str, dict[str, Any]], where: str) -> None:
    """The call names a catalog tool, its arguments and every acceptable alternative pass the tool's schema."""
    if call.name not in index:
        raise DataError(where=where, rule="unknown_tool", detail=f"{call.name!r} is not a tool of the catalog "
                                                                 f"({sorted(index)})")
    variants = [call.arguments]
    for key, values in (call.accept or {}).items():
        if key not in call.arguments:
            raise DataError(where=where, rule="accept", detail=f"{call.name}: accept lists {key!r}, which the call "
                                                               "does not pass")
        variants += [{**call.arguments, key: v} for v in values if v != ""]
    for arguments in variants:
        errors = toolcalls.schema_errors({"name": call.name, "arguments": arguments}, index)
        if errors:
            raise DataError(where=where, rule="tool_schema", detail=f"{call.name}({json.dumps(arguments)}): "
                                                                    f"{errors[0][1]}")


def _check_pattern(record: _Record, steps: list[list[_Call]], where: str) -> None:
    """Turns and steps have the pattern's shape."""
    single_turn = len(record.turns) == 1
    shapes = {
        "single": single_turn and len(steps) == 1 and len(steps[0]) == 1,
        "parallel": single_turn and len(steps) == 1 and len(steps[0]) >= 2,
        "chain": single_turn and len(steps) >= 2 and bool(record.depends_on),
        "recovery": bool(record.failing),
        "irrelevance": not steps,
        "multi_turn": len(record.turns) >= 2 and bool(steps),
    }
    problems = [(not shapes[record.pattern], f"turns and steps do not have the shape of a {record.pattern} episode"),
                (bool(record.failing) and record.pattern != "recovery", "only a recovery episode has failing steps"),
                (any(t.reply is not None and t.steps for t in record.turns), "a reply is for a turn without calls"),
                (any(not 0 <= k < len(steps) for k in record.failing), "a failing step that does not exist"),
                (any(not step for step in steps), "an empty step (a step makes at least one call)")]
    for broken, detail in problems:
        if broken:
            raise DataError(where=where, rule="pattern", detail=detail)


def _run(record: _Record, steps: list[list[_Call]], spec: tasks.Spec, env_class: type,
         where: str) -> list[list[Any]]:
    """Each step's results in a fresh session; exactly the `failing` steps fail."""
    env, results = env_class(), []
    for k, step in enumerate(steps):
        results.append([])
        for call in step:
            content, ok = spec.execute(env, _plain(call))
            if ok == (k in record.failing):
                said = "accepts" if ok else "rejects"
                raise DataError(where=where, rule="simulator", detail=f"step {k}: the simulator {said} "
                                f"{call.name}({json.dumps(call.arguments)}): {content}")
            results[-1].append(json.loads(content))
    return results


def _check_depends_on(record: _Record, steps: list[list[_Call]], results: list[list[Any]], spec: tasks.Spec,
                      env_class: type, where: str) -> None:
    """Each edge points back, and the later step takes something from the earlier one (see the docstring)."""
    said = " ".join(t.user for t in record.turns).lower()
    for later, earlier in record.depends_on:
        if not 0 <= earlier < later < len(steps):
            raise DataError(where=where, rule="depends_on", detail=f"edge {[later, earlier]}: steps are numbered "
                                                                   f"0-{len(steps) - 1} and the later comes second")
        values = [v for c in steps[later] for v in c.arguments.values()]
        leaves = tasks.leaves(results[earlier])
        unsaid = [v for v in values if _among(v, leaves) and not _said(v, said)]
        if unsaid or _needs(steps, later, earlier, spec, env_class) or _divided(values, said, leaves):
            continue
        raise DataError(where=where, rule="depends_on", detail=f"step {later} takes no value from step {earlier}'s "
                                                               "results and does not need it to succeed")


def _said(value: Any, text: str) -> bool:
    """The user's text holds `value` as a whole word ("GOOGL" is not said by "google", the misspelling it fixes)."""
    return re.search(rf"\b{re.escape(str(value).lower())}\b", text) is not None


def _among(value: Any, leaves: list[Any]) -> bool:
    """`value` is a leaf of the results, or (a string) inside one: the name a tool error suggests."""
    if isinstance(value, str):
        return any(isinstance(leaf, str) and value.strip().lower() in leaf.lower() for leaf in leaves)
    return any(toolcalls.same_value(value, leaf) for leaf in leaves if isinstance(leaf, (int, float)))


def _needs(steps: list[list[_Call]], later: int, earlier: int, spec: tasks.Spec, env_class: type) -> bool:
    """Whether step `later` fails in a session that ran every step before it but `earlier`."""
    env = env_class()
    for step in steps[:later]:
        if step is not steps[earlier]:
            for call in step:
                spec.execute(env, _plain(call))
    return not all(spec.execute(env, _plain(c))[1] for c in steps[later])


def _divided(values: list[Any], said: str, leaves: list[Any]) -> bool:
    """A whole-number argument is a number the user gave divided by a number of the results, rounded down (how
    many shares a budget buys at the quoted price)."""
    words = [w.strip(".,;:!?()") for w in said.replace(",", "").replace("$", " ").split()]
    given = [float(w) for w in words if _number(w)]
    numbers = [x for x in leaves if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0]
    return any(type(v) is int and v == math.floor(g / x) for v in values for g in given for x in numbers)


def _number(word: str) -> bool:
    try:
        return math.isfinite(float(word))
    except ValueError:
        return False


def _finished(episode: Episode, record: _Record) -> Episode:
    """The written episode with the record's id, the hand-written source, its `accept` lists and replies."""
    data = episode.model_dump(exclude_none=True)
    data.update(id=record.id, source=SOURCE, split="test")
    calls = [c for t in record.turns for s in t.steps for c in s]
    gold = [c for s in data["expected"]["steps"] for c in s]
    for call, expected in zip(calls, gold):
        if call.accept:
            expected["accept"] = {k: [v, *[a for a in call.accept.get(k, []) if a != v]]
                                  for k, v in call.arguments.items()}
    users = [i for i, m in enumerate(data["messages"]) if m["role"] == "user"]
    for turn, i in zip(record.turns, users):
        if turn.reply is not None:
            data["messages"][i + 1]["content"] = turn.reply
    return Episode.model_validate(data)
