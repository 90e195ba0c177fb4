"""The one tool-call parser and scorer: validation, evaluation, RL rewards and pair-making import it,
so "correct" means the same thing everywhere.

Model output (project template): optional text, then `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
blocks, then `<|im_end|>`. Output is parsed, never executed; malformed output is the verdict
`unparsable`, never an exception.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema

OPEN, CLOSE, END = "<tool_call>", "</tool_call>", "<|im_end|>"
_BLOCK = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*" + re.escape(CLOSE), re.DOTALL)

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


def parse_output(text: str, require_end: bool = True) -> Parsed:
    """Parse one generated assistant turn.

    Args:
        text: Decoded generation (special tokens kept).
        require_end: Treat output without the end-of-turn token as truncated (unparsable).
    """
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
    except json.JSONDecodeError as err:
        return f"tool call is not valid JSON ({err.msg})"
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return "tool call lacks a string 'name'"
    args = obj.get("arguments", {})
    if isinstance(args, str):  # OpenAI style: arguments as a JSON string
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
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
            except json.JSONDecodeError:
                args = {"__unparsable__": args}
        out.append({"name": fn.get("name", ""), "arguments": args if isinstance(args, dict) else {}})
    return out


def steps_of_messages(messages: list[dict[str, Any]]) -> list[list[Call]]:
    """The call steps of a conversation: one list per assistant turn that calls tools."""
    return [calls for m in messages if m.get("role") == "assistant" and (calls := calls_of_message(m))]


# --------------------------------------------------------------------------------------------- checks


def tool_index(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map tool name -> its JSON Schema `parameters`, from OpenAI function schemas."""
    return {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}


def schema_errors(call: Call, tools: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Check one call against the catalog; returns (error class, detail) pairs, empty when valid."""
    name, args = call["name"], call["arguments"]
    if name not in tools:
        return [("hallucinated_tool", f"tool {name!r} is not in the catalog")]
    params = tools[name]
    props = params.get("properties", {})
    errors = [("missing_required_argument", f"{name}: missing {k!r}")
              for k in params.get("required", []) if k not in args]
    errors += [("unknown_argument", f"{name}: {k!r} is not a parameter") for k in args if k not in props]
    for key, value in args.items():
        if key in props:
            err = jsonschema.exceptions.best_match(_validator(json.dumps(props[key], sort_keys=True)).iter_errors(value))
            if err is not None:
                kind = "wrong_type" if err.validator == "type" else "wrong_value"
                errors.append((kind, f"{name}.{key}: {err.message}"))
    return errors


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    """A compiled validator per (serialised) parameter schema: checking the schema once, not per call."""
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def same_value(pred: Any, gold: Any) -> bool:
    """Argument equality: strings case- and space-insensitive, int accepted for float."""
    if isinstance(gold, str) and isinstance(pred, str):
        return pred.strip().lower() == gold.strip().lower()
    if isinstance(gold, bool) or isinstance(pred, bool):
        return pred is gold
    if isinstance(gold, (int, float)) and isinstance(pred, (int, float)):
        return float(pred) == float(gold)
    if isinstance(gold, list) and isinstance(pred, list):
        return len(gold) == len(pred) and all(same_value(p, g) for p, g in zip(pred, gold))
    if isinstance(gold, dict) and isinstance(pred, dict):
        return gold.keys() == pred.keys() and all(same_value(pred[k], gold[k]) for k in gold)
    return pred == gold


def same_call(pred: Call, gold: Call) -> bool:
    return (pred["name"] == gold["name"] and pred["arguments"].keys() == gold["arguments"].keys()
            and all(same_value(pred["arguments"][k], v) for k, v in gold["arguments"].items()))


@dataclass
class StepScore:
    """Verdict on one assistant step against its acceptable calls."""

    exact: bool
    names_ok: bool
    errors: list[str] = field(default_factory=list)


def score_step(pred: list[Call], gold: list[Call], tools: dict[str, dict[str, Any]]) -> StepScore:
    """Score one step; parallel calls match in any order."""
    if not gold:
        return StepScore(not pred, not pred, ["call_when_irrelevant"] if pred else [])
    if not pred:
        return StepScore(False, False, ["no_call"])
    errors: list[str] = []
    names_ok = Counter(c["name"] for c in pred) == Counter(c["name"] for c in gold)
    if len(pred) != len(gold):
        errors.append("wrong_call_count")
    remaining = list(gold)
    for call in pred:
        errors += [kind for kind, _ in schema_errors(call, tools) if kind == "hallucinated_tool"]
        match = next((g for g in remaining if same_call(call, g)), None)
        if match is None:
            match = next((g for g in remaining if g["name"] == call["name"]), None)
            if match is None:
                if call["name"] in tools:
                    errors.append("wrong_tool")
                continue
            errors += _argument_errors(call, match, tools)
        remaining.remove(match)
    return StepScore(not errors, names_ok, sorted(set(errors)))


def _argument_errors(pred: Call, gold: Call, tools: dict[str, dict[str, Any]]) -> list[str]:
    errors = [kind for kind, _ in schema_errors(pred, tools)]
    for key, value in pred["arguments"].items():
        if key in gold["arguments"] and not same_value(value, gold["arguments"][key]):
            errors.append("wrong_value")
        elif key not in gold["arguments"] and key in tools.get(pred["name"], {}).get("properties", {}):
            errors.append("unexpected_argument")
    return errors or ["wrong_value"]


@dataclass
class EpisodeScore:
    """Verdict on a whole episode: every expected step, in order, then a final answer."""

    exact: bool
    first_step_exact: bool
    first_step_names_ok: bool
    steps_correct: int
    errors: list[str]


def score_episode(pred_steps: list[list[Call]], expected_steps: list[list[Call]],
                  tools: dict[str, dict[str, Any]], unparsable: bool = False) -> EpisodeScore:
    """Score a sequence of predicted call steps against the expected ones.

    Args:
        pred_steps: Calls per assistant turn that called tools, in order.
        expected_steps: Expected calls per step ([] for an episode that needs no call).
        tools: `tool_index` of the catalog.
        unparsable: The model's last turn could not be parsed.
    """
    if unparsable:
        return EpisodeScore(False, False, False, 0, ["unparsable"])
    if not expected_steps:
        bad = ["call_when_irrelevant"] if pred_steps else []
        return EpisodeScore(not bad, not bad, not bad, 0, bad)
    errors: list[str] = []
    scores = [score_step(p, g, tools) for p, g in zip(pred_steps, expected_steps)]
    for i, score in enumerate(scores):
        if not score.exact and any(score_step(pred_steps[i], g, tools).exact
                                   for j, g in enumerate(expected_steps) if j != i):
            errors.append("wrong_order")
        else:
            errors += score.errors
    if not pred_steps:
        errors.append("no_call")
    elif len(pred_steps) < len(expected_steps):
        errors.append("premature_stop")
    extra = pred_steps[len(expected_steps):]
    seen = [c for step in pred_steps[:len(expected_steps)] for c in step]
    if any(same_call(c, s) for step in extra for c in step for s in seen):
        errors.append("redundant_call")
    elif extra:
        errors.append("wrong_call_count")
    first = scores[0] if scores else StepScore(False, False)
    return EpisodeScore(not errors, first.exact, first.names_ok, sum(s.exact for s in scores), sorted(set(errors)))
