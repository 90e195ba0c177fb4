"""Glaive function-calling records (glaiveai/glaive-function-calling-v2 and its look-alikes): `{"id"?, "system": str,
"chat": str}`, the whole conversation as text.

- `system`: `SYSTEM: You are a helpful assistant with access to the following functions. Use them if required -`
  then the function schemas, JSON objects one after another; without functions (`... with no access to external
  functions.`) the record offers no tools. The system turn itself only says what tools there are, so it is dropped:
  the catalog becomes the episode's `tools`, which the chat template renders.
- `chat`: turns that start a line with `USER:`, `ASSISTANT:` or `FUNCTION RESPONSE:`; assistant turns end with
  `<|endoftext|>`. An assistant turn that calls holds `<functioncall> {"name": ..., "arguments": '{...}'}` (the
  arguments a JSON string in single quotes: a Python literal, read with `common.python_literal`, parsed, never
  executed; plain JSON is read too), text before it its content; the `FUNCTION RESPONSE` after it answers the call.
Errors name the record and rule: `glaive_turn` (text before the first role marker, or none), `tool_call_json`
(a call that is neither JSON nor a Python literal), and the shared ones (`role_order`, `known_tool`, ...).
"""

from __future__ import annotations

import re
from typing import Any

from components.data.importers.common import Record, Transcript, normalise_tools
from components.data.importers.hermes import json_values, literal

SOURCE = "glaive"
TURN = re.compile(r"(?:^|\n)[ \t]*(USER|ASSISTANT|FUNCTION RESPONSE):[ \t]?")
CALL = "<functioncall>"
END = "<|endoftext|>"


def convert(record: Record) -> tuple[list[dict[str, Any]], Transcript]:
    """The catalog and transcript of one Glaive record."""
    system = record.field("system", str)
    start = system.find("{")
    tools = normalise_tools(json_values(system[start:], record, "system") if start >= 0 else [], record)
    transcript = Transcript(record)
    for k, (who, text) in enumerate(_turns(record)):
        if who == "USER":
            transcript.say("user", text)
        elif who == "FUNCTION RESPONSE":
            transcript.answer(text)
        elif CALL in text:
            content, call = text.split(CALL, 1)
            transcript.call([literal(call.strip(), record, f"chat turn {k} {CALL}")], content.strip())
        else:
            transcript.say("assistant", text)
    return tools, transcript


def _turns(record: Record) -> list[tuple[str, str]]:
    """(marker, text) of each turn of `chat`, text stripped and without the end-of-text marker."""
    chat = record.field("chat", str)
    found = list(TURN.finditer(chat))
    if not found or chat[:found[0].start()].strip():
        raise record.error("glaive_turn", "chat must start with a USER:, ASSISTANT: or FUNCTION RESPONSE: turn")
    ends = [m.start() for m in found[1:]] + [len(chat)]
    return [(m.group(1), chat[m.end():end].replace(END, "").strip()) for m, end in zip(found, ends)]
