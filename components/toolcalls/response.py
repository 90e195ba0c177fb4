"""Parsing through the tokenizer: a model with its own tool-call syntax (Qwen3.5-style XML `<tool_call><function=...>`,
gpt-oss channels, Llama 3 JSON, ...) carries a transformers `response_template` on its tokenizer; its output is
parsed with `tokenizer.parse_response` and mapped to the project's calls, so the scorer's error classes
(unparsable, hallucinated_tool, unknown_argument, wrong_type, ...) come out as they do for the ChatML parser.

`parse_output(text, tok=...)` (components/toolcalls/parse.py) is the one entry point: it comes here when `native`
finds such a template, and reads the project's ChatML `<tool_call>{json}</tool_call>` itself otherwise.

The response parser is lenient where the project's scorer is strict (an unclosed call merges into the next, a
call-like block it cannot read becomes plain text), so one rule is added: every opening of a call in the
template's own syntax must yield one call, else the turn is unparsable.
"""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import TemplateError

from components.toolcalls.parse import Parsed, parse_json_calls

# The project's ChatML parser as a transformers response template (set on every tokenizer that gets the project's
# template, for TRL's GRPO tool loop); a tokenizer carrying it is read by `parse_output`'s own ChatML parser.
CHATML_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True, "content": "json",
                       "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}
_REGEX_SPECIAL = set(".^$*+?{}[]|()")
_QUANTIFIERS = set("*+?{")


def native(tok: Any) -> dict[str, Any] | None:
    """The tokenizer's own response template, or None (no template, or the project's ChatML one)."""
    template = getattr(tok, "response_template", None) if tok is not None else None
    return template if isinstance(template, dict) and template != CHATML_TEMPLATE else None


def grammar_fits(tok: Any) -> bool:
    """Whether `decoding.constrained` can apply to this tokenizer's model: the grammar writes the project's ChatML
    calls, so a model keeping its own tool syntax is decoded plain, and a warning says so (evaluation, serving and
    RL rollouts all ask here)."""
    if native(tok) is None:
        return True
    logging.getLogger(__name__).warning(
        "decoding.constrained: %s writes its own tool syntax (a response template of its own), so its turns are "
        "decoded without the ChatML tool-call grammar", type(tok).__name__)
    return False


def parse(text: str, tok: Any, template: dict[str, Any], require_end: bool,
          tools: list[dict[str, Any]] | None) -> Parsed:
    """Parse one generated assistant turn with the tokenizer's response template.

    Args:
        text: Decoded generation (special tokens kept).
        tok: The model's tokenizer (its end-of-turn token and its chat template's generation prompt are used).
        template: Its response template (`native(tok)`).
        require_end: Treat output without the tokenizer's end-of-turn token as truncated (unparsable).
        tools: The offered tools: casts arguments the syntax writes as bare text (XML values) by their schema;
            JSON arguments keep their own types, so a string where a number belongs is still `wrong_type`.
    """
    end = tok.eos_token
    if require_end and end and end not in text:
        return Parsed(text, [], "no end-of-turn token (output truncated)")
    body = text.split(end, 1)[0] if end else text
    field = template.get("fields", {}).get("tool_calls", {})
    typed_by_schema = field.get("content") not in (None, "json")
    try:
        message = tok.parse_response(body + (end or ""), template, prefix=_generation_prefix(tok),
                                     tools=tools if typed_by_schema else None)
    except (ValueError, KeyError, TypeError, RecursionError) as err:  # the template's parsers reject the text
        return Parsed(body, [], f"response template: {str(err).splitlines()[0]}")
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    read = parse_json_calls(message.get("tool_calls") or [])
    if read.unparsable:
        return Parsed(body, [], read.error)
    opened = _count_openings(body, field)
    if opened is not None and opened != len(read.calls):
        return Parsed(body, [], f"{opened} tool-call opening(s) in the model's syntax, {len(read.calls)} call(s) read")
    return Parsed(content.strip(), read.calls)


def _generation_prefix(tok: Any) -> str:
    """What the chat template writes before the model's first token (its anchor and any prefill such as an empty
    `<think></think>`): the parser must see it to read the turn as the template meant it."""
    try:
        return tok.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                       tokenize=False)
    except TemplateError:  # a template that refuses a lone user turn: parse without a prefix
        return ""


def _count_openings(body: str, field: dict[str, Any]) -> int | None:
    """How often the tool-call field's opening marker (its literal, or the literal start of its pattern) occurs;
    None when it has no literal start to count."""
    opens = field.get("open")
    if isinstance(opens, str):
        opens = [opens]
    if not opens and isinstance(field.get("open_pattern"), str):
        opens = [_literal_start(field["open_pattern"])]
    opens = [o for o in opens or [] if o]
    return sum(body.count(o) for o in opens) if opens else None


def _literal_start(pattern: str) -> str:
    """The literal text a regex starts with: `<tool_call>` of `<tool_call>\\s*<function=...`, `to=functions.` of
    `to=functions\\.(?P<name>...)`; empty when it starts with a group or class."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1].isalnum():  # \s, \d, \w ...: a class, not a literal
                break
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in _REGEX_SPECIAL:
            if ch in _QUANTIFIERS and out:  # the quantifier makes the previous character optional/repeated
                out.pop()
            break
        out.append(ch)
        i += 1
    return "".join(out)
