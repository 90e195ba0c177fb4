"""Preference pairs for the reward model: a good trajectory (chosen) and the same trajectory with one mistake of a
named error class of the shared scorer (rejected), for every class that applies to the episode.

The classes are the scorer's own (`components.toolcalls`; `CLASSES`), and the scorer decides: a candidate that
`breakers.BREAKERS[kind]` makes is kept only when `toolcalls.score_episode` finds it wrong with exactly that class
(plus the classes the scorer reports with it: `COMPANIONS`). A breaker with no such candidate for an episode makes
no pair of that class for it, so every pair's `kind` is what the scorer says of its rejected trajectory (tests check
that each breaker yields its class on every built-in episode it applies to). Episodes whose own trajectory the
scorer does not pass make no pairs.

Build writes two files: `pairs.jsonl` from the train split and `heldout_pairs.jsonl` from the val and test splits,
which the reward model never trains on and scores per class. Each draws its realistic values from its own episodes
only (`pool_of`), so no held-out pair holds a piece of a training episode. Output is a function of the episodes and
the seed alone.

A share of the training pairs can have their user turns shortened (`shorten`, `build.shorten_requests`): words
dropped at random, never a value the good trajectory's calls pass (a date in any format) nor the word before one
(from, to, until). A request that says less, as a hurried user types it ("Amman room 14 Jun to 15 Jun"), makes the
reward model read what a request asks from all of it, not from the few head words its phrasings share.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from typing import Any

from components import toolcalls
from components.config import ON_POLICY
from components.data.episode import Episode
from components.training.breakers import BREAKERS, said, strings
from components.training.trajectory import Case, Messages, Pool

CLASSES = tuple(BREAKERS)
# Classes the scorer reports along with the intended one: a retyped value is also a wrong value to the exact-argument
# check, and a step broken before a later step that matches is also missing ("an expected step matches no predicted
# step while a later expected step does").
_CALL_LEVEL = ("hallucinated_tool", "wrong_tool", "wrong_type", "wrong_value", "missing_required_argument",
               "unknown_argument", "unexpected_argument", "wrong_call_count")
# One call too many beside a step's calls is also a call of a tool the step does not make.
COMPANIONS = {kind: frozenset({"missing_step"} | ({"wrong_value"} if kind == "wrong_type" else set())
                              | ({"wrong_tool"} if kind == "wrong_call_count" else set()))
              for kind in _CALL_LEVEL}
CANDIDATES = 24  # candidates a breaker may offer per episode before it gives up


def case_of(ep: Episode) -> Case | None:
    """The episode's trajectory taken apart for the breakers; None when the scorer does not pass it as it is."""
    msgs = ep.message_dicts()
    rest = msgs[len(ep.prompt_messages()):]
    blocks = []
    for k, m in enumerate(rest):
        if m["role"] == "assistant" and m.get("tool_calls"):
            end = k + 1
            while end < len(rest) and rest[end]["role"] == "tool":
                end += 1
            blocks.append((k, end))
    tools = toolcalls.tool_index(ep.tool_dicts())
    steps = [toolcalls.calls_of_message(rest[a]) for a, _ in blocks]
    if not toolcalls.score_episode(steps, _gold(ep), tools).exact:
        return None
    user = " ".join((m.get("content") or "") for m in msgs if m["role"] == "user").lower()
    return Case(rest, blocks, steps, tools, user)


def _gold(ep: Episode) -> list[list[dict[str, Any]]]:
    return [[c.model_dump() for c in step] for step in ep.expected.steps]


def pool_of(cases: Iterable[Case]) -> Pool:
    """The values of the successful calls, the no-call replies and the last calls' outcomes of `cases` (a last step
    of one successful call: its result and the final answer), in an order independent of theirs."""
    values: dict[tuple[str, str], dict[str, Any]] = {}
    replies: set[str] = set()
    outcomes: dict[str, dict[str, tuple[dict[str, Any], Messages]]] = {}
    for case in cases:
        for call in (c for i in case.sound() for c in case.steps[i]):
            for key, value in call["arguments"].items():
                values.setdefault((call["name"], key), {})[json.dumps(value, sort_keys=True)] = value
        if not case.steps:
            replies.update(m["content"] for m in case.rest if m["role"] == "assistant" and m.get("content"))
        elif len(case.steps[-1]) == 1 and not case.failed(len(case.steps) - 1) and \
                case.blocks[-1] == (len(case.rest) - 3, len(case.rest) - 1):
            call, last = case.steps[-1][0], case.rest[-3:]
            outcomes.setdefault(call["name"], {})[json.dumps(last, sort_keys=True)] = (call["arguments"], last[1:])
    return Pool(values={k: [v[s] for s in sorted(v)] for k, v in sorted(values.items())}, replies=sorted(replies),
                outcomes={k: [v[s] for s in sorted(v)] for k, v in sorted(outcomes.items())})


def verdict(ep: Episode, case: Case, rejected: Messages) -> list[str]:
    """The scorer's error classes for `rejected` in place of the episode's trajectory ([] = correct)."""
    score = toolcalls.score_episode(toolcalls.steps_of_messages(rejected), _gold(ep), case.tools)
    return [] if score.exact else score.errors


