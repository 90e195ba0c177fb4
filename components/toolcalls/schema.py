"""Tool parameter schemas from outside data: checked where they enter, then validated safely.

A tool's `parameters` come from datasets, catalog files and task files, so they are hostile input like any
other field. `parameters_problem` is the one check every entry point runs (importers, catalog files, the BFCL
importer, the validate stage, `tooltune score`); it returns `(rule, detail)` for the first problem, in order:
- tool_schema: `parameters` is not a JSON object, or not a valid JSON Schema (its dialect's metaschema).
- schema_depth: nested deeper than `MAX_SCHEMA_DEPTH` levels (deeper would overflow the recursion of the
  checks and of pydantic's serialiser, which stops at 255 levels).
- schema_ref: a `$ref` that is not local (`#...`: a file or URL would need a read or a download), or a local
  one that points nowhere.
- schema_pattern: a `pattern` or `patternProperties` key that RE2 cannot compile (lookarounds, backreferences),
  or `patternProperties` beside `unevaluatedProperties` (jsonschema matches those with Python's `re`).

`validator` compiles the whole `parameters` schema, so local `#/$defs/...` references resolve. Its `pattern`,
`patternProperties` and `additionalProperties` keywords match with RE2, which runs in linear time: a pattern
such as `(a+)+$` cannot hang a check on a long argument as Python's backtracking `re` does. RE2 differs from
`re` in small ways (`\\d` is ASCII digits only). Its reference registry never reads a file or the network.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema
import re2
import referencing
import referencing.exceptions
from jsonschema.exceptions import ValidationError
from referencing.jsonschema import DRAFT202012, specification_with

from components.data.episode import DataError
from components.data.inputs import too_deep

MAX_SCHEMA_DEPTH = 64  # nesting levels of one tool's parameters; real tool schemas stay under 10
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print every rejected pattern to stderr; the rule says it instead


def _no_retrieve(uri: str) -> referencing.Resource:
    """The registry's retrieve hook: a reference outside the schema is never fetched (no file, no network)."""
    raise DataError(f"rule 'schema_ref': {uri!r} is not in the schema; only local references ('#/...') are used")


REGISTRY: referencing.Registry = referencing.Registry(retrieve=_no_retrieve)


