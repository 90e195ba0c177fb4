"""BFCL import and checker rules on the real sample in shared/data/bfcl: every line loads, the ground truth
scores 100% in every syntax (but the two known-bad entries), and each single-turn error class is detected."""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from components import toolcalls
from components.data.importers import bfcl
from components.toolcalls import bfcl_rules
from components.data.episode import DataError, Episode

DATA = Path(os.environ.get("BFCL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "bfcl"))
QUESTIONS = sorted(DATA.glob("BFCL_v4_*.json"))
pytestmark = pytest.mark.skipif(not QUESTIONS, reason=f"no BFCL sample in {DATA} (set BFCL_DATA)")


def answers_of(questions: Path) -> Path | None:
    path = DATA / "possible_answer" / questions.name
    return path if path.exists() else None


@cache
def all_episodes() -> tuple[Episode, ...]:
    return tuple(e for q in QUESTIONS for e in bfcl.import_episodes(q, answers_of(q)))


def verdict(ep: Episode, output: Any) -> toolcalls.EpisodeScore:
    parsed = toolcalls.parse_any(output)
    gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
    return toolcalls.score_episode([parsed.calls] if parsed.calls else [], gold, toolcalls.tool_index(ep.tool_dicts()),
                                   parsed.unparsable)


def calls_of(ep: Episode) -> list[dict[str, Any]]:
    """The expected calls with their canonical arguments, as fresh copies a test may change."""
    return [{"name": c.name, "arguments": copy.deepcopy(c.arguments)} for s in ep.expected.steps for c in s]


def render(calls: list[dict[str, Any]], syntax: str) -> Any:
    """The calls as a model would write them in one syntax."""
    if syntax == "decoded":
        return [{c["name"]: c["arguments"]} for c in calls]
    if syntax == "python":
        return "[" + ", ".join(f"{c['name']}(" + ", ".join(f"{k}={v!r}" for k, v in c["arguments"].items()) + ")"
                               for c in calls) + "]"
    return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)  # hermes


def test_every_line_of_every_file_loads():
    assert len(QUESTIONS) == 5
    for q in QUESTIONS:
        episodes = bfcl.import_episodes(q, answers_of(q))
        lines = [json.loads(line) for line in q.read_text().splitlines() if line.strip()]
        assert [e.id for e in episodes] == [r["id"] for r in lines]
        answers = answers_of(q)
        if answers is None:
            assert all(e.pattern == "irrelevance" and e.expected.steps == [] for e in episodes)
            continue
        truth = [json.loads(line)["ground_truth"] for line in answers.read_text().splitlines() if line.strip()]
        assert [[{c.name: c.accept} for c in e.expected.steps[0]] for e in episodes] == truth
        assert all(e.source == f"bfcl:{bfcl.category(e.id)}" and e.messages[0].role == "user" for e in episodes)


@pytest.mark.parametrize("syntax", ["decoded", "python", "hermes"])
def test_ground_truth_scores_100_percent_except_known_bad(syntax):
    failed = {}
    for ep in all_episodes():
        score = verdict(ep, render(calls_of(ep), syntax) if ep.expected.steps else "No function fits this request.")
        if not score.exact:
            failed[ep.id] = score.errors
    assert failed == {rid: ["unknown_argument"] for rid in bfcl.KNOWN_BAD}
    assert set(bfcl.KNOWN_BAD) == {"parallel_multiple_12", "parallel_multiple_26"}


def test_every_acceptable_value_and_every_allowed_omission_passes():
    checked = 0
    for ep in all_episodes():
        if ep.id in bfcl.KNOWN_BAD or not ep.expected.steps:
            continue
        tools = toolcalls.tool_index(ep.tool_dicts())
        for i, call in enumerate(ep.expected.steps[0]):
            props, required = tools[call.name].get("properties", {}), tools[call.name].get("required", [])
            for key, acceptable in call.accept.items():
                for option in acceptable:
                    if option == "" and key in required:
                        continue  # "" listed for a schema-required parameter: BFCL rejects the omission too
                    calls = calls_of(ep)
                    if option == "":
                        calls[i]["arguments"].pop(key, None)
                    else:
                        calls[i]["arguments"][key] = bfcl._canonical([option], props.get(key, {}))
                    assert verdict(ep, render(calls, "decoded")).exact, (ep.id, key, option)
                    checked += 1
    assert checked > 3000


# ------------------------------------------------------------------------------------------ mutations


def _required(ep: Episode, call: dict[str, Any]) -> list[str]:
    required = toolcalls.tool_index(ep.tool_dicts())[call["name"]].get("required", [])
    return [k for k in required if k in call["arguments"]]


def _unused_param(ep: Episode, i: int) -> str | None:
    call = ep.expected.steps[0][i]
    props = toolcalls.tool_index(ep.tool_dicts())[call.name].get("properties", {})
    return next((k for k in props if k not in call.accept), None)


def _other_tool(ep: Episode) -> str | None:
    names = {c.name for c in ep.expected.steps[0]}
    return next((t.function.name for t in ep.tools if t.function.name not in names), None)


def _wrong_value(value: Any, acceptable: list[Any]) -> Any:
    """A value of the same type that is not acceptable (None when the type has no easy wrong value)."""
    if isinstance(value, bool):
        wrong = not value
    elif isinstance(value, (int, float)):
        wrong = value + 7919
    elif isinstance(value, str):
        wrong = value + " qzx"
    else:
        return None
    return None if wrong in acceptable else wrong


def mutate(ep: Episode, kind: str) -> Any:
    """A wrong answer of class `kind` made from the ground truth, or None when `kind` does not apply."""
    calls = calls_of(ep)
    first = calls[0] if calls else None
    if kind == "unparsable":
        return render(calls, "python")[:-2] if calls else None
    if kind == "no_call":
        return "I cannot do that." if calls else None
    if kind == "call_when_irrelevant":
        return None if calls else render([{"name": ep.tools[0].function.name, "arguments": {}}], "decoded")
    if not calls:
        return None
    if kind == "hallucinated_tool":
        first["name"] = "no_such_tool_zz"
    elif kind == "wrong_tool":
        first["name"] = _other_tool(ep)
    elif kind == "missing_required_argument":
        if not _required(ep, first):
            return None
        del first["arguments"][_required(ep, first)[0]]
    elif kind == "unknown_argument":
        first["arguments"]["zz_not_a_parameter"] = 1
    elif kind == "unexpected_argument":
        key = _unused_param(ep, 0)
        if key is None:
            return None
        first["arguments"][key] = "x"
    elif kind == "wrong_type":
        key = next(iter(first["arguments"]), None)
        first["arguments"][key] = [["zz"]] if not isinstance(first["arguments"].get(key), list) else "zz"
    elif kind == "wrong_value":
        accept = ep.expected.steps[0][0].accept
        key = next((k for k, v in first["arguments"].items() if _wrong_value(v, accept[k]) is not None), None)
        if key is None:
            return None
        first["arguments"][key] = _wrong_value(first["arguments"][key], accept[key])
    elif kind == "wrong_call_count":
        calls = calls[:-1] if len(calls) > 1 else None
    elif kind == "redundant_call":
        calls.append(first)
    return None if calls is None or any(c["name"] is None or None in c["arguments"] for c in calls) \
        else render(calls, "decoded")


SINGLE_TURN_CLASSES = ["unparsable", "no_call", "call_when_irrelevant", "hallucinated_tool", "wrong_tool",
                       "missing_required_argument", "unknown_argument", "unexpected_argument", "wrong_type",
                       "wrong_value", "wrong_call_count", "redundant_call"]


@pytest.mark.parametrize("kind", SINGLE_TURN_CLASSES)
def test_mutations_are_caught_and_named(kind):
    mutated = 0
    for ep in all_episodes():
        wrong = mutate(ep, kind)
        if wrong is None:
            continue
        score = verdict(ep, wrong)
        assert not score.exact and kind in score.errors, (ep.id, wrong, score.errors)
        mutated += 1
    assert mutated >= (1 if kind == "unexpected_argument" else 100)  # BFCL truths list nearly every schema parameter


# ---------------------------------------------------------------------------------------------- rules


def test_schema_mapping():
    node = {"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float", "description": "A."}, "b": {"type": "tuple", "items": {"type": "String"}},
        "c": {"type": "any", "optional": True}, "d": {"type": "array", "items": {"type": "dict", "properties": {}}}}}
    assert bfcl.to_json_schema(node) == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "number", "description": "A." + bfcl.FLOAT_NOTE},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {}, "d": {"type": "array", "items": {"type": "object", "properties": {}}}}}
    with pytest.raises(DataError, match="rule 'bfcl_type'.*'complex'"):
        bfcl.to_json_schema({"type": "complex"}, "here")


