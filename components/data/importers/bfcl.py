"""BFCL (Berkeley Function Calling Leaderboard) single-turn data: reading, type mapping, import.

Reads: BFCL question files and their possible-answer files, JSON lines (e.g. `shared/data/bfcl/`, whose
SOURCE.md gives the format). Writes nothing: `import_episodes` returns canonical episodes, which
`components.toolcalls` scores like any other episode.

Mapping. Gorilla schema types become JSON Schema, as BFCL's FC handlers do (`GORILLA_TO_OPENAPI`):
dict -> object, float -> number (the description gains " This is a float type value."), tuple -> array;
`any` gets no type constraint. Type names are read case-insensitively (`String` = `string`). A possible answer
`{"f": {"p": [v1, v2, ""]}}` becomes an expected call whose `arguments` hold the first acceptable value of each
parameter (left out when only `""` is listed) and whose `accept` holds the lists as given.

Checks. Every line is a JSON object read by the one strict reader (`components.data.inputs`: nested at most
`inputs.MAX_DEPTH` levels, rule `json_depth`), so no later step (type mapping, schema checks, pydantic's serialiser)
can overflow; each function's mapped parameters pass
`toolcalls.schema.parameters_problem` (rules `tool_schema`, `schema_depth`, `schema_ref`, `schema_pattern`).
Errors name the file, line (and id) and rule. BFCL's per-argument checker rules live with the scorer, in
`components.toolcalls.bfcl_rules`; the call-level and step rules in `components.toolcalls.check`.

Known differences from BFCL's decoder: tuples are read as lists (BFCL rejects a tuple for an `array`
parameter) and arithmetic is never evaluated (BFCL `eval`s it), so such output is `unparsable` here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from components.data.episode import DataError, Episode, Pattern
from components.data.inputs import iter_json_lines
from components.toolcalls.schema import parameters_problem, short

JSON_TYPES: dict[str, str | None] = {
    "string": "string", "integer": "integer", "float": "number", "number": "number", "boolean": "boolean",
    "array": "array", "tuple": "array", "dict": "object", "object": "object", "any": None,
}
FLOAT_NOTE = " This is a float type value."
NO_CALL_REPLY = "None of the available functions fits this request."
KNOWN_BAD = {  # ground truths that no answer can satisfy; BFCL's own checker fails them too
    "parallel_multiple_12": "expects `permeability`, not a parameter of calculate_voltage_difference",
    "parallel_multiple_26": "expects `type`, not a parameter of bank.calculate_balance",
}
_OMIT = object()  # a parameter whose only acceptable value is "" (must be left out)


def category(record_id: str) -> str:
    """BFCL category of an entry id: `parallel_multiple_12` -> `parallel_multiple`."""
    return re.sub(r"_\d+$", "", record_id)


def pattern(cat: str) -> Pattern:
    """The episode pattern of a category, by BFCL's own dispatch on the category name."""
    return "irrelevance" if "irrelevance" in cat else "parallel" if "parallel" in cat else "single"


# ------------------------------------------------------------------------------------------------ files


