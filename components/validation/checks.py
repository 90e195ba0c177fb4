"""The per-episode rules of the validate stage: plain functions `Episode -> what breaks the rule, or None`.

`validation.rules` names them in its table (`role_order`, `tool_result`, `tool_schema`, `dependency_order`);
`validation.frames` puts their verdicts into the episode frame's columns that the GX suites check; build and the
importers call them through `validation.rules.episode_problems`. `user_text_key` is the split check's key.
"""

from __future__ import annotations

import hashlib
from typing import Any

from components.data.episode import Episode, Tool, user_text
from components.toolcalls import parameters_problem, same_call


def role_problem(episode: Episode) -> str | None:
    """What breaks the speaker order of an episode (user first, assistant last), or None."""
    msgs = episode.messages
    first = next((m for m in msgs if m.role != "system"), None)
    if first is None or first.role != "user":
        return f"the first non-system message is {first.role if first else 'missing'}, not user"
    if msgs[-1].role != "assistant":
        return f"the last message is {msgs[-1].role}, not assistant"
    return None


def tool_result_problem(episode: Episode) -> str | None:
    """What breaks the call/result pairing of an episode, or None when every call before the final turn gets
    exactly one result."""
    calls: list = []  # calls of the latest assistant turn
    open_calls: list = []  # those of them not answered yet
    for i, msg in enumerate(episode.messages):
        if msg.role == "tool":
            problem = _answer(i, msg, calls, open_calls)
            if problem:
                return problem
            continue
        if open_calls:
            return f"message {i}: {_names(open_calls)} got no tool result before this {msg.role} message"
        calls = list(msg.tool_calls or []) if msg.role == "assistant" else []
        open_calls = list(calls)
    return None  # calls of the final turn may stay unanswered: call-only targets (BFCL, xLAM) end there


def _answer(i: int, msg: Any, calls: list, open_calls: list) -> str | None:
    """Match tool message `i` to an open call (by id, else by name, else in order); remove it from `open_calls`."""
    if not calls:
        return f"message {i}: tool message without a preceding assistant tool call"
    if msg.tool_call_id is not None:
        call = next((c for c in open_calls if c.id == msg.tool_call_id), None)
        if call is None:
            again = any(c.id == msg.tool_call_id for c in calls)
            return (f"message {i}: tool_call_id {msg.tool_call_id!r} "
                    + ("is answered twice" if again else "answers no call of the preceding assistant turn"))
    else:
        call = next((c for c in open_calls if msg.name in (None, c.function.name)), None)
        if call is None:
            return f"message {i}: tool result {msg.name or ''} answers no open call of the preceding assistant turn"
    if msg.name is not None and msg.name != call.function.name:
        return f"message {i}: tool result named {msg.name!r} answers a call to {call.function.name!r}"
    open_calls.remove(call)
    return None


def _names(calls: list) -> str:
    return "call(s) " + ", ".join(repr(c.id or c.function.name) for c in calls)


def dependency_problem(episode: Episode) -> str | None:
    """What breaks `expected.depends_on` (bad step indexes, or a step called before one it depends on)."""
    steps, edges = episode.expected.steps, episode.expected.depends_on
    for later, earlier in edges:
        if not 0 <= earlier < later < len(steps):
            return f"depends_on ({later}, {earlier}) needs 0 <= earlier < later < {len(steps)} (the number of steps)"
    if not edges:
        return None
    turns = [[{"name": tc.function.name, "arguments": tc.function.arguments} for tc in m.tool_calls]
             for m in episode.messages if m.role == "assistant" and m.tool_calls]
    turn_of = [next((t for t, made in enumerate(turns) if any(same_call(c, s.model_dump()) for c in made
                                                               for s in step)), None) for step in steps]
    for later, earlier in edges:
        if None not in (turn_of[later], turn_of[earlier]) and turn_of[later] <= turn_of[earlier]:
            return (f"step {later} depends on step {earlier}, but the conversation makes its call in turn "
                    f"{turn_of[later]}, not after turn {turn_of[earlier]}")
    return None


_SCHEMA_VERDICTS: dict[int, tuple[list[Tool], str | None]] = {}  # id(catalog) -> (that catalog, its verdict)


def tool_schema_problem(episode: Episode) -> str | None:
    """What makes a tool's parameters unusable (`toolcalls.parameters_problem`, its rule named), or None.

    Catalogs are shared (`SharedCatalogs`), so the verdict is kept per catalog list; the entry holds the list
    itself, so its id cannot be reused by another list while the entry lives.
    """
    cached = _SCHEMA_VERDICTS.get(id(episode.tools))
    if cached is not None and cached[0] is episode.tools:
        return cached[1]
    verdict = next((f"{p[0]}: tool {t.function.name!r}: {p[1]}" for t in episode.tools
                    if (p := parameters_problem(t.function.parameters))), None)
    if len(_SCHEMA_VERDICTS) >= 4096:
        _SCHEMA_VERDICTS.clear()
    _SCHEMA_VERDICTS[id(episode.tools)] = (episode.tools, verdict)
    return verdict


def user_text_key(episode: Episode) -> str:
    """Hash of the episode's user turns, lowercased, punctuation stripped and whitespace collapsed."""
    return hashlib.blake2b(user_text(episode).encode(), digest_size=8).hexdigest()
