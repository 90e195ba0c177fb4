"""ShareGPT tool records (glaive / LLaMA-Factory shape).

`{"id"?, "conversations": [{"from": "system|human|gpt|function_call|observation", "value": "..."}],
"system"?: "...", "tools": "<JSON list of function schemas>"}`; a non-empty `system` field is the first
message. A `function_call` value is JSON `{"name", "arguments"}`, or a list of them for parallel calls;
the `observation` turns that follow answer the calls in order (one observation holding a JSON list of
as many results as calls is split into one result per call).
"""

from __future__ import annotations

import json
from typing import Any

from components.data.importers.common import Record, Transcript, normalise_tools, turns
from components.data.inputs import JsonError, loads

SOURCE = "sharegpt"
TEXT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
CALL, RESULT = "function_call", ("observation", "tool")


def convert(record: Record) -> tuple[list[dict[str, Any]], Transcript]:
    """The catalog and transcript of one ShareGPT record."""
    tools = normalise_tools(record.json_field("tools", list) if "tools" in record.data else [], record)
    transcript = Transcript(record)
    if record.data.get("system"):
        transcript.say("system", record.field("system", str))
    results: list[str] = []
    for k, (who, value) in enumerate(turns(record)):
        if who in RESULT:
            results.append(value)
            continue
        _flush(transcript, results)
        if who == CALL:
            calls = record.decode(value, "function_call_json", f"conversations[{k}] function_call")
            transcript.call(calls if isinstance(calls, list) else [calls])
        elif who in TEXT_ROLES:
            transcript.say(TEXT_ROLES[who], value)
        else:
            raise record.error("role", f"conversations[{k}]: unknown 'from' {who!r}; "
                                       f"known: {sorted([*TEXT_ROLES, CALL, *RESULT])}")
    _flush(transcript, results)
    return tools, transcript


def _flush(transcript: Transcript, results: list[str]) -> None:
    """Answer the pending calls with the observations collected since the last call, then forget them."""
    if not results:
        return
    if len(results) == 1 and len(transcript.pending) > 1:
        results[:] = _split(results[0], len(transcript.pending))
    transcript.answer_all(results)
    results.clear()


def _split(value: str, n: int) -> list[str]:
    """One observation for n parallel calls: a JSON list of n results becomes n results."""
    try:
        items = loads(value)
    except JsonError:  # text (or JSON past the limits): one result as given
        return [value]
    if not isinstance(items, list) or len(items) != n:
        return [value]
    return [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items]
