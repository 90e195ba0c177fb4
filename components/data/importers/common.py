"""Shared pieces of the importers: reading records, locating errors, building the canonical episode.

Each format module only turns one input record into a tool catalog and a `Transcript`; this module
reads the file (JSON lines, streamed by `components.data.inputs`, or one JSON array, bounded in size), names every
error by file, line (or record) and rule, checks the calls against the catalog with the project's one scorer,
and infers `pattern` and `expected.steps` from the assistant turns. JSON text inside fields is parsed with the
same strict rules as the lines (`components.data.inputs.loads`); Python literals (Hermes, xLAM) must be JSON values.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from components.data.episode import DataError, Episode, Pattern
from components.data.inputs import JsonError, iter_json_lines, loads, read_array, schema_error, starts_with_array
from components.toolcalls import parameters_problem, schema_errors, steps_of_messages, tool_index
from components.toolcalls.schema import short

EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Record:
    """One input record and where it came from (a line of a JSONL file or an item of a JSON array)."""

    path: Path
    number: int
    data: dict[str, Any]
    in_array: bool = False

    @property
    def record_id(self) -> str | None:
        rid = self.data.get("id")
        return None if rid is None or rid == "" else str(rid)

    def where(self) -> str:
        place = f"{self.path} record {self.number}" if self.in_array else f"{self.path}:{self.number}"
        return place + (f" (id {self.record_id})" if self.record_id else "")

    def error(self, rule: str, detail: str) -> DataError:
        """A `DataError` naming this record and the broken rule."""
        return DataError(where=self.where(), rule=rule, detail=detail)

    def field(self, key: str, kind: type | tuple[type, ...]) -> Any:
        """The value of a required field of the given type."""
        if key not in self.data:
            raise self.error("field", f"missing field {key!r}")
        value = self.data[key]
        if not isinstance(value, kind):
            raise self.error("field", f"field {key!r} is {type(value).__name__}, expected {_names(kind)}")
        return value

    def json_field(self, key: str, kind: type) -> Any:
        """A field that holds JSON text (or the already decoded value) of the given type."""
        value = self.field(key, (str, kind))
        if isinstance(value, str):
            value = self.decode(value, "json_field", f"field {key!r}")
        if not isinstance(value, kind):
            raise self.error("json_field", f"field {key!r} decodes to {type(value).__name__}, "
                                           f"expected {_names(kind)}")
        return value

    def decode(self, text: str, rule: str, what: str) -> Any:
        """JSON-decode `text` (`components.data.inputs.loads`); invalid JSON breaks `rule`, a limit its own rule."""
        try:
            return loads(text)
        except JsonError as err:
            if err.rule == "json":
                raise self.error(rule, f"{what} is not JSON ({err.detail.removeprefix('invalid JSON (')}") from None
            raise self.error(err.rule, f"{what}: {err.detail}") from None


class LiteralError(ValueError):
    """Text that is a Python literal but no JSON value (`{[1]: 2}`, a set, bytes, a complex number)."""


def python_literal(text: str) -> Any:
    """The JSON value a Python literal spells (`ast.literal_eval`: parsed, never executed).

    Raises:
        SyntaxError, ValueError: The text is no Python literal.
        LiteralError: It is one, but holds what JSON cannot (unhashable keys, sets, bytes, complex, NaN).
    """
    try:
        value = ast.literal_eval(text.strip())
    except TypeError as err:  # `{[1]: 2}`: building the dict fails
        raise LiteralError(f"not a JSON value ({err})") from None
    except (RecursionError, MemoryError):
        raise LiteralError("nested too deeply") from None
    try:
        return loads(json.dumps(value, allow_nan=False))  # tuples become lists; the rules of JSON lines apply
    except (TypeError, ValueError) as err:
        raise LiteralError(f"not a JSON value ({err})") from None


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def read_records(path: str | Path) -> Iterator[tuple[int, Record | DataError]]:
    """The records of a JSONL file (streamed line by line) or of a file holding one JSON array (how many datasets
    ship; parsed whole, so bounded by `components.data.inputs.MAX_ARRAY_BYTES`), one at a time, with their line (or
    record) number; a broken line or item comes as its `DataError`, for the caller to raise or set aside.

    Raises:
        DataError: The file is missing, empty, an array file is too big or not JSON (no record can be read).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(where=str(path), rule="file", detail="file not found")
    in_array = starts_with_array(path)
    empty = True
    for number, value in (_array_items(path) if in_array else iter_json_lines(path)):
        empty = False
        if isinstance(value, DataError):
            yield number, value
        elif not isinstance(value, dict):
            yield number, Record(path, number, {}, in_array).error("record_type", "a record must be a JSON object")
        else:
            yield number, Record(path, number, value, in_array)
    if empty:
        raise DataError(where=str(path), rule="non_empty", detail="the file holds no record")


def _array_items(path: Path) -> Iterator[tuple[int, Any]]:
    """(record number, item) of a JSON-array file; each item is dropped once the caller moves on."""
    items = read_array(path)
    items.reverse()  # pop from the end: the list frees each item as it is handed out
    number = 0
    while items:
        number += 1
        yield number, items.pop()


