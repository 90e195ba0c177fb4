"""The no-simulator fallback: single-step episodes scored by call correctness.

A domain given only as a tool catalog (`project.catalog`) has no simulator: nothing can run a call, so no
multi-step episode can be rolled out and no goal state checked. Its trajectories still say what the agent should
do at each assistant turn, given everything before it (the recorded tool results included). So each assistant
turn becomes one single-step episode: that history as the prompt and the turn's calls (none for an answer) as the
gold step. Evaluation scores every step with the shared scorer; RL trains on the first step of each prompt.
Task completion is not measured; the evaluation report says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.evaluation import rollout
from components.evaluation.verdict import Verdict
from components import toolcalls
from components.data.episode import Episode
from components.data.importers.common import is_error
from components.toolcalls import render

NOTE = ("No simulator for domain {domain!r} (a tool catalog): evaluation fell back to single-step episodes, one per "
        "assistant turn of the test trajectories with the recorded history before it, scored by call correctness. "
        "Pattern scores are step accuracies; task completion is not measured.")


@dataclass(frozen=True)
class Step:
    """One assistant turn of a recorded episode, as a single-step episode."""

    id: str  # <episode id>@<turn>
    episode: Episode
    turn: int  # index of the turn in the episode's messages
    first: bool  # the episode's first gold step
    history: list[dict[str, Any]]  # the messages before that turn
    gold: list[dict[str, Any]]  # the turn's expected calls; [] = an answer without a call


def steps(episode: Episode) -> list[Step]:
    """The single-step episodes of one episode, in order.

    A turn whose calls the recorded tools rejected (a tool result reporting an error: the mistake a recovery
    trajectory then corrects) is no gold step and is left out; its history stays in the later steps' prompts.
    """
    msgs = episode.message_dicts()
    expected = iter(episode.expected.steps)  # one per calling turn, with acceptable values where the data has them
    out: list[Step] = []
    for i, message in enumerate(msgs):
        if message["role"] != "assistant":
            continue
        gold = []
        if message.get("tool_calls"):
            listed = next(expected, None)
            gold = ([c.model_dump(exclude_none=True) for c in listed] if listed is not None
                    else toolcalls.calls_of_message(message))
        if not any(is_error(m.get("content")) for m in _results(msgs, i)):
            out.append(Step(f"{episode.id}@{i}", episode, i, not out, msgs[:i], gold))
    return out


def _results(msgs: list[dict[str, Any]], i: int) -> list[dict[str, Any]]:
    """The tool messages right after message `i`."""
    results = []
    for m in msgs[i + 1:]:
        if m["role"] != "tool":
            break
        results.append(m)
    return results


def evaluate(model: Any, tok: Any, episodes: list[Episode], system_prompt: str, batch_size: int,
             max_new_tokens: int, desc: str = "evaluate", constrained: bool = False) -> list[Verdict]:
    """Generate one assistant turn for every step of `episodes` (batched; `constrained`: under the tool-call
    grammar) and judge it (`judge`)."""
    items = [s for e in episodes for s in steps(e)]
    refused: dict[str, str] = {}
    texts = rollout.one_turn(model, tok, {s.id: [{"role": "system", "content": system_prompt}] + s.history
                                          for s in items},
                             {s.id: s.episode.tool_dicts() for s in items}, batch_size, max_new_tokens, desc,
                             constrained, refused)
    return [judge(s, texts[s.id], tok, refused.get(s.id)) for s in items]


def judge(step: Step, text: str, tok: Any = None, refused_by: str | None = None) -> Verdict:
    """One step's verdict with the shared scorer: the right calls (or rightly none) in that one turn (read with the
    tokenizer's own response template where the model has one, `toolcalls.parse_output`); `completion` None (not
    measured), the step's episode, turn and output, and the check that made the turn text (`refused_by`)."""
    parsed = toolcalls.parse_output(text, tok=tok, tools=step.episode.tool_dicts())
    scored = toolcalls.score_episode([parsed.calls] if parsed.calls else [], [step.gold] if step.gold else [],
                                     toolcalls.tool_index(step.episode.tool_dicts()), parsed.unparsable)
    return Verdict(step.id, step.episode.pattern, scored.exact, scored.first_step_exact if step.first else None,
                   scored.first_step_names_ok if step.first else None, parsed.unparsable, tuple(scored.errors), None,
                   1, episode=step.episode.id, step=step.turn, output=text, refused_by=refused_by)


def grpo_rows(rows: list[dict[str, Any]], tok: Any) -> list[dict[str, Any]]:
    """GRPO rows without a simulator: the prompt rendered as text with the row's tools (TRL renders one tool
    list for every conversational prompt, but the catalog is per row), the first step as the only gold, and the
    row's own tools (JSON), against which the reward scores its calls."""
    return [{"prompt": render.prompt(tok, r["prompt"], json.loads(r["tools"])),
             "expected": json.dumps(json.loads(r["expected"])[:1]), "pattern": r["pattern"], "tools": r["tools"]}
            for r in rows]
