"""RL prompts chosen where learning happens, and the start model's sampled attempts at them (rl stage).

GRPO learns from the spread of rewards inside a group of rollouts of one prompt: a prompt the start model solves in
every sample, or in none, gives every rollout the same advantage (0) and teaches nothing, yet costs a full group of
rollouts (DAPO's dynamic sampling drops such groups). Before training, `select` samples the start model
`rl.select_samples` times on candidate prompts (the evaluation's batched engine, `rollout.run_episodes`, or one turn
for a domain without a simulator) and keeps only prompts with both a success and a failure, success being the
evaluation's own verdict (`exact`). Candidates are drawn in a seeded order weighted by `rl.pattern_weights`, in
chunks, until a run's worth of prompts is kept, so its cost is k rollouts per candidate examined (about
needed / kept-share of them), not k per prompt of the file. `sample` also gives the `rft` arm its attempts.
Reads: `paths.splits/train.jsonl` (the episodes behind the rl.jsonl rows).
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from components import domains, toolcalls
from components.config import ConfigError, Params
from components.data.episode import Episode, iter_episodes
from components.evaluation import rollout, single_step
from components.evaluation.verdict import Verdict
from components.toolcalls import response

Draw = Callable[[list[dict[str, Any]]], list[list[bool]]]  # candidate rows -> each one's k sampled verdicts
MAX_CANDIDATES = 4  # at most this many candidates sampled per prompt needed: the choice's cost stays bounded
INCOMPLETE = "incomplete"  # the class of an attempt with every call right whose task is not completed (`attempts`)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempts:
    """The start model's k sampled attempts at one RL prompt (or one episode)."""

    row: dict[str, Any]  # the rl.jsonl row (`sample_episodes`: the episode's id and pattern)
    successes: list[bool]  # the evaluation's verdict (`exact`; `completion` too where asked) of each attempt
    conversations: list[list[dict[str, Any]]]  # each attempt: system, prompt, the model's turns and tool results
    errors: list[tuple[str, ...]] = ()  # each attempt's error classes by the scorer (none for a success)


def weighted_order(rows: list[dict[str, Any]], weights: dict[str, float] | None, seed: int) -> list[dict[str, Any]]:
    """`rows` in a seeded random order where a row of pattern p comes early with odds `weights[p]` (1 when not
    named; 0: never): Efraimidis-Spirakis keys u ** (1 / w), so any prefix is a weighted draw without replacement."""
    rng = random.Random(seed)
    keyed = []
    for row in rows:
        w = (weights or {}).get(row["pattern"], 1.0)
        u = rng.random()
        if w > 0:
            keyed.append((math.log(u) / w if u > 0 else -math.inf, row))
    return [row for _, row in sorted(keyed, key=lambda kr: -kr[0])]