def break_case(ep: Episode, case: Case, kind: str, pool: Pool, rng: random.Random) -> tuple[Messages, list[str]] | None:
    """The first candidate of `kind`'s breaker that the scorer finds wrong with exactly that class (and its
    companions), with the scorer's classes; None when none of the first `CANDIDATES` is."""
    allowed = {kind} | COMPANIONS.get(kind, frozenset())
    for n, rejected in enumerate(BREAKERS[kind](case, pool, rng)):
        if n >= CANDIDATES:
            break
        errors = verdict(ep, case, rejected)
        if kind in errors and set(errors) <= allowed:
            return rejected, errors
    return None


def make_pairs(episodes: list[Episode], kinds: Iterable[str], system_prompt: str, seed: int,
               per_class: int | None, shorten: tuple[float, float] = (0.0, 0.0)) -> list[dict[str, Any]]:
    """Pairs of every class in `kinds`: for each class, the episodes in a seeded order, each broken in that class
    where it applies, until `per_class` pairs (None: every episode it applies to). `shorten` (share, rate): that
    share of the pairs, drawn per pair, with their user turns `shortened` at that rate.

    Returns:
        Rows {id, episode, pattern, kind, errors, prompt, chosen, rejected, tools}, grouped by class; a shortened
        row also has `shortened` true.
    """
    cases = [(ep, case) for ep in sorted(episodes, key=lambda e: e.id) if (case := case_of(ep)) is not None]
    pool = pool_of(case for _, case in cases)
    rows = []
    for kind in kinds:
        order = random.Random(f"{seed}:{kind}").sample(cases, len(cases))
        made = 0
        for ep, case in order:
            if per_class is not None and made >= per_class:
                break
            broken = break_case(ep, case, kind, pool, random.Random(f"{seed}:{kind}:{ep.id}"))
            if broken is None:
                continue
            rejected, errors = broken
            row = {"id": f"{ep.id}:{kind}", "episode": ep.id, "pattern": ep.pattern, "kind": kind, "errors": errors,
                   "prompt": [{"role": "system", "content": system_prompt}, *ep.prompt_messages()],
                   "chosen": case.rest, "rejected": rejected, "tools": ep.tool_dicts()}
            draw = random.Random(f"{seed}:shorten:{row['id']}") if shorten[0] else None
            rows.append(with_requests_shortened(row, shorten[1], draw) if draw and draw.random() < shorten[0] else row)
            made += 1
    return rows


def shortened(text: str, values: Iterable[str], rate: float, rng: random.Random) -> str:
    """`text` with each word dropped at chance `rate`, except the words of a value in `values` it names (a date in
    any format the phrasing writes: `breakers.said`) and the word right before one (what says what the value is:
    from, to, until); the text itself when every word would go."""
    low, kept = text.lower(), set()
    for value in values:
        for m in said(low, value):
            kept.update(range(m.start(), m.end()))
    words = list(re.finditer(r"\S+", text))
    named = [any(k in kept for k in range(w.start(), w.end())) for w in words]
    out = [w.group() for n, w in enumerate(words)
           if named[n] or (n + 1 < len(words) and named[n + 1]) or rng.random() >= rate]
    return " ".join(out) or text


def with_requests_shortened(row: dict[str, Any], rate: float, rng: random.Random) -> dict[str, Any]:
    """A pair with every user turn (the request and the follow-ups in both trajectories alike) `shortened`, the
    values the chosen trajectory's calls pass kept."""
    values = [v for m in row["chosen"] for c in m.get("tool_calls") or [] for v in strings(c["function"]["arguments"])]
    short: dict[str, str] = {}

    def edit(messages: Messages) -> Messages:
        out = []
        for m in messages:
            text = m.get("content")
            if m["role"] == "user" and isinstance(text, str):
                if text not in short:
                    short[text] = shortened(text, values, rate, rng)
                m = {**m, "content": short[text]}
            out.append(m)
        return out

    return {**row, "prompt": edit(row["prompt"]), "chosen": edit(row["chosen"]), "rejected": edit(row["rejected"]),
            "shortened": True}


def on_policy_pairs(episodes: list[Episode], attempts: list[Any], split: str) -> list[dict[str, Any]]:
    """Pairs of a model's own sampled attempts (`selection.Attempts`, one per episode, in `episodes`' order), ranked
    by the scorer: each distinct failed attempt of an episode against one of its successes, in turn. An episode
    the model always or never solves makes none. The request (system turn and the episode's prompt messages) is
    the pair's prompt, the attempts' turns after it the two trajectories.

    Returns:
        Rows as `make_pairs`' with kind `on_policy`, `errors` the failed attempt's classes by the scorer, and `split`.
    """
    rows = []
    for ep, tries in zip(episodes, attempts):
        start = 1 + len(ep.prompt_messages())
        good = [c for ok, c in zip(tries.successes, tries.conversations) if ok]
        if not good:
            continue
        bad = {json.dumps(c[start:], sort_keys=True): (c, errors)
               for ok, c, errors in zip(tries.successes, tries.conversations, tries.errors) if not ok}
        for n, (conversation, errors) in enumerate(bad.values()):
            chosen = good[n % len(good)]
            if chosen[start:] == conversation[start:]:
                continue
            rows.append({"id": f"{ep.id}:{ON_POLICY}:{n}", "episode": ep.id, "pattern": ep.pattern, "kind": ON_POLICY,
                         "errors": list(errors), "split": split, "prompt": chosen[:start], "chosen": chosen[start:],
                         "rejected": conversation[start:], "tools": ep.tool_dicts()})
    return rows
