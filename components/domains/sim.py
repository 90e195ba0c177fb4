"""What every built-in simulator shares: the error type, stable hashing, name lookup with a correction hint,
the catalog built from an environment's methods, safe execution (no tool failure escapes it) and the
task-completion check.

A domain module keeps only its own data and tools; these helpers make "a tool rejects bad arguments with a
message the model can act on" and "the task is complete" mean the same in every domain.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from components.toolcalls import same_call


MAX_ERROR_CHARS = 1000  # an error result echoing a huge argument must not flood the model's context


class ToolError(ValueError):
    """A tool was called with arguments the simulator rejects."""


def stable_hash(*parts: Any) -> int:
    """A hash that is the same in every process (Python's `hash` of a string is salted per process)."""
    return int(hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def stable_share(*parts: Any) -> float:
    """`stable_hash` of `parts` as a number in [0, 1]: `stable_share(...) < rate` picks a stable `rate` share."""
    return stable_hash(*parts) / 0xFFFFFFFF


def closest(value: str, choices: Sequence[str]) -> str | None:
    """The entry of `choices` fewest edits away from `value` (case-insensitive; see `edits`), if at most a third
    of its letters (at least one) differ: the hint a tool error gives for a misspelt name."""
    return _closest(str(value).strip().lower(), tuple(choices))


@lru_cache(maxsize=65536)  # generation asks again and again about the same few thousand misspellings
def _closest(typed: str, choices: tuple[str, ...]) -> str | None:
    # Same result as min over all entries by (edits, entry), far fewer letters compared. Iterative deepening: pass
    # `bound` looks only at entries whose length gap (a lower bound on the edits) is within it, with distances
    # cut off above it; the first pass that finds any entry within its bound has found every entry at the least
    # distance. An entry over `cap` edits is over its own threshold, so no pass goes beyond `cap`.
    cap = max(1, max((len(c) for c in choices), default=0) // 3)
    for bound in range(1, cap + 1):
        near = [(d, c) for c in choices
                if abs(len(c) - len(typed)) <= bound and (d := edits(typed, c.lower(), bound)) <= bound]
        if near:
            d, best = min(near)
            return best if d <= max(1, len(best) // 3) else None
    return None


def edits(a: str, b: str, bound: int | None = None) -> int:
    """Letters to insert, delete, replace or swap with a neighbour to turn `a` into `b` (optimal string
    alignment distance). With `bound`, exact up to `bound` and `bound + 1` for any larger distance: the rows
    stop as soon as no alignment can come back under it."""
    start = len(os.path.commonprefix([a, b]))  # a shared prefix or suffix costs no edit
    end = len(os.path.commonprefix([a[start:][::-1], b[start:][::-1]]))
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    limit = max(len(a), len(b)) if bound is None else bound
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, row = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (a[i - 1] != b[j - 1]))
            if before is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        # every later row holds at least min(this row, the row before + 1) (a swap reaches back two rows)
        if min(min(current), min(row) + 1) > limit:
            return limit + 1
        before, row = row, current
    return min(row[len(b)], limit + 1)


def lookup(value: str, choices: Sequence[str], what: str) -> str:
    """The entry of `choices` equal to `value` up to case and outer spaces.

    Raises:
        ToolError: none matches; the message names the closest entry, so the caller can correct its call.
    """
    match = _by_folded_name(tuple(choices)).get(str(value).strip().lower())
    if match is None:
        hint = closest(value, choices)
        raise ToolError(f"unknown {what} {value!r}" + (f"; did you mean {hint!r}?" if hint else ""))
    return match


@lru_cache(maxsize=64)
def _by_folded_name(choices: tuple[str, ...]) -> dict[str, str]:
    """Lowercased entry -> the first entry of `choices` with that lowercase form (built once per choice list:
    generating 100k episodes looks up a city or symbol for nearly every call)."""
    found: dict[str, str] = {}
    for choice in choices:
        found.setdefault(choice.lower(), choice)
    return found


def record(state: dict[str, Any], name: str, arguments: dict[str, Any], result: dict[str, Any]) -> str:
    """Log one successful call in the session state and return its result as the tool message content."""
    state["log"].append({"name": name, "arguments": arguments})
    return json.dumps(result)


def catalog(env: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """OpenAI function schemas of the tools `names`, built from the typed, documented methods of `env`."""
    from transformers.utils import get_json_schema

    tools = []
    for name in names:
        schema = get_json_schema(getattr(env, name))
        schema["function"].pop("return", None)
        tools.append(schema)
    return tools


def execute(env: Any, names: Sequence[str], call: dict[str, Any]) -> tuple[str, bool]:
    """Run one parsed call; returns (tool message content, succeeded).

    Only the tools `names` can run: the name is looked up, never evaluated. The arguments come from a model, so
    a call can break a tool in ways no tool checks for (a year-9999 date overflows date arithmetic, a 400-digit
    quantity overflows a float, a deeply nested value exhausts the recursion limit in a `repr`). Whatever
    `Exception` the tool raises is the call's failure, never the caller's: like TRL's tool loop, the model gets
    `{"error": ...}` as the tool result (ToolError's own message with its hint; else the exception's type and
    message) and the call counts as failed. KeyboardInterrupt and SystemExit still stop the run.
    """
    if call["name"] not in names:
        return _error(f"unknown tool {call['name']!r}"), False
    try:
        return getattr(env, call["name"])(**call["arguments"]), True
    except (ToolError, TypeError) as err:  # a rejected value, or missing/unexpected argument names
        return _error(_text(err)), False
    except Exception as err:  # noqa: BLE001 - any other failure of a tool on model-made arguments
        return _error(f"{call['name']} failed: {type(err).__name__}: {_text(err)}"), False


def _error(text: str) -> str:
    """A tool result reporting an error; long texts (an echoed huge argument) cut to `MAX_ERROR_CHARS`."""
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS - 15] + "... (truncated)"
    return json.dumps({"error": text})


def _text(err: BaseException) -> str:
    """`str(err)`, or the exception's type name when even that fails (a broken `__str__`)."""
    try:
        return str(err)
    except Exception:  # noqa: BLE001 - the error report must not fail in turn
        return type(err).__name__


def goal_reached(env: Any, names: Sequence[str], expected_steps: list[list[dict]], goal: dict[str, Any]) -> bool:
    """Task completion: the session made every expected call, except those a replay of the expected steps in a
    fresh session rejects, and the goal state holds.

    A catalog call the replay rejects is a gold trajectory's deliberate mistake (pattern recovery: the call the
    tool error then corrects). It is not required, so a model that gets the call right at once completes the task.
    """
    replay = type(env)()
    required = [c for step in expected_steps for c in step if c["name"] not in names or execute(replay, names, c)[1]]
    done = env.state["log"]
    calls_ok = all(any(same_call(d, c) for d in done) for c in required)
    state_ok = all(item in env.state.get(key, []) for key, items in goal.items() for item in items)
    return calls_ok and state_ok
