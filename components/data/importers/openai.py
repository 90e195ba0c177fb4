"""OpenAI chat records: `{"id"?, "messages": [...], "tools": [...]}`, the fine-tuning and chat-completions shape.

Assistant `tool_calls` carry `arguments` as JSON text, decoded here; `tool` messages answer a call by
`tool_call_id` (or, without one, the next unanswered call). Content given as a list of parts keeps its
text parts. The `developer` role is read as `system`.
"""

from __future__ import annotations

from typing import Any

from components.data.importers.common import Record, Transcript, normalise_tools

SOURCE = "openai"
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


def convert(record: Record) -> tuple[list[dict[str, Any]], Transcript]:
    """The catalog and transcript of one OpenAI chat record."""
    tools = normalise_tools(record.field("tools", list) if "tools" in record.data else [], record)
    transcript = Transcript(record)
    for k, message in enumerate(record.field("messages", list)):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or message["role"] not in ROLES:
            role = message.get("role") if isinstance(message, dict) else message
            raise record.error("role", f"message {k}: unknown role {role!r}; known: {sorted(ROLES)}")
        role, content = ROLES[message["role"]], _text(message.get("content"), record, k)
        if role == "tool":
            transcript.answer(content or "", message.get("tool_call_id"))
        elif role == "assistant" and message.get("tool_calls"):
            calls = message["tool_calls"]
            transcript.call([c.get("function") if isinstance(c, dict) else c for c in calls], content,
                            [c.get("id") if isinstance(c, dict) else None for c in calls])
        else:
            transcript.say(role, content)
    return tools, transcript


def _text(content: Any, record: Record, k: int) -> str | None:
    """Message content as text: a string, None, or the text parts of a list of content parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    raise record.error("content", f"message {k}: content must be text or a list of content parts")
