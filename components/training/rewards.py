"""Layered RL rewards, plain TRL reward functions `(completions, **kwargs) -> list[float]`.

Layer 1 `correctness`: the right calls (names, arguments) in the right steps, scored by the shared scorer.
Layer 2 `completion`: the simulator reached the episode's goal state and the model gave a final answer.
Layer 3 `efficiency`: no redundant or needless calls.
`completions[i]` is the whole rollout as messages (assistant turns, tool results, ...; TRL parses the model's calls
with its tokenizer), or without a simulator the generated text of one single step; the dataset's `expected` (JSON
steps) and `goal` (JSON) columns and the rollout's `environments` (TRL's tool loop) or goal checks `reached` (the
engine's rollouts) arrive as kwargs. What depends on the domain (its
catalog, its goal check) and on the model (the tokenizer that reads a text completion in the model's own tool
syntax: TRL does not pass it to reward functions) is bound by `layers(domain, tok)`; a domain without a simulator
has no `completion` layer. Rows that bring their own tools (open catalogs: `project.domain: general`, imports with
per-record tools) carry them in a `tools` column (JSON), and their calls are scored and read against those tools,
not the domain's catalog: one tool name may have different schemas in different records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from components import toolcalls
from components.domains import Domain

RewardFn = Callable[..., list[float]]
Reader = Callable[..., toolcalls.Parsed]  # one generated turn (text), tools= the offered tools -> its calls


def _answered(messages: list[dict[str, Any]]) -> bool:
    last = messages[-1] if messages else {}
    return last.get("role") == "assistant" and not last.get("tool_calls") and bool((last.get("content") or "").strip())


def _chatml(text: str, tools: list[dict] | None = None) -> toolcalls.Parsed:
    return toolcalls.parse_output(text, require_end=False)


def _steps(completion: list[dict] | str, read: Reader | None = None,
           tools: list[dict] | None = None) -> list[list[toolcalls.Call]] | None:
    """The call steps of a rollout's messages, or of one generated turn given as text, read by `read` (default: the
    project's ChatML parser) with the offered `tools`; None: unparsable. TRL decodes text without the end-of-turn
    token."""
    if not isinstance(completion, str):
        return toolcalls.steps_of_messages(completion)
    parsed = (read or _chatml)(completion, tools=tools)
    return None if parsed.unparsable else [parsed.calls] * bool(parsed.calls)


@lru_cache(maxsize=4096)
def _row_tools(tools_json: str) -> tuple[list[dict], dict[str, dict]]:
    """A row's own tools (its `tools` column, JSON) and their `toolcalls.tool_index`; cached: a prompt's
    completions share one."""
    tools = json.loads(tools_json)
    return tools, toolcalls.tool_index(tools)


def correctness(completions: list[list[dict] | str], expected: list[str], catalog_index: dict[str, dict],
                read: Reader | None = None, tools: list[str] | None = None, catalog: list[dict] | None = None,
                **kwargs: Any) -> list[float]:
    """Mean step credit: 1 for an exact step, 0.5 for the right tool names, 0 otherwise; 0 for unparsable text
    (`catalog_index`: `toolcalls.tool_index` of the domain's `catalog`; `tools`: each row's own tools as JSON, used
    instead of the catalog where given; `read`: the model's parser, see `layers`)."""
    out = []
    for i, (completion, exp) in enumerate(zip(completions, expected)):
        offered, index = _row_tools(tools[i]) if tools else (catalog, catalog_index)
        gold, steps = json.loads(exp), _steps(completion, read, offered)
        if steps is None:
            out.append(0.0)
            continue
        if not gold:
            out.append(0.0 if steps else 1.0)
            continue
        credit = [0.0] * len(gold)
        for i, (pred, want) in enumerate(zip(steps, gold)):
            s = toolcalls.score_step(pred, want, index)
            credit[i] = 1.0 if s.exact else 0.5 if s.names_ok else 0.0
        out.append(sum(credit) / len(gold))
    return out


def completion(completions: list[list[dict]], expected: list[str], goal: list[str], goal_reached: Callable[..., bool],
               environments: list[Any] | None = None, outputs: list[str] | None = None,
               reached: list[bool] | None = None, **kwargs: Any) -> list[float]:
    """1 when the goal state holds in the episode's simulator (the domain's `goal_reached`; `reached`: already
    checked by the rollout, components/training/engine_rollout.py), the model answered at the end, and its answers
    state the expected outputs (`outputs`: JSON lists; `toolcalls.states_outputs`)."""
    out = []
    for i, (messages, exp, g) in enumerate(zip(completions, expected, goal)):
        gold, steps = json.loads(exp), toolcalls.steps_of_messages(messages)
        if not gold:
            out.append(float(not steps and _answered(messages)))
            continue
        if reached is not None:
            ok = reached[i]
        else:
            env = environments[i] if environments else None
            ok = env is not None and goal_reached(env, gold, json.loads(g))
        answers = [m.get("content") or "" for m in messages if m.get("role") == "assistant" and not m.get("tool_calls")]
        stated = toolcalls.states_outputs(answers, json.loads(outputs[i]) if outputs else [])
        out.append(float(ok and _answered(messages) and stated))
    return out


def efficiency(completions: list[list[dict] | str], expected: list[str], read: Reader | None = None,
               tools: list[str] | None = None, catalog: list[dict] | None = None, **kwargs: Any) -> list[float]:
    """1 minus 0.5 per call beyond the expected count (repeats included), floored at 0; 0 for unparsable text
    (read with each row's own `tools` where given, else the domain's `catalog`)."""
    out = []
    for i, (completion, exp) in enumerate(zip(completions, expected)):
        steps = _steps(completion, read, _row_tools(tools[i])[0] if tools else catalog)
        if steps is None:
            out.append(0.0)
            continue
        n_gold = sum(len(s) for s in json.loads(exp))
        n_made = sum(len(s) for s in steps)
        out.append(max(0.0, 1.0 - 0.5 * max(0, n_made - n_gold)))
    return out


def layers(domain: Domain, tok: Any = None) -> dict[str, RewardFn]:
    """The reward layers as TRL reward functions bound to one domain and the policy's tokenizer `tok`; TRL names a
    partial after its function.

    A text completion (no simulator) is read with `toolcalls.parse_output` through `tok`: a model with its own tool
    syntax (a response template of its own: Qwen3.5 XML, gpt-oss, ...) is read in that syntax, its bare-text
    arguments typed by the catalog's schemas; without `tok`, or for the project's ChatML template, as ChatML.
    """
    catalog = domain.catalog()
    index = toolcalls.tool_index(catalog)  # built once: get_json_schema parses docstrings
    read = partial(toolcalls.parse_output, require_end=False, tok=tok)
    out = {"correctness": partial(correctness, catalog_index=index, read=read, catalog=catalog),
           "efficiency": partial(efficiency, read=read, catalog=catalog)}
    if domain.simulated:
        out["completion"] = partial(completion, goal_reached=domain.goal_reached)
    return out
