"""Call checking and scoring: catalog schema checks (validators from `schema`), BFCL's value rules (`bfcl_rules`),
per-step and per-episode verdicts with the error classes of the package docstring of `components.toolcalls`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import referencing.exceptions

from components.data.episode import DataError
from components.toolcalls import bfcl_rules
from components.toolcalls.parse import Call
from components.toolcalls.schema import resolved, validator


def tool_index(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map tool name -> its JSON Schema `parameters`, from OpenAI function schemas."""
    return {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}


def schema_errors(call: Call, tools: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Check one call against the catalog; returns (error class, detail) pairs, empty when valid.

    The arguments are validated against the tool's whole `parameters` schema, so local `$ref`s resolve; each
    schema parameter the call passes gets its most relevant error. Errors on the arguments object as a whole
    (`required`, `additionalProperties`) are left to `_shape_errors`, which names them in the scorer's classes.

    Raises:
        DataError: rule `schema_ref`, for a schema whose references were not checked where it entered
            (`schema.parameters_problem`) and lead outside it.
    """
    errors = _shape_errors(call, tools)
    params = tools.get(call["name"])
    if not params or not call["arguments"]:
        return errors
    props = params.get("properties", {})
    by_key: dict[str, list[jsonschema.ValidationError]] = {}
    try:
        for err in validator(params).iter_errors(call["arguments"]):
            if err.path and err.path[0] in props:
                by_key.setdefault(err.path[0], []).append(err)
    except referencing.exceptions.Unresolvable as err:
        raise DataError(f"rule 'schema_ref': tool {call['name']!r}: {err}") from None
    except RecursionError:  # a recursive schema (a tree) and arguments nested deeper than the stack allows
        return errors + [("wrong_value", f"{call['name']}: arguments nest too deeply to check against the schema")]
    for key in call["arguments"]:  # in argument order: callers report the first error
        if key in by_key:
            err = jsonschema.exceptions.best_match(by_key[key])
            kind = "wrong_type" if err.validator == "type" else "wrong_value"
            errors.append((kind, f"{call['name']}.{key}: {err.message}"))
    return errors


def _shape_errors(call: Call, tools: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Catalog checks that need no values: the tool exists, required arguments are there, no unknown ones."""
    name, args = call["name"], call["arguments"]
    if name not in tools:
        return [("hallucinated_tool", f"tool {name!r} is not in the catalog")]
    props = tools[name].get("properties", {})
    errors = [("missing_required_argument", f"{name}: missing {k!r}")
              for k in tools[name].get("required", []) if k not in args]
    return errors + [("unknown_argument", f"{name}: {k!r} is not a parameter") for k in args if k not in props]


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


def normalise_text(text: str) -> str:
    """Text as tau-bench compares an output with an answer: lower case, commas removed."""
    return text.lower().replace(",", "")


def states_outputs(answers: list[str], outputs: list[str]) -> bool:
    """The answers communicate every expected output: each one (normalised) is a substring of some answer, as
    tau-bench's `outputs` check reads them. The final answer is consistent with the tool results it reports."""
    said = [normalise_text(a) for a in answers]
    return all(any(normalise_text(o) in a for a in said) for o in outputs)


def call_errors(pred: Call, gold: Call, tools: dict[str, dict[str, Any]]) -> list[str]:
    """Why `pred` is not an acceptable form of `gold` (a call of the same tool); [] when it is.

    A gold call with `accept` (per-argument acceptable values, `""` = may be omitted) is checked by BFCL's
    rules; one without, by `same_call` on its exact arguments.
    """
    if gold.get("accept") is not None:
        return _accept_errors(pred, gold["accept"], tools)
    return [] if same_call(pred, gold) else _argument_errors(pred, gold, tools)


def _argument_errors(pred: Call, gold: Call, tools: dict[str, dict[str, Any]]) -> list[str]:
    errors = [kind for kind, _ in schema_errors(pred, tools)]
    for key, value in pred["arguments"].items():
        if key in gold["arguments"] and not same_value(value, gold["arguments"][key]):
            errors.append("wrong_value")
        elif key not in gold["arguments"] and key in tools.get(pred["name"], {}).get("properties", {}):
            errors.append("unexpected_argument")
    return errors + ["missing_required_argument" for key in gold["arguments"] if key not in pred["arguments"]]


def _accept_errors(pred: Call, accept: dict[str, list[Any]], tools: dict[str, dict[str, Any]]) -> list[str]:
    """BFCL's `simple_function_checker`, reporting every error instead of the first."""
    errors = [kind for kind, _ in _shape_errors(pred, tools)]
    params = tools.get(pred["name"], {})
    props = params.get("properties", {})
    for key, value in pred["arguments"].items():
        if key in props and key not in accept:
            errors.append("unexpected_argument")
        elif key in props and (kind := bfcl_rules.argument_error(value, accept[key], _bfcl_schema(params, key))):
            errors.append(kind)
    return errors + ["missing_required_argument" for key, ok in accept.items()
                     if key not in pred["arguments"] and "" not in ok]


def _bfcl_schema(params: dict[str, Any], key: str) -> dict[str, Any]:
    """A parameter's schema as BFCL's rules read it: local `$ref`s followed (its own and its `items`')."""
    schema = resolved(params, params["properties"][key])
    if isinstance(schema, dict) and isinstance(schema.get("items"), dict) and "$ref" in schema["items"]:
        schema = {**schema, "items": resolved(params, schema["items"])}
    return schema if isinstance(schema, dict) else {}


@dataclass
class StepScore:
    """Verdict on one assistant step against its acceptable calls."""

    exact: bool
    names_ok: bool
    errors: list[str] = field(default_factory=list)


def score_step(pred: list[Call], gold: list[Call], tools: dict[str, dict[str, Any]]) -> StepScore:
    """Score one step. Parallel calls match in any order, as in BFCL: each expected call takes the first
    still-unmatched predicted call that is an acceptable form of it; calls left over are then classified."""
    if not gold:
        return StepScore(not pred, not pred, ["call_when_irrelevant"] if pred else [])
    if not pred:
        return StepScore(False, False, ["no_call"])
    names_ok = Counter(c["name"] for c in pred) == Counter(c["name"] for c in gold)
    errors = ["wrong_call_count"] if len(pred) != len(gold) else []
    errors += ["hallucinated_tool" for call in pred if call["name"] not in tools]
    left, missed = list(pred), []
    for want in gold:
        hit = next((i for i, call in enumerate(left)
                    if call["name"] == want["name"] and not call_errors(call, want, tools)), None)
        if hit is None:
            missed.append(want)
        else:
            left.pop(hit)
    for call in left:
        errors += _leftover_errors(call, missed, gold, tools)
    return StepScore(not errors, names_ok, sorted(set(errors)))


def _leftover_errors(call: Call, missed: list[Call], gold: list[Call], tools: dict[str, dict[str, Any]]) -> list[str]:
    """Classify a predicted call that matched nothing, against an unmatched expected call of its tool (consumed)."""
    twin = next((i for i, want in enumerate(missed) if want["name"] == call["name"]), None)
    if twin is not None:
        return call_errors(call, missed.pop(twin), tools)
    if any(want["name"] == call["name"] for want in gold):
        return ["redundant_call"]
    return ["wrong_tool"] if call["name"] in tools else []


@dataclass
class EpisodeScore:
    """Verdict on a whole episode: every expected step, in order, then a final answer."""

    exact: bool
    first_step_exact: bool
    first_step_names_ok: bool
    steps_correct: int
    errors: list[str]


def score_episode(pred_steps: list[list[Call]], expected_steps: list[list[Call]],
                  tools: dict[str, dict[str, Any]], unparsable: bool = False,
                  hit_step_limit: bool = False, final_state_ok: bool | None = None) -> EpisodeScore:
    """Score a sequence of predicted call steps against the expected ones.

    Args:
        pred_steps: Calls per assistant turn that called tools, in order.
        expected_steps: Expected calls per step ([] for an episode that needs no call).
        tools: `tool_index` of the catalog.
        unparsable: The model's last turn could not be parsed.
        hit_step_limit: The rollout reached the turn cap without a final answer.
        final_state_ok: Whether the simulator reached the goal state (None: not checked).
    """
    if unparsable:
        return EpisodeScore(False, False, False, 0, ["unparsable"])
    errors = ["step_limit"] * hit_step_limit + ["wrong_final_state"] * (final_state_ok is False)
    if not expected_steps:
        errors += ["call_when_irrelevant"] if pred_steps else []
        return EpisodeScore(not errors, not pred_steps, not pred_steps, 0, sorted(errors))
    scores = [score_step(p, g, tools) for p, g in zip(pred_steps, expected_steps)]
    errors += _trajectory_errors(pred_steps, expected_steps, tools, scores, hit_step_limit)
    first = scores[0] if scores else StepScore(False, False)
    return EpisodeScore(not errors, first.exact, first.names_ok, sum(s.exact for s in scores), sorted(set(errors)))


def _trajectory_errors(pred_steps: list[list[Call]], expected_steps: list[list[Call]],
                       tools: dict[str, dict[str, Any]], scores: list[StepScore], hit_step_limit: bool) -> list[str]:
    """Step classes plus the trajectory ones, from which expected step each predicted step carries out."""
    errors: list[str] = []
    done: dict[int, int] = {}  # expected step -> the predicted step that first carried it out
    for i, j in enumerate(_step_matches(pred_steps, expected_steps, tools, scores)):
        if j is None:
            errors += scores[i].errors if i < len(scores) else _extra_step_errors(pred_steps, i)
        elif j in done:
            errors.append("redundant_call")
        else:
            done[j] = i
    order = [done[j] for j in sorted(done)]
    if order != sorted(order):
        errors.append("wrong_order")
    if any(j not in done for j in range(max(done, default=-1))):
        errors.append("missing_step")
    if not pred_steps:
        errors.append("no_call")
    elif len(pred_steps) < len(expected_steps) and len(expected_steps) - 1 not in done and not hit_step_limit:
        errors.append("premature_stop")
    return errors


def _step_matches(pred_steps: list[list[Call]], expected_steps: list[list[Call]],
                  tools: dict[str, dict[str, Any]], scores: list[StepScore]) -> list[int | None]:
    """For each predicted step, the expected step it matches exactly (its own position tried first), or None."""
    def exact(i: int, j: int) -> bool:
        return scores[i].exact if i == j else score_step(pred_steps[i], expected_steps[j], tools).exact

    return [next((j for j in sorted(range(len(expected_steps)), key=lambda j: j != i) if exact(i, j)), None)
            for i in range(len(pred_steps))]


def _extra_step_errors(pred_steps: list[list[Call]], i: int) -> list[str]:
    """A step beyond the expected count that matches no expected step: a repeat, or simply one too many."""
    earlier = [c for step in pred_steps[:i] for c in step]
    return ["redundant_call"] if any(same_call(c, e) for c in pred_steps[i] for e in earlier) else ["wrong_call_count"]