@pytest.mark.parametrize("value, acceptable, schema, error", [
    ("April 1, 2024", ["april 1 2024"], {"type": "string"}, None),           # spaces and punctuation dropped
    ("2024-04-01", ["April 1, 2024"], {"type": "string"}, "wrong_value"),
    ("New York, NY", ["newyorkny"], {"type": "string"}, None),
    (5, [5.0], {"type": "number"}, None),                                   # int accepted for float
    (5.0, [5], {"type": "integer"}, "wrong_type"),
    (True, [1], {"type": "integer"}, "wrong_type"),
    ("dataset", ["dataset"], {}, None),                                    # `any` is typed as a string
    ("x", ["x"], {"type": "integer"}, None),                               # BFCL "variable": GT's type wins
    ([3, 5], [[3, 5]], {"type": "array", "items": {"type": "integer"}}, None),
    ([5, 3], [[3, 5]], {"type": "array", "items": {"type": "integer"}}, "wrong_value"),  # order matters
    ([1, 2], [[1.0, 2.0]], {"type": "array", "items": {"type": "number"}}, "wrong_type"),  # items: exact types
    (["New York"], [["new york"]], {"type": "array", "items": {"type": "string"}}, None),
    ({"min": 1.0}, [{"min": [1.0], "max": ["", 9.0]}], {"type": "object"}, None),  # "" = key may be left out
    ({"max": 9.0}, [{"min": [1.0], "max": ["", 9.0]}], {"type": "object"}, "wrong_value"),
    ([{"f": "age"}], [[{"f": ["AGE"]}]], {"type": "array", "items": {"type": "object"}}, None),
    ([], [[{"f": ["age"]}]], {"type": "array", "items": {"type": "object"}}, "wrong_value"),
    (None, [None, ""], {"type": "number"}, None),
])
def test_argument_rules(value, acceptable, schema, error):
    assert bfcl_rules.argument_error(value, acceptable, schema) == error


def test_bad_files_name_file_line_and_rule(tmp_path):
    q = QUESTIONS[-1]  # simple_python
    with pytest.raises(DataError, match=r"simple_python.json:1 \(id simple_python_0\): rule 'possible_answer'"):
        bfcl.import_episodes(q)
    broken = tmp_path / "q.json"
    broken.write_text(q.read_text().splitlines()[0] + "\n{not json\n")
    broken.with_name("one.json").write_text(q.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataError, match=r"q.json:2: rule 'json'"):
        bfcl.import_episodes(broken, answers_of(q))
    with pytest.raises(DataError, match="file not found"):
        bfcl.import_episodes(tmp_path / "missing.json")
    with pytest.raises(DataError, match="answer id\\(s\\) not among the questions"):
        bfcl.import_episodes(broken.with_name("one.json"), answers_of(q))
