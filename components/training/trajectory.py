"""A good trajectory taken apart (`Case`), what an episode set offers to realistic mistakes (`Pool`), and the edits
that make a trajectory with a mistake out of it: one step's calls changed, steps dropped, a step repeated or moved.

Only the assistant's turns change. A changed call keeps the tool result of the call it replaced (the trajectory is
not re-run: a bring-your-own catalog has no simulator), a repeated call repeats its result, a dropped call drops its
result, an added call gets what a last call of its tool got in another episode, rebound to the values it passes
(`breakers._outcome`), and the assistant's texts stay as they were (an answer given without the calls behind it
states facts it never fetched: the hallucinated answer of a model that skipped a step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, Any]]
Call = dict[str, Any]


@dataclass
class Case:
    """A good trajectory taken apart: what breakers read.

    Attributes:
        rest: The messages after the prompt (the chosen completion).
        blocks: (start, end) in `rest` of each call step: its assistant turn and the tool results after it.
        steps: The calls of each step, as the trajectory makes them.
        tools: `toolcalls.tool_index` of the episode's catalog.
        user: The user turns, lowercased (where a model finds the values it passes).
    """

    rest: Messages
    blocks: list[tuple[int, int]]
    steps: list[list[Call]]
    tools: dict[str, dict[str, Any]]
    user: str

    def failed(self, i: int) -> bool:
        """Whether every tool result of step i is an error (a recovery episode's expected first try)."""
        start, end = self.blocks[i]
        return end > start + 1 and all(_is_error(m.get("content")) for m in self.rest[start + 1:end])

    def sound(self) -> list[int]:
        """The steps whose calls succeeded: the ones a call-level mistake goes into."""
        return [i for i in range(len(self.steps)) if not self.failed(i)]


@dataclass
class Pool:
    """What the episode set offers to realistic mistakes.

    Attributes:
        values: (tool, argument) -> the distinct values its successful calls pass, in a stable order.
        replies: The assistant's answers of no-call episodes (a refusal, a question back).
        outcomes: tool -> (arguments, [tool result, final answer]) of the episodes whose last step is one successful
            call of it (a lone call, a booking after a search).
    """

    values: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    outcomes: dict[str, list[tuple[dict[str, Any], Messages]]] = field(default_factory=dict)


def decoded(content: Any) -> Any:
    """A tool result's content decoded (None when it is no JSON)."""
    try:
        return json.loads(content) if isinstance(content, str) else None
    except (ValueError, RecursionError):
        return None


def _is_error(content: Any) -> bool:
    value = decoded(content)
    return isinstance(value, dict) and "error" in value


def call_message(calls: list[Call], ids: list[str]) -> dict[str, Any]:
    """An assistant turn making `calls`, with tool-call ids `ids`."""
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "id": i, "function": {"name": c["name"], "arguments": c["arguments"]}}
                           for c, i in zip(calls, ids)]}


def with_step(case: Case, i: int, calls: list[Call], sources: list[int] | None = None) -> Messages:
    """`case.rest` with step i making `calls`; call j takes the id and tool result of original call `sources[j]`
    (default: its own position)."""
    start, end = case.blocks[i]
    old_calls = case.rest[start]["tool_calls"]
    results = case.rest[start + 1:end]
    sources = list(range(len(calls))) if sources is None else sources
    ids = [old_calls[s].get("id") or f"call_{i}_{j}" for j, s in enumerate(sources)]
    tool_msgs = [{**results[s], "tool_call_id": ids[j], "name": calls[j]["name"]}
                 for j, s in enumerate(sources) if s < len(results)]
    turn = {**case.rest[start], **call_message(calls, ids), "content": case.rest[start].get("content", "")}
    return [*case.rest[:start], turn, *tool_msgs, *case.rest[end:]]


def without_steps(case: Case, drop: set[int]) -> Messages:
    """`case.rest` without the assistant turns (and their results) of the steps in `drop`."""
    gone = {k for i in drop for k in range(*case.blocks[i])}
    return [m for k, m in enumerate(case.rest) if k not in gone]


def block(case: Case, i: int, suffix: str = "") -> Messages:
    """A copy of step i's assistant turn and tool results, its tool-call ids ending in `suffix`."""
    start, end = case.blocks[i]
    msgs = json.loads(json.dumps(case.rest[start:end]))
    for m in msgs:
        for tc in m.get("tool_calls") or []:
            tc["id"] = f"{tc.get('id') or 'call'}{suffix}"
        if m.get("tool_call_id"):
            m["tool_call_id"] += suffix
    return msgs

