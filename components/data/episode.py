"""The canonical episode record and its JSON-lines files.

An episode is one JSON object per line: id, domain, source, pattern, tools (OpenAI function schemas),
messages (OpenAI chat messages; tool-call arguments are JSON objects, never strings) and expected
(the acceptable calls per assistant step, dependency edges between steps, and the goal state).

Reads/writes: any episodes JSONL file. Reads go through `components.data.inputs` (the one streaming JSONL reader
and its rules, e.g. `json_depth`, `duplicate_key`; `DataError` lives there); writes through
`components.data.fileio` (atomic: the previous good version stays intact until the new one is complete).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components.data.fileio import gc_paused, write_lines
from components.data.inputs import DataError, iter_json_lines, parse, schema_error

__all__ = ["DataError"]  # defined in components.data.inputs (the reader); imported from here by most callers

Pattern = Literal["single", "parallel", "chain", "recovery", "irrelevance", "multi_turn"]
Role = Literal["system", "user", "assistant", "tool"]


_PUNCTUATION = re.compile(r"[^\w\s]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionSchema(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any]


class Tool(_Strict):
    type: Literal["function"] = "function"
    function: FunctionSchema


class FunctionCall(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any]


class ToolCall(_Strict):
    type: Literal["function"] = "function"
    id: str | None = None
    function: FunctionCall


class Message(_Strict):
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class Call(_Strict):
    """One expected call: the tool name and its exact arguments, optionally every acceptable value."""

    name: str
    arguments: dict[str, Any]
    accept: dict[str, list[Any]] | None = Field(
        default=None, description="BFCL-style acceptable values per argument ('' among them: may be omitted); "
                                  "when set, the scorer checks against it instead of `arguments`")


class Expected(_Strict):
    steps: list[list[Call]] = Field(description="acceptable calls per assistant step; [] for a no-call answer")
    depends_on: list[tuple[int, int]] = Field(default_factory=list, description="(later step, earlier step)")
    goal: dict[str, Any] = Field(default_factory=dict, description="simulator state the task must reach")
    outputs: list[str] = Field(default_factory=list, description="facts from tool results the answers must state "
                                                                 "(tau-bench's outputs; see toolcalls.states_outputs)")


class Episode(_Strict):
    id: str = Field(min_length=1)
    domain: str
    source: str
    pattern: Pattern
    split: Literal["train", "val", "test"] | None = None
    tools: list[Tool]
    messages: list[Message] = Field(min_length=2)
    expected: Expected

    def tool_dicts(self) -> list[dict[str, Any]]:
        return [t.model_dump(exclude_none=True) for t in self.tools]

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]

    def sft_row(self, system_prompt: str) -> dict[str, Any]:
        """The episode as a conversational SFT row (its reference trajectory after the system turn); `tools` as a
        JSON string so Arrow does not unify heterogeneous schemas."""
        return {"id": self.id, "pattern": self.pattern,
                "messages": [{"role": "system", "content": system_prompt}, *self.message_dicts()],
                "tools": json.dumps(self.tool_dicts())}

    def prompt_messages(self) -> list[dict[str, Any]]:
        """Messages before the first assistant turn: what the model sees first."""
        msgs = self.message_dicts()
        first = next(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        return msgs[:first]


def user_text(episode: Episode) -> str:
    """The episode's user turns lowercased, punctuation stripped, whitespace collapsed: how generation keeps
    requests unique and build's leakage check compares them across splits."""
    text = " ".join(m.content or "" for m in episode.messages if m.role == "user")
    return " ".join(_PUNCTUATION.sub("", text.lower()).split())


def episode_json_schema() -> dict[str, Any]:
    """JSON Schema of one episode record (for users writing their own importers)."""
    return Episode.model_json_schema()


def read_episodes(path: str | Path) -> list[Episode]:
    """Read and parse a JSONL file of episodes.

    Raises:
        DataError: naming the file, the line and the rule broken (encoding, JSON, record schema).
    """
    with gc_paused():
        return list(iter_episodes(path))


def iter_episodes(path: str | Path) -> Iterator[Episode]:
    """The episodes of a JSONL file one at a time (`components.data.inputs.iter_json_lines`); the first bad line raises.

    Raises:
        DataError: naming the file, the line and the rule broken; rule `non_empty` for a file without episodes.
    """
    empty = True
    for lineno, value in iter_json_lines(path):
        if isinstance(value, DataError):
            raise value
        empty = False
        yield episode_of(record_object(value, f"{path}:{lineno}"), f"{path}:{lineno}")
    if empty:
        raise DataError(where=str(path), rule="non_empty", detail="the file holds no episode")


def parse_line(raw: bytes, path: Path, lineno: int) -> Episode:
    """The episode on one line of `path`.

    Raises:
        DataError: "<path>:<line>[ (id X)]: rule '<rule>': <detail>": a rule of `components.data.inputs.parse` (`utf8`,
            `json`, `json_depth`, ...) or `record_schema`.
    """
    where = f"{path}:{lineno}"
    return episode_of(record_object(parse(raw, where), where), where)


def record_object(value: Any, where: str) -> dict[str, Any]:
    """`value` when it is a JSON object; DataError (rule `record_schema`) naming `where` otherwise."""
    if not isinstance(value, dict):
        raise DataError(where=where, rule="record_schema", detail="a record must be a JSON object")
    return value


def episode_of(obj: dict[str, Any], where: str) -> Episode:
    """The episode a record holds; DataError (rule `record_schema`, the first error) naming `where` and the
    record's id otherwise."""
    try:
        return Episode.model_validate(obj)
    except ValidationError as err:
        raise schema_error(err, f"{where} (id {obj.get('id', '?')})") from None


def write_episodes(path: str | Path, episodes: Iterable[Episode]) -> int:
    """Write episodes atomically, each as pydantic's compact JSON (NaN and infinities as null, big ints exact);
    returns how many were written.

    pydantic serialises in Rust, in about a third of the time `model_dump` + `json.dumps` take (6-9 s less for
    100k episodes); the values read back are the same.
    """
    return write_lines(path, (e.model_dump_json(exclude_none=True) for e in episodes))


