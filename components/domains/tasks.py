"""What the built-in task generators share: the episode writer, the shared episode builders and what a domain
hands the generator (`Builders`).

A domain drafts each episode as user turns with their gold call steps (`Draft`); `write` executes them, checks
that exactly the intended steps fail, and writes messages and `expected`. Every pool is a pair (training side,
held-out side): held-out episodes draw only from the second side, so the test split measures generalisation to
new wording, values and tool combinations, not recall. The user's wording comes from `phrasing.Voice`.
Generation itself (chunks, seeds, uniqueness, processes) is `components.domains.generation`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from components import toolcalls
from components.domains import sim
from components.domains.phrasing import Intent, Pool, Voice, side
from components.data.episode import Episode, Tool

Call = dict[str, Any]
Turn = tuple[str, list[list[Call]]]  # one user message and the gold call steps that answer it
K = TypeVar("K")
# The irrelevance kinds' shares come from params.yaml (`ingest.irrelevance_kinds`); this copy of its default is only
# for callers that draw episodes without params (tests, benches): the stages always pass params' value.
DEFAULT_IRRELEVANCE_KINDS = {"chat": 0.7, "nearmiss": 0.2, "missing": 0.1}


def choose(rng: random.Random, options: Mapping[K, Pool], held: bool) -> K:
    """A key of `options` with phrasings on the chosen side; a key whose training side is empty (a held-out
    tool combination) is drawn for held-out episodes only."""
    return rng.choice(sorted(k for k, pool in options.items() if side(pool, held)))


def phrase(rng: random.Random, options: Mapping[K, Pool], held: bool) -> tuple[K, str]:
    """A key of `options` (see `choose`) and one of its phrasings on the chosen side."""
    key = choose(rng, options, held)
    return key, rng.choice(side(options[key], held))


def typo(rng: random.Random, word: str, choices: list[str] | tuple[str, ...]) -> str:
    """A one-letter misspelling of `word` (a letter after the first dropped, doubled or swapped with the next)
    that is no entry of `choices` and that the simulators' hint (`sim.closest`) maps back to `word`.

    Raises:
        ValueError: `word` is too short to misspell recognisably.
    """
    known = {c.lower() for c in choices}
    for _ in range(50 if len(word) > 1 else 0):
        i = rng.randrange(1, len(word))
        wrong = rng.choice([word[:i] + word[i + 1:], word[:i] + word[i] + word[i:],
                            word[:i] + word[i + 1:i + 2] + word[i] + word[i + 2:]])
        if wrong.lower() not in known and sim.closest(wrong, choices) == word:
            return wrong
    raise ValueError(f"no recognisable misspelling of {word!r}")


@dataclass(frozen=True)
class Spec:
    """What the episode writer needs from a domain."""

    domain: str
    execute: Callable[[Any, Call], tuple[str, bool]]
    answer: Callable[[Call, dict[str, Any]], str]  # one successful call's result, said to the user
    no_call_reply: str


@dataclass
class Draft:
    """One episode before it runs: user turns with their gold steps, dependency edges between steps (numbered
    over all turns), the goal state, and the steps that must fail (a recovery's first, slightly wrong call).
    `kind` tags the id (`travel-t-000012-missing`); `reply` replaces the domain's no-call reply (a question for
    the missing detail)."""

    pattern: str
    turns: list[Turn]
    depends_on: list[tuple[int, int]] = field(default_factory=list)
    goal: dict[str, Any] = field(default_factory=dict)
    failing: frozenset[int] = frozenset()
    kind: str = ""
    reply: str | None = None


@dataclass
class Ctx:
    """What an episode builder draws with: the random stream, the split side, the episode's values, a fresh
    simulator session and the user's voice."""

    rng: random.Random
    held: bool
    slots: dict[str, Any]
    env: Any
    voice: Voice
    kinds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_IRRELEVANCE_KINDS))  # irrelevance kinds

    def text(self, template: str, **values: Any) -> str:
        """A template filled with the episode's values (overridden by `values`) in the user's formats."""
        return self.voice.fill(template, {**self.slots, **values})


@dataclass(frozen=True)
class Builders:
    """What a built-in domain gives the generator: its simulator, values, gold calls, phrasing parts and the
    builders of its own patterns (`own`: chain, recovery, multi_turn); single, parallel and irrelevance are
    built here from the parts."""

    spec: Spec
    env: Callable[[], Any]
    slots: Callable[[random.Random, bool], dict[str, Any]]  # one episode's values, from the chosen side
    call: Callable[[str, dict[str, Any]], Call]  # intent, values -> gold call
    intents: Mapping[str, Intent]  # single-call intents and their phrasing parts
    parallel: Pool  # tuples of intents asked together; one on the held-out side only is a held-out combination
    small_talk: Pool  # requests no tool fits
    near_misses: Pool  # requests that sound like the domain but no tool fits (renting a car)
    missing: Mapping[str, Pool]  # intent -> parts a request may lack (tuples), making the call impossible
    ask_for: Mapping[str, str]  # part -> how the reply asks for it ("which city you are flying from")
    contexts: Pool  # extra context sentences ("I'm going with my kids.")
    own: Mapping[str, Callable[[Ctx], Draft]]
    goal: Callable[[Draft], dict[str, Any]] | None = None  # the goal state, when the builders leave it empty
    unique: bool = False  # draw again while a request repeats (short requests would land in two splits)
    extra_intents: Mapping[str, Intent] = field(default_factory=dict)  # asked only beside others (a second quote)
    # statements that ask for nothing ("I read an article about {symbol} today."), training side only: the aside
    # twins' contrast pairs (`ingest.aside_twins`, voice.aside_twins)
    asides: tuple[str, ...] = ()


