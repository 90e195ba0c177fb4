"""Hermes function-calling records (NousResearch/hermes-function-calling-v1).

`{"id"?, "conversations": [{"from": "system|human|gpt|tool", "value": "..."}]}`: the system turn lists the
tools inside `<tools>[...]</tools>`; gpt turns call them with `<tool_call>{...}</tool_call>` blocks; tool
turns answer with `<tool_response>...</tool_response>` blocks, in call order. The system prompt's own
wording ("within <tools></tools> XML tags") holds an empty block: the last non-empty one is the catalog.
The dataset writes many blocks as Python literals (single quotes), so a block that is not JSON is read
as a Python literal (`common.python_literal`: parsed, never executed; it must hold a JSON value, rule `literal`). The system turn that holds the tools is dropped: its
catalog becomes the episode's `tools`, which the chat template renders with its own instructions.
"""

from __future__ import annotations

import json
import re
from typing import Any

from components.data.importers.common import LiteralError, Record, Transcript, normalise_tools, python_literal, turns
from components.data.inputs import JsonError, loads, raw_decode
from components.toolcalls import CLOSE, OPEN

SOURCE = "hermes"
TOOLS = re.compile(r"<tools>(.*?)</tools>", re.DOTALL)
CALL = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.DOTALL)
RESPONSE = re.compile(r"<tool_response>(.*?)</tool_response>", re.DOTALL)
TEXT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
_NEITHER = object()  # what `_loads` returns for text that is neither JSON nor a Python literal


def convert(record: Record) -> tuple[list[dict[str, Any]], Transcript]:
    """The catalog and transcript of one Hermes record."""
    tools: list[dict[str, Any]] = []
    transcript = Transcript(record)
    for k, (who, value) in enumerate(turns(record)):
        where = f"conversations[{k}]"
        if who == "system" and (blocks := [b for b in TOOLS.findall(value) if b.strip()]):
            tools = normalise_tools(_tool_list(blocks[-1], record, where), record)
        elif who == "gpt" and OPEN in value:
            _check_balanced(value, OPEN, CLOSE, record, where)
            calls = [literal(block, record, f"{where} tool_call") for block in CALL.findall(value)]
            transcript.call(calls, CALL.sub("", value).strip())
        elif who == "tool":
            _check_balanced(value, "<tool_response>", "</tool_response>", record, where)
            transcript.answer_all([_result(block, record, where) for block in RESPONSE.findall(value)])
        elif who in TEXT_ROLES:
            transcript.say(TEXT_ROLES[who], value)
        else:
            raise record.error("role", f"{where}: unknown 'from' {who!r}; known: {sorted([*TEXT_ROLES, 'tool'])}")
    return tools, transcript


def literal(text: str, record: Record, what: str) -> Any:
    """A JSON value, or a Python literal (the dataset's single-quoted dicts; Glaive's quoted arguments too)."""
    value = _loads(text, record, what)
    if value is _NEITHER:
        raise record.error("tool_call_json", f"{what} is neither JSON nor a Python literal: {text.strip()[:60]!r}")
    return value


def _loads(text: str, record: Record, what: str) -> Any:
    """JSON, else a Python literal; `_NEITHER` when it is neither.

    Raises:
        DataError: JSON that breaks a limit of `components.data.inputs.loads` (its rule), or a Python literal that is
            no JSON value (rule `literal`).
    """
    try:
        return loads(text)
    except JsonError as err:
        if err.rule != "json":
            raise record.error(err.rule, f"{what}: {err.detail}") from None
    try:
        return python_literal(text)
    except LiteralError as err:
        raise record.error("literal", f"{what}: a Python literal that is {err}") from None
    except (ValueError, SyntaxError):
        return _NEITHER


def _tool_list(text: str, record: Record, where: str) -> list[Any]:
    """The `<tools>` block: a list of schemas, or schemas one after another (the Hermes prompt template)."""
    value = _loads(text, record, f"{where} <tools>")
    if value is _NEITHER:
        value = json_values(text, record, f"{where} <tools>")
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise record.error("tool_schema", f"{where}: <tools> must hold function schemas")
    return value


def json_values(text: str, record: Record, what: str) -> list[Any]:
    """Consecutive JSON values, e.g. one schema per line (Hermes' `<tools>`, Glaive's system prompt)."""
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        try:
            value, pos = raw_decode(text, pos)
        except JsonError as err:
            if err.rule != "json":
                raise record.error(err.rule, f"{what}: {err.detail}") from None
            raise record.error("tool_schema", f"{what} is not JSON ({err.detail})") from None
        out.append(value)
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
    return out


def _result(block: str, record: Record, where: str) -> str:
    """One tool response as JSON text when it is JSON or a literal, else as the text given."""
    value = _loads(block, record, f"{where} tool_response")
    return block.strip() if value is _NEITHER else json.dumps(value, ensure_ascii=False)


def _check_balanced(value: str, open_tag: str, close_tag: str, record: Record, where: str) -> None:
    if value.count(open_tag) != value.count(close_tag):
        raise record.error("unbalanced_tags", f"{where}: {value.count(open_tag)} {open_tag} but "
                                              f"{value.count(close_tag)} {close_tag}")
