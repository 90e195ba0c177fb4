"""BFCL's per-argument checker rules (`ast_checker.py`, commit 6ea57973), used by the one scorer.

`argument_error` is BFCL's check of one passed argument: first the type, with exact Python types, int accepted
where float is expected, array items checked one level deep, and BFCL's "variable" escape hatch (when the
acceptable values have another type than the schema, a value of their type passes and is compared by plain
membership); then the value: strings after `standardize`, lists element by element with standardized strings,
dicts key by key against some acceptable dict, lists of dicts position by position, anything else by membership.
`check.call_errors` adds the call-level rules and `check.score_step` the step rules. BFCL files themselves are
read by `components.data.importers.bfcl`.
"""

from __future__ import annotations

import re
from typing import Any

_PY_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool, "array": list, "object": dict}
_PUNCTUATION = re.compile(r"[ ,./\-_*^]")


def standardize(text: str) -> str:
    """BFCL's string normalisation: spaces and `,./-_*^` deleted, lowercase, single quotes made double."""
    return _PUNCTUATION.sub("", text).lower().replace("'", '"')


def argument_error(value: Any, acceptable: list[Any], schema: dict[str, Any]) -> str | None:
    """BFCL's check of one passed argument: None when it passes, else "wrong_type" or "wrong_value".

    Args:
        value: The argument as parsed (JSON-like values).
        acceptable: Its possible-answer list (`""` = may be omitted).
        schema: The parameter's JSON Schema; no `type` is BFCL's `any`, which its checker types as a string.
    """
    want = _py_type(schema.get("type"))
    items = _py_type(schema["items"].get("type") if isinstance(schema["items"], dict) else None) \
        if want is list and "items" in schema else None
    if want is float and type(value) is int:
        value = float(value)
    ok, variable = _type_ok(value, want, acceptable, items)
    if not ok:
        return "wrong_type"
    if variable:
        ok = value in acceptable
    elif want is dict:
        ok = _dict_ok(value, acceptable)
    elif want is list and items is dict:
        ok = _dict_list_ok(value, acceptable)
    elif want is str:
        ok = standardize(value) in [standardize(a) for a in acceptable if isinstance(a, str)]
    elif want is list:
        ok = [_std(v) for v in value] in [[_std(v) for v in a] for a in acceptable if isinstance(a, (list, str))]
    else:
        ok = value in acceptable
    return None if ok else "wrong_value"


def _py_type(kind: Any) -> type:
    """The Python type BFCL checks for a schema `type`; anything else (none, a list of types) is `any`: a string."""
    return _PY_TYPES.get(kind, str) if isinstance(kind, str) else str


def _std(value: Any) -> Any:
    return standardize(value) if isinstance(value, str) else value


def _type_ok(value: Any, want: type, acceptable: list[Any], items: type | None) -> tuple[bool, bool]:
    """BFCL's `type_checker`: (type accepted, value is a "variable" compared by plain membership)."""
    answer_type = next((type(a) for a in acceptable if a != ""), None)
    variable = answer_type is not None and answer_type is not want
    if type(value) is want:
        nested_ok = items is None or any(not isinstance(a, list) or all(_type_ok(v, items, a, None)[0] for v in value)
                                         for a in acceptable)
        return nested_ok, variable
    return answer_type is not None and type(value) is answer_type, True


def _dict_ok(value: dict[str, Any], options: list[Any]) -> bool:
    """BFCL's `dict_checker`: some acceptable dict takes every key with an acceptable value and misses no key
    that may not be omitted."""
    return any(isinstance(o, dict)
               and all(k in o and _std(v) in [_std(a) for a in o[k]] for k, v in value.items())
               and all(k in value or "" in ok for k, ok in o.items())
               for o in options)


def _dict_list_ok(value: list[Any], options: list[Any]) -> bool:
    """BFCL's `list_dict_checker`: as long as some acceptable list, element i acceptable for its dict i."""
    return any(isinstance(o, (list, str)) and len(value) == len(o)
               and all(isinstance(v, dict) and _dict_ok(v, [d]) for v, d in zip(value, o))
               for o in options)