def short(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to `limit` characters: a hostile value must not turn an error into a megabyte line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parameters_problem(params: Any) -> tuple[str, str] | None:
    """The first problem of a tool's `parameters` as (rule, detail), None when it is usable (module docstring)."""
    if not isinstance(params, dict):
        return "tool_schema", f"parameters must be a JSON object (a JSON Schema), not {type(params).__name__}"
    if too_deep(params, MAX_SCHEMA_DEPTH):
        return "schema_depth", f"parameters nest deeper than {MAX_SCHEMA_DEPTH} levels"
    return _problem(json.dumps(params, sort_keys=True))


@lru_cache(maxsize=1024)
def _problem(params_json: str) -> tuple[str, str] | None:
    """`parameters_problem` of one distinct schema: catalogs repeat across records, the check runs once."""
    params = json.loads(params_json)
    try:
        cls = jsonschema.validators.validator_for(params)
        dialect = cls.META_SCHEMA.get("$schema", "")
        resource = specification_with(dialect, default=DRAFT202012).create_resource(params)
    except (jsonschema.exceptions.SchemaError, referencing.exceptions.CannotDetermineSpecification) as err:
        return "tool_schema", f"parameters are not a JSON Schema ({short(str(err), 200)})"
    # the meta-schema first: the subschema walk below assumes each keyword has its JSON Schema type
    return _metaschema_problem(cls, params) or _subschema_problem(resource)


def _subschema_problem(root: referencing.Resource) -> tuple[str, str] | None:
    """References and patterns of every subschema (walked by the dialect's own keywords, not by key names)."""
    resolver = REGISTRY.with_resource(root.id() or "", root).resolver(base_uri=root.id() or "")
    stack = [root]
    while stack:
        resource = stack.pop()
        node = resource.contents
        if isinstance(node, dict):
            problem = _ref_problem(node, resolver) or _pattern_problem(node)
            if problem:
                return problem
        stack.extend(resource.subresources())
    if _has_in_place_cycle(root.contents, resolver):
        return "schema_ref", "a $ref cycle that never descends into the arguments (it would recurse forever)"
    return None


def _in_place(node: Any, resolver: referencing.Resolver) -> list[Any]:
    """The subschemas applied to the same value as `node` (its `$ref` target, allOf/anyOf/oneOf, not, if/then/
    else, dependentSchemas): a cycle among these recurses without ever reaching a smaller value."""
    if not isinstance(node, dict):
        return []
    out: list[Any] = []
    if isinstance(node.get("$ref"), str):
        try:
            out.append(resolver.lookup(node["$ref"]).contents)
        except (referencing.exceptions.Unresolvable, ValueError):
            pass  # a `$ref` key in data (a description, enum or default value): references in schema positions
            # were checked by `_ref_problem` before, and the meta-schema check names what is wrong here
    for key in ("allOf", "anyOf", "oneOf"):
        out += node[key] if isinstance(node.get(key), list) else []
    out += [node[key] for key in ("not", "if", "then", "else") if key in node]
    deps = node.get("dependentSchemas")
    return out + (list(deps.values()) if isinstance(deps, dict) else [])


def _has_in_place_cycle(root: Any, resolver: referencing.Resolver) -> bool:
    """Whether some schema reaches itself through in-place subschemas only (iterative depth-first search)."""
    done: set[int] = set()
    for start in _all_nodes(root):
        if id(start) in done:
            continue
        path, stack = {id(start)}, [(start, iter(_in_place(start, resolver)))]
        while stack:
            child = next(stack[-1][1], None)
            if child is None:
                node, _ = stack.pop()
                path.discard(id(node))
                done.add(id(node))
            elif id(child) in path:
                return True
            elif isinstance(child, dict) and id(child) not in done:
                path.add(id(child))
                stack.append((child, iter(_in_place(child, resolver))))
    return False


def _all_nodes(root: Any) -> list[dict[str, Any]]:
    """Every dict within `root` (schemas and a few non-schema values: harmless starting points)."""
    out, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _ref_problem(node: dict[str, Any], resolver: referencing.Resolver) -> tuple[str, str] | None:
    for key in ("$ref", "$dynamicRef", "$recursiveRef"):
        ref = node.get(key)
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref.startswith("#"):
            return "schema_ref", (f"{key} {short(ref)} is not local; only references into the same schema "
                                  "('#/$defs/...') are followed, never files or URLs")
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            return "schema_ref", f"{key} {short(ref)} points to nothing in the schema"
    return None


def _pattern_problem(node: dict[str, Any]) -> tuple[str, str] | None:
    patterns = node.get("patternProperties")
    keys = list(patterns) if isinstance(patterns, dict) else []
    for text in ([node["pattern"]] if isinstance(node.get("pattern"), str) else []) + keys:
        try:
            _compiled(text)
        except re2.error as err:
            reason = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
            return "schema_pattern", f"pattern {short(text)} is not RE2 syntax ({reason})"
    if keys and "unevaluatedProperties" in node:
        return "schema_pattern", "patternProperties beside unevaluatedProperties is not supported"
    return None


def _metaschema_problem(cls: type, params: dict[str, Any]) -> tuple[str, str] | None:
    try:
        cls.check_schema(params)
    except jsonschema.exceptions.SchemaError as err:
        return "tool_schema", f"parameters are not a JSON Schema ({short(err.message, 200)})"
    return None


# ------------------------------------------------------------------------------------------ validation


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _compiled(pattern).search(text) is not None


def _pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not _search(patrn, instance):
        yield ValidationError(f"{short(instance)} does not match {short(patrn)}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Any:
    if validator.is_type(instance, "object"):
        for pattern, subschema in patterns.items():
            for key, value in instance.items():
                if _search(pattern, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: dict[str, Any]) -> Any:
    """jsonschema's `additionalProperties`, with the `patternProperties` keys matched by RE2."""
    if not validator.is_type(instance, "object"):
        return
    props, patterns = schema.get("properties", {}), schema.get("patternProperties", {})
    extras = sorted((k for k in instance if k not in props and not any(_search(p, k) for p in patterns)), key=str)
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        yield ValidationError(f"Additional properties are not allowed ({', '.join(map(short, extras))} unexpected)")


@lru_cache(maxsize=None)
def _safe_class(cls: type) -> type:
    """The validator class of a dialect with the RE2 keywords."""
    return jsonschema.validators.extend(cls, {"pattern": _pattern, "patternProperties": _pattern_properties,
                                              "additionalProperties": _additional_properties})


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    return _safe_class(jsonschema.validators.validator_for(schema))(schema, registry=REGISTRY)


def validator(params: dict[str, Any]) -> Any:
    """A validator of arguments against a whole `parameters` schema (compiled once per distinct schema)."""
    return _validator(json.dumps(params, sort_keys=True))


def resolved(root: dict[str, Any], node: Any, hops: int = 32) -> Any:
    """`node` with its local `$ref` chain followed inside `root` (a node without `$ref` as it is)."""
    resolver = None
    while hops and isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        if resolver is None:  # built only for a node that refers: most parameters have no `$ref`
            resolver = REGISTRY.with_contents([("", root)], default_specification=DRAFT202012).resolver()
        node, hops = resolver.lookup(node["$ref"]).contents, hops - 1
    return node