def single(b: Builders, c: Ctx) -> Draft:
    """One request, one call."""
    intent = c.rng.choice(sorted(b.intents))
    return Draft("single", [(c.text(c.voice.ask(b.intents[intent])), [[b.call(intent, c.slots)]])])


def parallel(b: Builders, c: Ctx) -> Draft:
    """Several independent requests in one message, answered by calls in one step."""
    intents = c.rng.choice(side(b.parallel, c.held))
    known = {**b.intents, **b.extra_intents}
    template = c.voice.ask_many([known[i] for i in intents])
    return Draft("parallel", [(c.text(template), [[b.call(i, c.slots) for i in intents]])])


def irrelevance(b: Builders, c: Ctx) -> Draft:
    """No call: small talk, a near miss (no tool does it) or a request that lacks a required argument, answered
    with a question for it (ask, do not guess)."""
    kind = c.rng.choices(list(c.kinds), list(c.kinds.values()))[0]
    if kind == "missing":
        intent = c.rng.choice(sorted(b.missing))
        omit = c.rng.choice(side(b.missing[intent], c.held))
        user = c.text(c.voice.ask(b.intents[intent], omit))
        wanted = " and ".join(b.ask_for[part] for part in omit)
        return Draft("irrelevance", [(user, [])], kind=kind,
                     reply=f"I can do that, but I need a detail first: could you tell me {wanted}?")
    pool = b.near_misses if kind == "nearmiss" else b.small_talk
    return Draft("irrelevance", [(c.text(c.voice.say(c.rng.choice(side(pool, c.held)))), [])], kind=kind)


SHARED = {"single": single, "parallel": parallel, "irrelevance": irrelevance}


def build(b: Builders, pattern: str, c: Ctx) -> Draft:
    """The draft of one episode of `pattern`. Each pattern draws its own randomness inside its builder, so adding
    a pattern to the shares leaves the draws (and episodes) of the others as they were for a given sequence of
    patterns.

    Raises:
        ValueError: `pattern` is none of the domain's.
    """
    if pattern in b.own:
        draft = b.own[pattern](c)
    elif pattern in SHARED:
        draft = SHARED[pattern](b, c)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    if b.goal is not None:
        draft.goal = b.goal(draft)
    return draft


def run_turns(spec: Spec, env: Any, draft: Draft) -> tuple[list[dict[str, Any]], list[str]]:
    """Execute the gold steps turn by turn; returns the trajectory's messages and the outputs its answers state.

    Each user turn ends with an assistant answer: built from its last step's results, or the domain's
    no-call reply when the turn needs no call. See `facts` for the outputs.

    Raises:
        RuntimeError: a step failed that should succeed, or the reverse (a generator bug).
    """
    messages: list[dict[str, Any]] = []
    outputs: list[str] = []
    k = 0  # step number over all turns
    for user, steps in draft.turns:
        messages.append({"role": "user", "content": user})
        results: list[tuple[Call, dict[str, Any]]] = []
        for step in steps:
            calls = [{"type": "function", "id": f"call_{k}_{j}", "function": c} for j, c in enumerate(step)]
            messages.append({"role": "assistant", "content": "", "tool_calls": calls})
            results = []
            for tc in calls:
                content, ok = spec.execute(env, tc["function"])
                if ok == (k in draft.failing):
                    raise RuntimeError(f"{spec.domain} generator: gold call {tc['function']} (step {k}) "
                                       f"{'succeeded' if ok else 'failed'}: {content}")
                messages.append({"role": "tool", "tool_call_id": tc["id"], "name": tc["function"]["name"],
                                 "content": content})
                results.append((tc["function"], json.loads(content)))
            k += 1
        reply = (" ".join(spec.answer(c, r) for c, r in results) if steps else
                 draft.reply or spec.no_call_reply)
        messages.append({"role": "assistant", "content": reply})
        asked = " ".join(m["content"] for m in messages if m["role"] == "user")
        outputs += [f for f in facts(reply, [r for _, r in results], asked) if f not in outputs]
    return messages, outputs


def facts(reply: str, results: list[Any], asked: str) -> list[str]:
    """What an answer must communicate (tau-bench's `outputs`): the values of the tool results (strings and numbers,
    two characters or more, normalised as `toolcalls.normalise_text`) that the gold reply states and the user did
    not say, such as a flight number, a price or a rate."""
    said, known = toolcalls.normalise_text(reply), toolcalls.normalise_text(asked)
    out: list[str] = []
    for value in leaves(results):
        text = toolcalls.normalise_text(str(value))
        if len(text) >= 2 and text in said and text not in known and text not in out:
            out.append(text)
    return out


def leaves(value: Any) -> list[Any]:
    """The strings and numbers inside nested lists and dicts, in order."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else []


def write(spec: Spec, env: Any, draft: Draft, held: bool, idx: int, tools: list[Tool]) -> Episode:
    """Run a draft in a fresh simulator session and record it as a validated episode.

    `tools` are validated `Tool` models, which pydantic takes as they are: all episodes share one catalog,
    validated once (100k episodes would otherwise each validate and hold their own copy).
    """
    messages, outputs = run_turns(spec, env, draft)
    return Episode.model_validate({
        "id": f"{spec.domain}-{'h' if held else 't'}-{idx:06d}{'-' + draft.kind if draft.kind else ''}", "domain": spec.domain, "source": "synthetic",
        "pattern": draft.pattern, "split": "test" if held else "train", "tools": tools, "messages": messages,
        "expected": {"steps": [s for _, steps in draft.turns for s in steps], "depends_on": draft.depends_on,
                     "goal": draft.goal, "outputs": outputs}})
