"""Preference pairs for the reward model: a good trajectory (chosen) and the same one broken in a named way
(rejected). Every rejected trajectory is checked with the shared scorer: it must score as wrong.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from components import toolcalls
from components.data.episode import Episode

Messages = list[dict[str, Any]]


def _assistant_call(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "assistant", "content": "",
            "tool_calls": [{"type": "function", "function": c} for c in calls]}


def _first_turn(ep: Episode) -> tuple[Messages, Messages]:
    """Split an episode's messages into (prompt up to the first assistant turn, the rest)."""
    msgs = ep.message_dicts()
    k = len(ep.prompt_messages())
    return msgs[:k], msgs[k:]


def wrong_tool(ep: Episode, rng: random.Random) -> Messages | None:
    if not ep.expected.steps:
        return None
    step = [c.model_dump() for c in ep.expected.steps[0]]
    names = [t.function.name for t in ep.tools if t.function.name not in {c["name"] for c in step}]
    step[0] = {"name": rng.choice(names), "arguments": step[0]["arguments"]}
    return [_assistant_call(step)]


def wrong_argument(ep: Episode, rng: random.Random) -> Messages | None:
    if not ep.expected.steps:
        return None
    step = [c.model_dump() for c in ep.expected.steps[0]]
    args = step[0]["arguments"]
    key = rng.choice(sorted(args))
    value = args[key]
    args[key] = (value[:-1] + ("1" if value[-1] != "1" else "2")) if isinstance(value, str) and value else "unknown"
    return [_assistant_call(step)]


def missing_step(ep: Episode, rng: random.Random) -> Messages | None:
    """Skip the first step: a chain jumps to its dependent call, a single call answers without calling."""
    if not ep.expected.steps:
        return None
    if len(ep.expected.steps) > 1:
        return [_assistant_call([c.model_dump() for c in ep.expected.steps[1]])]
    return [{"role": "assistant", "content": "Done: I found what you asked for."}]


def wrong_order(ep: Episode, rng: random.Random) -> Messages | None:
    if len(ep.expected.steps) < 2:
        return None
    return [_assistant_call([c.model_dump() for c in ep.expected.steps[-1]])]


def premature_stop(ep: Episode, rng: random.Random) -> Messages | None:
    """Stop after the first step's results with a final answer, although steps remain."""
    if len(ep.expected.steps) < 2:
        return None
    _, rest = _first_turn(ep)
    n_first = 1 + len(ep.expected.steps[0])  # the call turn and its tool results
    return copy.deepcopy(rest[:n_first]) + [{"role": "assistant", "content": "Here are the results."}]


BREAKERS = {"wrong_tool": wrong_tool, "wrong_argument": wrong_argument, "missing_step": missing_step,
            "wrong_order": wrong_order, "premature_stop": premature_stop}


def make_pairs(episodes: list[Episode], kinds: list[str], system_prompt: str, seed: int) -> list[dict[str, Any]]:
    """One pair per (episode, applicable kind), rejected verified wrong by `toolcalls.score_episode`."""
    rng = random.Random(seed)
    rows = []
    for ep in episodes:
        prompt, chosen = _first_turn(ep)
        tools = toolcalls.tool_index(ep.tool_dicts())
        gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
        for kind in kinds:
            rejected = BREAKERS[kind](ep, rng)
            if rejected is None:
                continue
            score = toolcalls.score_episode(toolcalls.steps_of_messages(rejected), gold, tools)
            if score.exact:
                raise AssertionError(f"pair maker {kind} left episode {ep.id} correct")
            rows.append({"id": f"{ep.id}:{kind}", "kind": kind,
                         "prompt": [{"role": "system", "content": system_prompt}] + prompt,
                         "chosen": chosen, "rejected": rejected, "tools": ep.tool_dicts()})
    return rows
