"""Salesforce xLAM / APIGen records: `{"id"?, "query": str, "tools": "<JSON>", "answers": "<JSON>"}`.

Single-turn: the query is the user message and all answers are the calls of one assistant step (one
answer: single, several: parallel, none: irrelevance). There are no tool results. Tool parameters are a
flat mapping `{name: {"type": "int, optional", "description", "default"?}}` with Python-ish type strings,
mapped to JSON Schema here; a parameter is required unless marked optional or given a default. Tools
whose `parameters` already are a JSON Schema object are kept as they are.
"""

from __future__ import annotations

import re
from typing import Any

from components.data.importers.common import LiteralError, Record, Transcript, normalise_tools, python_literal

SOURCE = "xlam"
SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "string": {"type": "string"},
    "int": {"type": "integer"}, "integer": {"type": "integer"},
    "float": {"type": "number"}, "number": {"type": "number"},
    "bool": {"type": "boolean"}, "boolean": {"type": "boolean"},
    "list": {"type": "array"}, "array": {"type": "array"}, "tuple": {"type": "array"}, "set": {"type": "array"},
    "dict": {"type": "object"}, "object": {"type": "object"},
    "any": {},
}
_GENERIC = re.compile(r"^(\w+)\s*\[(.*)\]$", re.DOTALL)


class TypeStringError(ValueError):
    """An xLAM type string that has no JSON Schema mapping."""


def convert(record: Record) -> tuple[list[dict[str, Any]], Transcript]:
    """The catalog and transcript of one xLAM record."""
    raw_tools = record.json_field("tools", list)
    tools = normalise_tools([_tool(t, record) for t in raw_tools], record)
    answers = record.json_field("answers", list)
    transcript = Transcript(record)
    transcript.say("user", record.field("query", str))
    if answers:
        transcript.call(answers)
    else:
        transcript.say("assistant", "")
    return tools, transcript


def _tool(tool: Any, record: Record) -> Any:
    """The tool with its flat xLAM parameters turned into a JSON Schema object."""
    if not isinstance(tool, dict) or not isinstance(tool.get("parameters"), dict) or _is_schema(tool["parameters"]):
        return tool  # normalise_tools reports what is wrong with it, or keeps a schema as it is
    properties, required = {}, []
    for name, spec in tool["parameters"].items():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise record.error("xlam_type", f"tool {tool.get('name')!r} parameter {name!r} has no type string")
        try:
            schema, is_required = parameter_schema(spec)
        except TypeStringError as err:
            raise record.error("xlam_type", f"tool {tool.get('name')!r} parameter {name!r}: {err}") from None
        except LiteralError as err:
            raise record.error("literal", f"tool {tool.get('name')!r} parameter {name!r}: a default that is "
                                          f"{err}") from None
        properties[name] = schema
        if is_required:
            required.append(name)
    return {**tool, "parameters": {"type": "object", "properties": properties, "required": required}}


def _is_schema(parameters: dict[str, Any]) -> bool:
    return parameters.get("type") == "object" and isinstance(parameters.get("properties"), dict)


def parameter_schema(spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """JSON Schema of one xLAM parameter and whether it is required.

    `{"type": "float, default=1.0", "description": "..."}` -> `({"type": "number", "description": "...",
    "default": 1.0}, False)`.

    Raises:
        TypeStringError: The type string (or one of its modifiers) has no mapping.
        LiteralError: A `default=` written as a Python literal that is no JSON value (`default={[1]: 2}`).
    """
    base, *modifiers = _split_top(spec["type"])
    schema = type_schema(base)
    optional = base.lower().startswith("optional[")
    default: Any = spec.get("default")
    for modifier in modifiers:
        key, _, value = modifier.partition("=")
        if key.strip().lower() == "optional" and not value:
            optional = True
        elif key.strip().lower() == "default" and value:
            default = _default_value(value.strip())
        else:
            raise TypeStringError(f"unknown type modifier {modifier!r} in {spec['type']!r}")
    if spec.get("description"):
        schema["description"] = str(spec["description"])
    if default not in (None, ""):
        schema["default"] = default
    return schema, not optional and "default" not in schema and "default" not in spec


def type_schema(text: str) -> dict[str, Any]:
    """JSON Schema of an xLAM type: `str`, `List[int]`, `Dict[str, Any]`, `Optional[float]`, `Union[int, str]`.

    Raises:
        TypeStringError: An unknown type name or malformed brackets.
    """
    text = text.strip()
    generic = _GENERIC.match(text)
    if generic is None:
        if text.lower() not in SCALARS:
            raise TypeStringError(f"unknown type {text!r}; known: {sorted(SCALARS)} and their generics")
        return dict(SCALARS[text.lower()])
    name, args = generic.group(1).lower(), [type_schema(a) for a in _split_top(generic.group(2))]
    if name in ("list", "set") and len(args) == 1:
        return {"type": "array", "items": args[0]}
    if name == "tuple":
        return {"type": "array", "prefixItems": args, "minItems": len(args), "maxItems": len(args)}
    if name == "dict" and len(args) == 2:
        return {"type": "object", "additionalProperties": args[1]} if args[1] else {"type": "object"}
    if name == "optional" and len(args) == 1:
        return args[0]
    if name == "union" and args:
        return {"anyOf": args}
    raise TypeStringError(f"unknown generic type {text!r}")


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets: `Dict[str, int], optional` -> [`Dict[str, int]`, `optional`]."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            raise TypeStringError(f"unbalanced brackets in {text!r}")
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise TypeStringError(f"unbalanced brackets in {text!r}")
    return parts + [text[start:].strip()]


def _default_value(text: str) -> Any:
    """A default written in a type string (`default=1.0`, `default='en'`): its literal value, else the text.

    Raises:
        LiteralError: A Python literal that is no JSON value.
    """
    try:
        return python_literal(text)
    except (ValueError, SyntaxError) as err:
        if isinstance(err, LiteralError):
            raise
        return text