def records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """The JSON-object lines of a JSON-lines file, with line numbers, read by the one strict reader
    (`components.data.inputs`: `json_depth`, `number_size`, `utf8`, ...); errors name the file, line and rule."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    out = []
    for lineno, obj in iter_json_lines(path):
        if isinstance(obj, DataError):
            raise obj
        if not isinstance(obj, dict):
            raise DataError(where=f"{path}:{lineno}", rule="json_object", detail="a record must be a JSON object")
        out.append((lineno, obj))
    if not out:
        raise DataError(f"{path}: rule 'non_empty': the file holds no record")
    return out


def _field(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or not value:
        raise DataError(f"{where}: rule 'bfcl_record': field {key!r} must be a non-empty {kind.__name__}")
    return value


def import_episodes(questions_path: str | Path, answers_path: str | Path | None = None) -> list[Episode]:
    """Canonical episodes from a BFCL question file and its possible-answer file (none for irrelevance).

    Each episode has the one user turn, the entry's functions as OpenAI tool schemas, the ground truth as
    expected calls (with `accept`), and an assistant reply making those calls (or declining, for irrelevance).

    Raises:
        DataError: naming the file, line and rule (bad JSON, missing fields, unknown types, unaligned answers).
    """
    answers = _answers(answers_path) if answers_path is not None else {}
    episodes = []
    for lineno, record in records(questions_path):
        where = f"{questions_path}:{lineno}"
        rid = _field(record, "id", str, where)
        where += f" (id {rid})"
        needs_answer = pattern(category(rid)) != "irrelevance"
        if needs_answer and rid not in answers:
            source = f"in {answers_path}" if answers_path is not None else "(pass its possible-answer file)"
            raise DataError(f"{where}: rule 'possible_answer': no ground truth for this id {source}")
        episodes.append(_episode(record, answers.get(rid) if needs_answer else None, where))
    unused = sorted(answers.keys() - {e.id for e in episodes})
    if unused:
        raise DataError(f"{answers_path}: rule 'possible_answer': {len(unused)} answer id(s) not among the "
                        f"questions of {questions_path}, e.g. {unused[:3]}")
    return episodes


def _answers(path: str | Path) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for lineno, record in records(path):
        where = f"{path}:{lineno}"
        rid = _field(record, "id", str, where)
        if rid in out:
            raise DataError(f"{where} (id {rid}): rule 'unique_id': the id appears twice")
        out[rid] = _field(record, "ground_truth", list, f"{where} (id {rid})")
    return out


def _episode(record: dict[str, Any], answer: list[Any] | None, where: str) -> Episode:
    turns = _field(record, "question", list, where)
    if len(turns) != 1 or not isinstance(turns[0], list):
        raise DataError(f"{where}: rule 'single_turn': expected one turn (a list of messages), got {len(turns)}")
    tools = [_tool(f, where) for f in _field(record, "function", list, where)]
    props = {t["function"]["name"]: t["function"]["parameters"].get("properties", {}) for t in tools}
    calls = [_expected_call(gt, props, where) for gt in answer or []]
    made = [{"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
    reply = {"role": "assistant", "tool_calls": made} if calls else {"role": "assistant", "content": NO_CALL_REPLY}
    cat = category(record["id"])
    try:
        return Episode.model_validate({
            "id": record["id"], "domain": "bfcl", "source": f"bfcl:{cat}", "pattern": pattern(cat), "split": "test",
            "tools": tools, "messages": [*turns[0], reply], "expected": {"steps": [calls] if calls else []}})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{where}: rule 'record_schema': {loc}: {first['msg']}") from None


def _tool(function: Any, where: str) -> dict[str, Any]:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise DataError(f"{where}: rule 'bfcl_record': each function needs a string 'name'")
    where = f"{where} function {function['name'][:80]}"  # a hostile name must not make a megabyte message
    parameters = to_json_schema(_field(function, "parameters", dict, where), where)
    problem = parameters_problem(parameters)
    if problem:
        raise DataError(f"{where}: rule '{problem[0]}': {problem[1]}")
    return {"type": "function", "function": {"name": function["name"], "description": function.get("description", ""),
                                             "parameters": parameters}}


def to_json_schema(node: dict[str, Any], where: str = "schema") -> dict[str, Any]:
    """A Gorilla schema node as JSON Schema (see the module docstring), recursing into properties and items."""
    if not isinstance(node, dict):
        raise DataError(f"{where}: rule 'bfcl_type': a parameter schema must be a JSON object, not {short(node)}")
    kind = str(node.get("type", "any")).lower()
    if kind not in JSON_TYPES:
        raise DataError(f"{where}: rule 'bfcl_type': unknown type {short(node['type'])}; known: {sorted(JSON_TYPES)}")
    out: dict[str, Any] = {"type": JSON_TYPES[kind]} if JSON_TYPES[kind] else {}
    out |= {k: v for k, v in node.items() if k not in ("type", "properties", "items", "optional")}
    if kind == "float":
        out["description"] = out.get("description", "") + FLOAT_NOTE
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: to_json_schema(v, f"{where}.{k}") for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"], f"{where}[]")
    return out


def _expected_call(truth: Any, props: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """One ground-truth `{function: {param: [acceptable...]}}` as an expected call with `accept`."""
    if not isinstance(truth, dict) or len(truth) != 1:
        raise DataError(f"{where}: rule 'possible_answer': a ground-truth call is {{function: {{param: [values]}}}}")
    (name, accept), = truth.items()
    if not isinstance(accept, dict) or not all(isinstance(v, list) for v in accept.values()):
        raise DataError(f"{where}: rule 'possible_answer': {name}: every parameter needs a list of acceptable values")
    schema = props.get(name, {})
    arguments = {k: v for k, ok in accept.items() if (v := _canonical(ok, schema.get(k, {}))) is not _OMIT}
    return {"name": name, "arguments": arguments, "accept": accept}


def _canonical(acceptable: list[Any], schema: dict[str, Any]) -> Any:
    """The first acceptable value as a plain argument (dicts of acceptable lists collapsed the same way)."""
    value = _first(acceptable)
    if schema.get("type") == "object" and isinstance(value, dict):
        return _canonical_dict(value)
    if schema.get("items", {}).get("type") == "object" and isinstance(value, list):
        return [_canonical_dict(v) if isinstance(v, dict) else v for v in value]
    return value


def _canonical_dict(options: dict[str, list[Any]]) -> dict[str, Any]:
    return {k: v for k, ok in options.items() if (v := _first(ok)) is not _OMIT}


def _first(acceptable: list[Any]) -> Any:
    return next((a for a in acceptable if a != ""), _OMIT)
