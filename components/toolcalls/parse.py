"""Parsers of model output: the project template, OpenAI tool calls, JSON calls and BFCL's Python syntax (see the
package docstring of `components.toolcalls`). Output is parsed, never executed."""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any

OPEN, CLOSE, END = "<tool_call>", "</tool_call>", "<|im_end|>"
_BLOCK = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*" + re.escape(CLOSE), re.DOTALL)
_FENCE = re.compile(r"\A```[\w-]*\s*(.*?)\s*```\Z", re.DOTALL)
_CALL_LIKE = re.compile(r'<tool_call>|\{\s*"name"\s*:|\A\s*[\[{]|[A-Za-z_][\w.]*\(\s*[A-Za-z_]\w*\s*=')

Call = dict[str, Any]  # {"name": str, "arguments": dict}


@dataclass(frozen=True)
class Parsed:
    """One assistant turn, parsed: free text, calls in order, or why it could not be parsed."""

    content: str
    calls: list[Call]
    error: str | None = None

    @property
    def unparsable(self) -> bool:
        return self.error is not None


def parse_output(text: str, require_end: bool = True, tok: Any = None,
                 tools: list[dict[str, Any]] | None = None) -> Parsed:
    """Parse one generated assistant turn: with the response template of `tok` where the model has its own tool-call
    syntax (components/toolcalls/response.py), else as the project's ChatML template.

    Args:
        text: Decoded generation (special tokens kept).
        require_end: Treat output without the end-of-turn token as truncated (unparsable).
        tok: The model's tokenizer; None (or one without a response template of its own): the ChatML parser.
        tools: The tools offered in the turn (the response-template parser types bare-text arguments by them).
    """
    from components.toolcalls import response  # it builds on this module's parsers

    if (template := response.native(tok)) is not None:
        return response.parse(text, tok, template, require_end, tools)
    if require_end and END not in text:
        return Parsed(text, [], "no end-of-turn token (output truncated)")
    body = text.split(END, 1)[0]
    if body.count(OPEN) != body.count(CLOSE):
        return Parsed(body, [], "unbalanced <tool_call> tags")
    calls = []
    for block in _BLOCK.findall(body):
        call = _decode_call(block)
        if isinstance(call, str):
            return Parsed(body, [], call)
        calls.append(call)
    return Parsed(_BLOCK.sub("", body).strip(), calls)


def _decode_call(block: str) -> Call | str:
    try:
        obj = json.loads(block)
    except (ValueError, RecursionError) as err:  # JSONDecodeError, or numbers/nesting beyond Python's limits
        return f"tool call is not valid JSON ({getattr(err, 'msg', err)})"
    return _named_call(obj)


def _named_call(obj: Any) -> Call | str:
    """A `{"name", "arguments"}` object (Llama-style `parameters` too) as a call, or why it is not one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return "tool call lacks a string 'name'"
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        try:
            args = json.loads(args)
        except (ValueError, RecursionError):
            return "tool call 'arguments' is a string that is not JSON"
    if not isinstance(args, dict):
        return "tool call 'arguments' is not a JSON object"
    return {"name": obj["name"], "arguments": args}


def calls_of_message(message: dict[str, Any]) -> list[Call]:
    """Calls of an OpenAI-style assistant message (arguments decoded when given as JSON strings)."""
    out = []
    for tc in message.get("tool_calls") or []:
        fn = tc.get("function", tc)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except (ValueError, RecursionError):
                args = {"__unparsable__": args}
        out.append({"name": fn.get("name", ""), "arguments": args if isinstance(args, dict) else {}})
    return out


def steps_of_messages(messages: list[dict[str, Any]]) -> list[list[Call]]:
    """The call steps of a conversation: one list per assistant turn that calls tools."""
    return [calls for m in messages if m.get("role") == "assistant" and (calls := calls_of_message(m))]


def parse_json_calls(obj: Any) -> Parsed:
    """Calls from decoded JSON: one call or a list of calls, each `{"name", "arguments"}`, an OpenAI tool call
    `{"function": {...}}`, or BFCL's `{"<function>": {<arguments>}}`. An empty list is an answer without calls."""
    calls = []
    for item in obj if isinstance(obj, list) else [obj]:
        call = _json_call(item)
        if isinstance(call, str):
            return Parsed("", [], call)
        calls.append(call)
    return Parsed("", calls)