def turns(record: Record) -> list[tuple[str, str]]:
    """(`from`, `value`) pairs of a ShareGPT-style `conversations` list (ShareGPT, Hermes), each checked to be text."""
    out = []
    for k, turn in enumerate(record.field("conversations", list)):
        if not (isinstance(turn, dict) and isinstance(turn.get("from"), str) and isinstance(turn.get("value"), str)):
            raise record.error("turn", f"conversations[{k}] needs string 'from' and 'value'")
        out.append((turn["from"], turn["value"]))
    return out


# ------------------------------------------------------------------------------------------ tools


def normalise_tools(raw: list[Any], record: Record) -> list[dict[str, Any]]:
    """OpenAI function schemas from `{"type": "function", "function": {...}}` or bare `{"name", ...}` items.

    A tool without `parameters` (or with `null`) takes no arguments; otherwise `parameters` must pass
    `toolcalls.parameters_problem` (a JSON Schema object, not too deep, local `$ref`s only, RE2 patterns), since
    the scorer validates every call against it; the error names its rule.
    """
    tools = []
    for k, item in enumerate(raw):
        fn = item.get("function", item) if isinstance(item, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise record.error("tool_schema", f"tool {k} has no string 'name'")
        params = EMPTY_PARAMETERS if fn.get("parameters") is None else fn["parameters"]
        problem = parameters_problem(params)
        if problem:
            raise record.error(problem[0], f"tool {short(fn['name'])}: {problem[1]}")
        description = str(fn.get("description") or "")
        tools.append({"type": "function", "function": {"name": fn["name"], "description": description,
                                                       "parameters": params}})
    return tools


# ------------------------------------------------------------------------------------- transcript


@dataclass
class Transcript:
    """OpenAI chat messages built turn by turn; tool results are paired with the calls they answer."""

    record: Record
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # calls of the last assistant turn not yet answered
    steps: int = 0

    def say(self, role: str, content: str | None) -> None:
        """A system, user or plain assistant message."""
        self._settled(role)
        self.messages.append({"role": role, "content": content})

    def call(self, calls: list[Any], content: str | None = "", ids: list[str | None] | None = None) -> None:
        """An assistant turn calling tools; `calls` are `{"name", "arguments"}` (arguments may be JSON text)."""
        self._settled("assistant")
        made = [self._tool_call(c, (ids or [None] * len(calls))[j] or f"call_{self.steps}_{j}")
                for j, c in enumerate(calls)]
        self.messages.append({"role": "assistant", "content": content, "tool_calls": made})
        self.pending, self.steps = list(made), self.steps + 1

    def answer(self, content: str, call_id: str | None = None) -> None:
        """A tool result: for the call with `call_id`, or for the next unanswered call."""
        if not self.pending:
            raise self.record.error("role_order", f"tool result {_short(content)!r} answers no pending call")
        match = next((c for c in self.pending if c["id"] == call_id), None) if call_id else self.pending[0]
        if match is None:
            raise self.record.error("role_order", f"tool result for {call_id!r} answers no call of the preceding "
                                                  "assistant turn")
        self.pending.remove(match)
        self.messages.append({"role": "tool", "tool_call_id": match["id"], "name": match["function"]["name"],
                              "content": content})

    def answer_all(self, results: list[str]) -> None:
        """Tool results in the order of the pending calls; their number must match."""
        if len(results) != len(self.pending):
            raise self.record.error("tool_response", f"{len(results)} tool result(s) for {len(self.pending)} "
                                                     "pending call(s)")
        for result in results:
            self.answer(result)

    def _settled(self, role: str) -> None:
        if self.pending:
            names = [c["function"]["name"] for c in self.pending]
            raise self.record.error("role_order", f"a {role} message comes before the results of calls {names}")

    def _tool_call(self, call: Any, call_id: str) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise self.record.error("tool_call", f"a tool call needs a string 'name': {_short(call)!r}")
        args = call.get("arguments", {})
        if isinstance(args, str):
            args = self.record.decode(args, "arguments_json", f"tool call {call['name']!r} arguments")
        if not isinstance(args, dict):
            raise self.record.error("arguments_json", f"tool call {call['name']!r} arguments are not a JSON object")
        return {"type": "function", "id": call_id, "function": {"name": call["name"], "arguments": args}}


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


# ---------------------------------------------------------------------------------------- episode


def infer_pattern(messages: list[dict[str, Any]], steps: list[list[dict[str, Any]]]) -> Pattern:
    """The episode's pattern, from its turns and call steps.

    More than one user turn is `multi_turn`; no call is `irrelevance`; a later step after a tool result
    that reports an error is `recovery`; several steps are a `chain`; one step of several calls is `parallel`.
    """
    if sum(m["role"] == "user" for m in messages) > 1:
        return "multi_turn"
    if not steps:
        return "irrelevance"
    if len(steps) > 1 and any(is_error(m["content"]) for m in messages if m["role"] == "tool"):
        return "recovery"
    if len(steps) > 1:
        return "chain"
    return "parallel" if len(steps[0]) > 1 else "single"


def is_error(content: Any) -> bool:
    """A tool result that reports an error: a JSON object with an `error` key."""
    try:
        obj = loads(content) if isinstance(content, str) else None
    except JsonError:  # text, or JSON past the limits: no error object either way
        return False
    return isinstance(obj, dict) and "error" in obj


def build_episode(record: Record, source: str, domain: str, tools: list[dict[str, Any]],
                  transcript: Transcript) -> Episode:
    """The canonical episode of one record; every call is checked against the record's own catalog.

    Raises:
        DataError: A call names a tool outside the catalog or breaks its schema, the turns are out of
            order, or the record breaks the Episode model.
    """
    messages = transcript.messages
    first = next((m["role"] for m in messages if m["role"] != "system"), None)
    if first != "user":
        raise record.error("role_order", f"the first non-system message is {first or 'missing'}, not user")
    if messages[-1]["role"] != "assistant":
        raise record.error("role_order", f"the last message is {messages[-1]['role']}, not assistant")
    steps = steps_of_messages(messages)
    _check_calls(record, steps, tool_index(tools))
    rid = record.record_id or f"{source}-{record.path.stem}-{record.number}"
    try:
        return Episode.model_validate({"id": rid, "domain": domain, "source": source,
                                       "pattern": infer_pattern(messages, steps), "tools": tools,
                                       "messages": [{k: v for k, v in m.items() if v is not None} for m in messages],
                                       "expected": {"steps": steps}})
    except ValidationError as err:
        raise schema_error(err, record.where()) from None


def _check_calls(record: Record, steps: list[list[dict[str, Any]]], index: dict[str, dict[str, Any]]) -> None:
    """Every call names a catalog tool and fits its schema.

    The validate stage's `known_tool` and `arguments_match_schema` rules, caught here where the input
    line is still known.
    """
    for k, step in enumerate(steps):
        for call in step:
            errors = schema_errors(call, index)
            if errors:
                kind, detail = errors[0]
                rule = "known_tool" if kind == "hallucinated_tool" else "arguments_match_schema"
                raise record.error(rule, f"step {k}: {kind}: {detail}")


def fit_catalog(record: Record, tools: list[dict[str, Any]], catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A record's tools in a bring-your-own domain: a record that lists none gets the whole catalog; one that
    lists its own may use only catalog tools (their schemas as the record gives them)."""
    if not tools:
        return catalog
    names = {t["function"]["name"] for t in catalog}
    for tool in tools:
        if tool["function"]["name"] not in names:
            raise record.error("catalog", f"tool {tool['function']['name']!r} is not in the domain's tool catalog")
    return tools


Convert = Callable[[Record], tuple[list[dict[str, Any]], Transcript]]
Reject = Callable[[DataError, Path, int], None]  # a refused record: its error, file and line (or record number)


def import_records(path: str | Path, source: str, domain: str, convert: Convert,
                   catalog: list[dict[str, Any]] | None = None, reject: Reject | None = None) -> Iterator[Episode]:
    """Read `path` and turn every record into an episode with `convert` (catalog + transcript), one at a time;
    with a domain `catalog`, see `fit_catalog`.

    Args:
        reject: None (strict): the first bad record raises. Else it is given each bad record's error, and the
            import goes on (`--skip-invalid`).

    Raises:
        DataError: The first bad record, naming file, line (or record) and rule; ids must be unique. File-level
            errors (missing, empty, an array file too big) raise even with `reject`.
    """
    path = Path(path)
    return import_rows(read_records(path), path, source, domain, convert, catalog, reject)


def import_rows(rows: Iterable[tuple[int, Record | DataError]], path: Path, source: str, domain: str,
                convert: Convert, catalog: list[dict[str, Any]] | None = None,
                reject: Reject | None = None) -> Iterator[Episode]:
    """`import_records` of records read elsewhere (a file's, or a Hugging Face dataset's rows: `importers.hub`);
    `path` names where they came from (the records' own `path`), for `reject`."""
    seen: set[str] = set()
    for number, record in rows:
        try:
            if isinstance(record, DataError):
                raise record
            episode = _episode(record, source, domain, convert, catalog)
            if episode.id in seen:
                raise record.error("unique_id", f"id {episode.id!r} is used by an earlier record")
        except DataError as err:
            if reject is None:
                raise
            reject(err, path, number)
            continue
        seen.add(episode.id)
        yield episode


def _episode(record: Record, source: str, domain: str, convert: Convert,
             catalog: list[dict[str, Any]] | None) -> Episode:
    try:
        tools, transcript = convert(record)
    except (TypeError, AttributeError, KeyError, IndexError) as err:
        # The converters check the shapes they know; a value of a shape nobody foresaw (a dict where a name
        # goes) is still this record's fault, and must be named as such, never escape as a traceback.
        raise record.error("record_shape", f"a field has an unexpected type or shape "
                                           f"({type(err).__name__}: {short(str(err), 120)})") from None
    if catalog is not None:
        tools = fit_catalog(record, tools, catalog)
    return build_episode(record, source, domain, tools, transcript)

