"""What every built-in simulator shares: the error type, stable hashing, name lookup with a correction hint,
the catalog built from an environment's methods, safe execution and the task-completion check.

A domain module keeps only its own data and tools; these helpers make "a tool rejects bad arguments with a
message the model can act on" and "the task is complete" mean the same in every domain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from components.toolcalls import same_call


class ToolError(ValueError):
    """A tool was called with arguments the simulator rejects."""


def stable_hash(*parts: Any) -> int:
    """A hash that is the same in every process (Python's `hash` of a string is salted per process)."""
    return int(hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def closest(value: str, choices: Sequence[str]) -> str | None:
    """The entry of `choices` fewest edits away from `value` (case-insensitive; see `edits`), if at most a third
    of its letters (at least one) differ: the hint a tool error gives for a misspelt name."""
    return _closest(str(value).strip().lower(), tuple(choices))


@lru_cache(maxsize=65536)  # generation asks again and again about the same few thousand misspellings
def _closest(typed: str, choices: tuple[str, ...]) -> str | None:
    best, best_edits = None, None
    # shortest length gap first: a gap is a lower bound on the edits, so once it exceeds the best count found no
    # later entry can beat or tie it (same result as min over all by (edits, entry), far fewer distances)
    for c in sorted(choices, key=lambda c: abs(len(c) - len(typed))):
        if best_edits is not None and abs(len(c) - len(typed)) > best_edits:
            break
        d = edits(typed, c.lower())
        if best_edits is None or (d, c) < (best_edits, best):
            best, best_edits = c, d
    return best if best is not None and best_edits <= max(1, len(best) // 3) else None


def edits(a: str, b: str) -> int:
    """Letters to insert, delete, replace or swap with a neighbour to turn `a` into `b` (optimal string
    alignment distance)."""
    d = [[i + j if not i * j else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


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

    Only the tools `names` can run: the name is looked up, never evaluated.
    """
    if call["name"] not in names:
        return json.dumps({"error": f"unknown tool {call['name']!r}"}), False
    try:
        return getattr(env, call["name"])(**call["arguments"]), True
    except (ToolError, TypeError) as err:
        return json.dumps({"error": str(err)}), False


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