def _json_call(obj: Any) -> Call | str:
    if isinstance(obj, dict) and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    if isinstance(obj, dict) and len(obj) == 1 and "name" not in obj:
        (name, args), = obj.items()
        if not isinstance(args, dict):
            return f"arguments of {name!r} are not an object"
        return {"name": name, "arguments": args}
    return _named_call(obj)


def parse_python_calls(text: str) -> Parsed:
    """Calls in BFCL's Python syntax `[f(a=1), pkg.g(b="x")]` (brackets optional), read with `ast`, never run."""
    calls = _python_calls(text)
    if calls is None:
        return Parsed(text, [], "not a Python list of function calls")
    return Parsed("", [], calls) if isinstance(calls, str) else Parsed("", calls)


def _python_calls(text: str) -> list[Call] | str | None:
    """The calls; a string saying which rule a call list breaks; None when the text is no call list at all."""
    body = text.strip()
    body = body if body.startswith("[") else "[" + body
    body = body if body.endswith("]") else body + "]"  # BFCL's decoder wraps a bare call the same way
    try:
        with warnings.catch_warnings():  # model text may hold odd escapes; no warnings from parsing it
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(tree, ast.List) or not all(isinstance(e, ast.Call) for e in tree.elts):
        return None
    calls = []
    for node in tree.elts:
        name = _dotted_name(node.func)
        if name is None:
            return "a called name must be a plain or dotted identifier"
        if node.args or any(k.arg is None for k in node.keywords):
            return f"{name}: positional or ** arguments (only keyword arguments are read)"
        try:
            calls.append({"name": name, "arguments": {k.arg: _literal(k.value) for k in node.keywords}})
        except (ValueError, TypeError, RecursionError) as err:
            return f"{name}: argument is not a literal ({err})"
    return calls


def _dotted_name(node: ast.expr) -> str | None:
    """`math.factorial` for the node of `math.factorial`; None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _literal(node: ast.expr) -> Any:
    """A JSON-like value from an argument node: literals via `ast.literal_eval`, bare names as strings."""
    if isinstance(node, ast.Name):
        return node.id  # BFCL reads an unquoted name as a "variable": its identifier
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    value = ast.literal_eval(node)
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise ValueError(f"{type(value).__name__} is not a JSON value")
    return value


def parse_any(output: Any) -> Parsed:
    """Parse model output in whichever supported syntax it uses (see the module docstring).

    Strings are tried as the `<tool_call>` template, then JSON, then BFCL's Python syntax; text that is none of
    these is a plain answer unless it looks like a call (then `unparsable`). Decoded objects are an OpenAI
    assistant message or JSON calls.
    """
    if isinstance(output, dict) and ("tool_calls" in output or "role" in output):
        calls = parse_json_calls(output.get("tool_calls") or [])
        return Parsed(output.get("content") or "", calls.calls, calls.error)
    if not isinstance(output, str):
        return parse_json_calls(output)
    if OPEN in output:
        return parse_output(output, require_end=False)
    text = output.split(END, 1)[0].strip()
    fence = _FENCE.match(text)
    text = fence.group(1) if fence else text
    if text.startswith(("[", "{")):
        try:
            return parse_any(json.loads(text))
        except (ValueError, RecursionError):
            pass  # not JSON (or beyond Python's number/nesting limits): maybe Python call syntax
    calls = _python_calls(text)
    if isinstance(calls, list):
        return Parsed("", calls)
    if calls is None and not _CALL_LIKE.search(text):
        return Parsed(text, [])
    return Parsed(text, [], calls or "looks like a tool call but does not parse")