def select(rows: list[dict[str, Any]], needed: int, k: int, weights: dict[str, float] | None, seed: int,
           draw: Draw) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The prompts to train on and what choosing them found.

    Without sampling (`k` 0) the first `needed` rows of `weighted_order`; else candidates in that order, in chunks
    (twice the prompts still missing), each sampled `k` times by `draw`, kept when its verdicts differ, until
    `needed` are kept or `MAX_CANDIDATES` x `needed` candidates were sampled (the cost stays bounded). A run must not
    stop here: when no candidate shows a spread, the first `needed` rows in order are used, with a warning (GRPO
    then learns nothing from those groups, which `frac_reward_zero_std` shows per step).

    Returns:
        The kept rows and metrics `select_candidates`, `select_kept`, `select_always`, `select_never` (candidates
        sampled, kept, dropped as always / never solved), the same three per pattern (`select_kept_chain`, ...)
        and `select_fallback` (1.0: no spread found, rows taken in order); no metrics without sampling.
    """
    order = weighted_order(rows, weights, seed)
    if not k:
        return order[:needed], {}
    kept: list[dict[str, Any]] = []
    dropped: dict[str, list[str]] = {"always": [], "never": []}  # the dropped candidates' patterns
    seen = 0
    limit = min(len(order), MAX_CANDIDATES * needed)
    while len(kept) < needed and seen < limit:
        chunk = order[seen:min(limit, seen + 2 * (needed - len(kept)))]
        seen += len(chunk)
        for row, verdicts in zip(chunk, draw(chunk)):
            if all(verdicts) or not any(verdicts):
                dropped["always" if all(verdicts) else "never"].append(row["pattern"])
            else:
                kept.append(row)
    fallback = not kept
    if fallback:
        log.warning("rl.select_samples %d: the start model solved each of the %d candidate RL prompts sampled in all "
                    "%d samples (%d) or in none (%d): no reward spread to learn from; training on the first %d "
                    "prompts in order instead (raise rl.select_samples, or set it to 0 to skip choosing)",
                    k, seen, k, len(dropped["always"]), len(dropped["never"]), needed)
        kept = order[:needed]
    found = {"kept": [r["pattern"] for r in kept], **dropped}
    per_pattern = {f"select_{what}_{pattern}": float(n)
                   for what, patterns in found.items() for pattern, n in sorted(Counter(patterns).items())}
    return kept, {"select_candidates": float(seen), **{f"select_{what}": float(len(patterns))
                                                       for what, patterns in found.items()},
                  **per_pattern, "select_fallback": float(fallback)}


def sample(params: Params, domain: domains.Domain, model: Any, tok: Any, rows: list[dict[str, Any]],
           k: int, gated: bool = True) -> list[Attempts]:
    """Sample the loaded model `k` times on each RL row (`sample_episodes` on the training episodes behind them)."""
    attempts = sample_episodes(params, domain, model, tok, train_episodes(params, rows), k, gated)
    return [replace(a, row=row) for row, a in zip(rows, attempts)]


def sample_episodes(params: Params, domain: domains.Domain, model: Any, tok: Any, episodes: list[Episode], k: int,
                    gated: bool = True, desc: str = "rl: sample the start model",
                    complete: bool = False) -> list[Attempts]:
    """Sample the loaded model `k` times on each episode as evaluation rolls it out (`evaluate.batch_size`,
    `max_new_tokens`, `max_turns`; at `rl.temperature`, no nucleus cut, torch seeded with `project.seed`; under
    the tool-call grammar with `decoding.constrained`), each attempt judged by the evaluation's scorer.
    `gated`: the model's call gate decides first requests, as evaluation decodes (the rft arm's attempts); False:
    the model's own first token, as GRPO samples it (choosing prompts whose groups will have a spread). `complete`:
    a success must also complete the task (`attempts`). Without a simulator each episode's first step is sampled,
    one turn."""
    cfg = params.evaluate
    sampling = rollout.Sampling(params.rl.temperature, 1.0, params.project.seed)
    constrained = params.decoding.constrained and response.grammar_fits(tok)
    system = {"role": "system", "content": params.base.system_prompt}
    if domain.simulated:
        copies = [ep.model_copy(update={"id": f"{ep.id}#{i}"}) for ep in episodes for i in range(k)]
        decoding = rollout.Decoding.evaluation(cfg, sampling=sampling, constrained=constrained, gated=gated)
        done = rollout.run_episodes(model, tok, copies, domain, params.base.system_prompt, decoding, desc=desc)
        verdicts = [(judged(ro, ep), _conversation(ro))
                    for ro, ep in zip(done, (e for e in episodes for _ in range(k)))]
    else:
        steps = [single_step.steps(ep)[0] for ep in episodes]
        conversations = [[system, *s.history] for s in steps for _ in range(k)]
        tools = [s.episode.tool_dicts() for s in steps for _ in range(k)]
        torch.manual_seed(sampling.seed)
        texts: list[str] = []
        for i in range(0, len(conversations), cfg.batch_size):
            texts += rollout.generate(model, tok, conversations[i:i + cfg.batch_size], tools[i:i + cfg.batch_size],
                                      cfg.max_new_tokens, sampling=sampling, constrained=constrained, gated=gated)
        step_of = [s for s in steps for _ in range(k)]
        verdicts = [(single_step.judge(s, text, tok), [*conv, _turn(text, tok, t)])
                    for s, text, conv, t in zip(step_of, texts, conversations, tools)]
    return attempts(episodes, verdicts, k, complete)


def attempts(episodes: list[Episode], verdicts: list[tuple[Verdict, list[dict[str, Any]]]], k: int,
             complete: bool = False) -> list[Attempts]:
    """Each episode's `k` judged attempts (`verdicts`: (verdict, conversation) pairs, `k` per episode in `episodes`'
    order). A success is `exact` (every call right, then an answer); with `complete` also the verdict's `completion`
    where a simulator judged it (goal reached, the expected facts stated): right calls followed by a refusal or by an
    answer that misses the tool's results are then a failure of class `incomplete`, not a success a reward model
    learns to prefer (the reward_model stage's on-policy pairs)."""
    def outcome(v: Verdict) -> tuple[bool, tuple[str, ...]]:  # (success, the failure's error classes)
        if not v.exact:
            return False, tuple(v.errors)
        if complete and v.completion is False:
            return False, (INCOMPLETE,)
        return True, ()

    out = []
    for i, ep in enumerate(episodes):
        mine = verdicts[i * k:(i + 1) * k]
        outcomes = [outcome(v) for v, _ in mine]
        out.append(Attempts({"id": ep.id, "pattern": ep.pattern}, [ok for ok, _ in outcomes],
                            [conv for _, conv in mine], [errors for _, errors in outcomes]))
    return out


def train_episodes(params: Params, rows: list[dict[str, Any]]) -> list[Episode]:
    """The training episodes behind RL rows (by id, in the rows' order).

    Raises:
        ConfigError: a row names an episode the train split lacks (rl.jsonl from another build).
    """
    path = params.path("splits") / "train.jsonl"
    wanted = {r["id"] for r in rows}
    found = {e.id: e for e in iter_episodes(path) if e.id in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        raise ConfigError(f"{path}: no training episode {missing[0]!r} for the RL prompt of that id "
                          f"({len(missing)} missing): rl.jsonl and train.jsonl come from different builds")
    return [found[r["id"]] for r in rows]


def judged(ro: rollout.Rollout, ep: Episode) -> Verdict:
    """One sampled attempt's verdict, the evaluation's own (`attempts` decides what counts as a success)."""
    return rollout.judge(ro, ep)


def _conversation(ro: rollout.Rollout) -> list[dict[str, Any]]:
    """A rollout's messages, its unparsable last turn (which the rollout does not append) kept as plain text."""
    return ro.messages + ([{"role": "assistant", "content": ro.final or ""}] if ro.unparsable else [])


def _turn(text: str, tok: Any, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """One generated turn as an assistant message (its calls parsed, never executed)."""
    parsed = toolcalls.parse_output(text, tok=tok, tools=tools)
    message: dict[str, Any] = {"role": "assistant", "content": parsed.content or ""}
    if parsed.calls:
        message["tool_calls"] = [{"type": "function", "function": c} for c in parsed.calls]
    return message


def sft_rows(attempts: list[Attempts]) -> list[dict[str, Any]]:
    """The successful attempts as SFT rows ({"messages", "tools", "pattern"}: the rl `rft` arm's training data)."""
    return [{"messages": conv, "tools": a.row["tools"], "pattern": a.row["pattern"]} for a in attempts
            for ok, conv in zip(a.successes, a.conversations) if ok]

