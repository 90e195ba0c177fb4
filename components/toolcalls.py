"""The one tool-call parser and scorer: validation, evaluation, RL rewards, pair-making and `tooltune score`
import it, so "correct" means the same thing everywhere.

Parsers. Output is parsed, never executed; malformed output is the verdict `unparsable`, never an exception.
- `parse_output`: the project template, text then `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks
  then `<|im_end|>`; with `require_end=False` it reads Hermes/Qwen-FC text, which carries no end token.
- `calls_of_message`: OpenAI assistant messages (`tool_calls`, arguments as JSON text or objects).
- `parse_python_calls`: BFCL's prompt syntax `[f(a=1), pkg.g(b="x")]`, read with `ast`: keyword arguments only,
  values literal (a bare name reads as its identifier, as BFCL's decoder does; tuples read as lists).
- `parse_json_calls`: a call `{"name", "arguments"|"parameters"}`, an OpenAI tool call, BFCL's decoded
  `{"<function>": {<arguments>}}`, or a list of those.
- `parse_any`: whichever of these fits a string or an already-decoded object.

Error classes and their detection rules (`score_step` finds the per-step ones, `score_episode` the rest):
- unparsable: the output looks like a call (`<tool_call>`, `{"name":`, `name(key=`, a leading `[` or `{`, a Python
  call list) but breaks the parser's rules.
- no_call: calls were expected and none was made.
- call_when_irrelevant: no call was expected and one was made.
- hallucinated_tool: the called name is not in the episode's catalog.
- wrong_tool: the called name is in the catalog but matches none of the expected calls.
- missing_required_argument: a schema-required argument is absent, or an expected one that may not be omitted
  (its acceptable values lack `""`).
- unknown_argument: an argument the tool's schema does not define.
- unexpected_argument: an argument the schema defines but the expected call does not use.
- wrong_type: a value of the wrong type (BFCL's type rules when the expected call lists acceptable values).
- wrong_value: right type, value not acceptable (or a schema enum, pattern or range broken).
- wrong_call_count: a step makes more or fewer calls than expected, or an extra step matches nothing.
- redundant_call: a call of an expected tool beyond its expected count, or a step repeating earlier work.
- missing_step: an expected step matches no predicted step while a later expected step does.
- wrong_order: matched steps come in another order than expected.
- premature_stop: fewer steps than expected and the last expected step unmatched (the model stopped early).
- step_limit: the rollout hit the turn cap without a final answer (caller's `hit_step_limit`).
- wrong_final_state: the simulator's end state is not the goal (caller's `final_state_ok=False`).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema

from components import bfcl

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


# --------------------------------------------------------------------------------------------- checks


def tool_index(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map tool name -> its JSON Schema `parameters`, from OpenAI function schemas."""
    return {t["function"]["name"]: t["function"].get("parameters", {}) for t in tools}


def schema_errors(call: Call, tools: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Check one call against the catalog; returns (error class, detail) pairs, empty when valid."""
    errors = _shape_errors(call, tools)
    props = tools.get(call["name"], {}).get("properties", {})
    for key, value in call["arguments"].items():
        if key in props:
            err = jsonschema.exceptions.best_match(_validator(json.dumps(props[key], sort_keys=True)).iter_errors(value))
            if err is not None:
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
    props = tools.get(pred["name"], {}).get("properties", {})
    for key, value in pred["arguments"].items():
        if key in props and key not in accept:
            errors.append("unexpected_argument")
        elif key in props and (kind := bfcl.argument_error(value, accept[key], props[key])):
            errors.append(kind)
    return errors + ["missing_required_argument" for key, ok in accept.items()
                     if key not in pred["arguments"] and "" not in ok]


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
