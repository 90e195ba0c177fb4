"""The general generator's episodes: one user request, the tools offered with it (each episode its own), and the
gold call turn, or a reply without a call.

Patterns and kinds (BFCL's categories; the kind is the episode's `source`, `synthetic:<kind>`, and ends its id):
- single: `simple` (one call; the other tools offered are from other fields) or, at `Settings.multiple`,
  `multiple` (one call among tools of the same field: same noun other operations first, then other nouns);
- parallel: `parallel` (one function called 2-4 times: several values in one phrase, "for Paris, Rome and Oslo",
  or several requests in one message) or, at `Settings.parallel_multiple`, `parallel_multiple` (2-3 functions);
- irrelevance, by `ingest.irrelevance_kinds`: `nearmiss` (the offered tools look relevant, same field, but none does
  what is asked), `missing` (the right tool is offered but a required argument is not said: the reply asks for it)
  `chat` (small talk or an off-domain request from components/domains/offdomain.py) and `foreign` (a task a function
  would do, phrased as its requests are, but that function is not offered: only other fields' tools are, as in
  BFCL's irrelevance category).

Every episode also gets unrelated distractor tools (`Settings.distractors`, none at its minimum of 0: then a simple
or near-miss prompt may offer one tool alone, as BFCL's simple and irrelevance questions do), in shuffled order. A
held-out episode asks for a held-out function, in held-out wording (every phrasing pool's second side) and values;
its other tools come from every function. A training episode only ever sees training functions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from components.data.episode import Episode, Tool
from components.domains import no_call, offdomain
from components.domains.general import requests
from components.domains.general.apis import Api, apis
from components.domains.phrasing import Pool, Voice

NAME = "general"
GENERIC_CONTEXTS: Pool = (["I'm in a bit of a hurry.", "This is for work.", "Asking for a friend.",
                           "I need it for a report.", "Just curious."],
                          ["My boss needs this by noon.", "It's for a side project.", "I'm jotting this down."])


@dataclass(frozen=True)
class Settings:
    """`general:` of params.yaml (components/config.py `General`)."""

    multiple: float
    parallel_multiple: float
    heldout_functions: float
    distractors: tuple[int, int]
    siblings: tuple[int, int]
    parallel_calls: tuple[int, int]
    optional_rate: float


@dataclass(frozen=True)
class World:
    """The functions, their validated `Tool`s (shared by every episode) and the indexes drawing needs."""

    train: tuple[Api, ...]
    held: tuple[Api, ...]
    tools: dict[str, Tool]
    by_field: dict[str, tuple[Api, ...]]

    def side(self, held: bool) -> tuple[Api, ...]:
        """The functions an episode of that side may ask for."""
        return self.held if held else self.train

    def offer(self, held: bool) -> tuple[Api, ...]:
        """The functions an episode of that side may offer: a held-out episode any, a training one training ones."""
        return self.train + self.held if held else self.train


@lru_cache(maxsize=4)
def world(heldout_functions: float) -> World:
    every = apis(heldout_functions)
    by_field: dict[str, list[Api]] = defaultdict(list)
    for a in every:
        by_field[a.field].append(a)
    return World(tuple(a for a in every if not a.held), tuple(a for a in every if a.held),
                 {a.name: Tool.model_validate(a.tool) for a in every}, {k: tuple(v) for k, v in by_field.items()})


@dataclass
class Draft:
    """An episode before it is written: its kind, the request, the gold calls (none: `reply`), the tools offered."""

    kind: str
    user: str
    calls: list[dict[str, Any]]
    offered: list[Api]
    reply: str | None = None  # None: the no-call reply naming the tools offered (`no_call.no_call_reply`)
    small_talk: bool = False  # that reply as to small talk
    about: Api | None = None  # a no-call request's function: the one it asks for (foreign) or lacks an argument of


def draw(s: Settings, pattern: str, rng: random.Random, held: bool, idx: int, kinds: dict[str, float]) -> Episode:
    """One episode of `pattern` (single, parallel or irrelevance) from `rng`, on the held-out side when `held`."""
    w = world(s.heldout_functions)
    if pattern == "single":
        draft = _single(s, w, rng, held)
    elif pattern == "parallel":
        draft = _parallel(s, w, rng, held)
    elif pattern == "irrelevance":
        draft = _irrelevance(s, w, rng, held, rng.choices(list(kinds), list(kinds.values()))[0])
    else:
        raise ValueError(f"the general generator writes single, parallel and irrelevance episodes, not {pattern!r}")
    return _write(s, w, rng, draft, pattern, held, idx)


def _voice(rng: random.Random, held: bool, api: Api) -> Voice:
    contexts = (GENERIC_CONTEXTS[0] + api.contexts[0], GENERIC_CONTEXTS[1] + api.contexts[1])
    return Voice.draw(rng, held, contexts)


def _ask(s: Settings, rng: random.Random, held: bool, api: Api) -> tuple[str, dict[str, Any]]:
    """One request for `api` and its gold call."""
    values = requests.draw_values(api, rng, held, s.optional_rate)
    voice = _voice(rng, held, api)
    intent, _ = requests.intent(api, values, "a")
    return requests.fill(voice.ask(intent), api, values, "a", voice), requests.gold(api, values)


def _single(s: Settings, w: World, rng: random.Random, held: bool) -> Draft:
    api = rng.choice(w.side(held))
    user, call = _ask(s, rng, held, api)
    if rng.random() < s.multiple:
        return Draft("multiple", user, [call], [api, *_siblings(w, rng, held, api, rng.randint(*s.siblings))])
    return Draft("simple", user, [call], [api])


def _parallel(s: Settings, w: World, rng: random.Random, held: bool) -> Draft:
    if rng.random() < s.parallel_multiple:
        first = rng.choice(w.side(held))
        same = [a for a in w.by_field[first.field] if a in w.side(held) and a is not first]
        others = [a for a in w.side(held) if a is not first]
        more = [rng.choice(same if same and rng.random() < 0.5 else others) for _ in range(rng.randint(1, 2))]
        chosen = [first, *dict.fromkeys(more)]
        return _many("parallel_multiple", s, rng, held, chosen)
    api = rng.choice(w.side(held))
    n = rng.randint(*s.parallel_calls)
    if rng.random() < 0.5:
        listed = _listed(s, rng, held, api, n)
        if listed is not None:
            return listed
    return _many("parallel", s, rng, held, [api] * n)


def _many(kind: str, s: Settings, rng: random.Random, held: bool, chosen: list[Api]) -> Draft:
    """Several requests in one message, one call each (the same function's calls with different values)."""
    voice = _voice(rng, held, chosen[0])
    drawn, calls = [], []
    for api in chosen:
        for _ in range(20):
            values = requests.draw_values(api, rng, held, s.optional_rate)
            call = requests.gold(api, values)
            if all(c["arguments"] != call["arguments"] for c in calls):
                break
        drawn.append(values)
        calls.append(call)
    intents = [requests.intent(api, v, requests.LIST_TAGS[i])[0] for i, (api, v) in enumerate(zip(chosen, drawn))]
    text = voice.ask_many(intents)
    for i, (api, values) in enumerate(zip(chosen, drawn)):
        text = requests.fill(text, api, values, requests.LIST_TAGS[i], voice)
    return Draft(kind, text, calls, list(dict.fromkeys(chosen)))


def _listed(s: Settings, rng: random.Random, held: bool, api: Api, n: int) -> Draft | None:
    """One request naming `n` values of the first argument ("for Paris, Rome and Oslo"), one call per value; None
    when that argument is no single value (a list, an object, a flag) or has too few values."""
    values = requests.draw_values(api, rng, held, s.optional_rate)
    k, p = 0, api.params[0]  # the first argument: what the request is about ("for Paris, Rome and Oslo")
    paired = any("{0} and {1}" in text for side in api.heads for text, _ in side)  # "the GCD of {0} and {1}"
    if not p.required or paired or p.concept.kind not in ("string", "enum", "integer", "number", "date"):
        return None
    options = {requests.value(p.concept, rng, held) for _ in range(6 * n)}
    if len(options) < n:
        return None
    varied = rng.sample(sorted(options, key=str), n)
    voice = _voice(rng, held, api)
    intent, _ = requests.intent(api, values, "a")
    spelled = [requests.spell(p.concept, v, voice) for v in varied]
    listed = ", ".join(spelled[:-1]) + " and " + spelled[-1]
    text = requests.fill(voice.ask(intent), api, values, "a", voice, {f"a{k}": listed})
    return Draft("parallel", text, [requests.gold(api, {**values, p.name: v}) for v in varied], [api])


def _irrelevance(s: Settings, w: World, rng: random.Random, held: bool, kind: str) -> Draft:
    if kind == "chat":  # every tool is a distractor; none is added once the request is chosen not to fit them
        offered = _distractors(w, rng, held, [], rng.randint(*s.distractors) + 1)
        tools = [w.tools[a.name] for a in offered]
        topics = offdomain.topics_for(no_call.catalog_words(tools))
        topic, text = offdomain.draw(rng, held, topics)
        return Draft("chat", text, [], offered, small_talk=offdomain.TOPICS[topic].group == "small_talk")
    if kind == "foreign":  # the task's own field is left out entirely, so no offered tool can do it
        api = rng.choice(w.side(held))
        user, _ = _ask(s, rng, held, api)
        n = max(1, rng.randint(*s.distractors))  # at least one tool: a prompt offering none is not this kind
        return Draft("foreign", user, [], _distractors(w, rng, held, [api], n), about=api)
    if kind == "missing":
        api = rng.choice([a for a in w.side(held) if requests.omittable(a, held)])
        lacking = rng.choice(requests.omittable(api, held))
        values = requests.draw_values(api, rng, held, s.optional_rate)
        del values[lacking.name]
        voice = _voice(rng, held, api)
        intent, _ = requests.intent(api, values, "a", omit=lacking.name)
        slot = f"a{api.params.index(lacking)}"
        text = requests.fill(voice.ask(intent, omit=[slot]), api, values, "a", voice)
        reply = f"I can do that, but I need a detail first: could you tell me the {lacking.concept.label}?"
        return Draft("missing", text, [], [api], reply, about=api)
    api = rng.choice([a for a in w.side(held) if _others(w, held, a)])
    user, _ = _ask(s, rng, held, api)
    near = _others(w, held, api)
    return Draft("nearmiss", user, [], rng.sample(near, min(len(near), rng.randint(*s.siblings))))


def _others(w: World, held: bool, api: Api) -> list[Api]:
    """Functions of the same field about other nouns, offerable on that side: tools that look relevant to a request
    for `api` and cannot do it."""
    offer = set(w.offer(held))
    return [a for a in w.by_field[api.field] if a.noun != api.noun and a in offer]


def _siblings(w: World, rng: random.Random, held: bool, api: Api, n: int) -> list[Api]:
    """Up to `n` other functions of the same field: the same noun's other operations first."""
    offer = set(w.offer(held))
    same = [a for a in w.by_field[api.field] if a is not api and a in offer]
    same.sort(key=lambda a: (a.noun != api.noun, rng.random()))
    return same[:n]


def _distractors(w: World, rng: random.Random, held: bool, taken: list[Api], n: int) -> list[Api]:
    """`n` functions of fields none of `taken` is in."""
    fields = {a.field for a in taken}
    pool = [a for a in w.offer(held) if a.field not in fields]
    return rng.sample(pool, n)


def _write(s: Settings, w: World, rng: random.Random, d: Draft, pattern: str, held: bool, idx: int) -> Episode:
    """The episode of a draft, distractors added and the tools shuffled.

    Raises:
        RuntimeError: a slot of the request was left unfilled (a generator bug).
    """
    if requests.SLOT.search(d.user):
        raise RuntimeError(f"general generator: unfilled slot in {d.user!r}")
    extra = 0 if d.kind in ("chat", "foreign") else rng.randint(*s.distractors)  # their tools are all distractors
    offered = d.offered + _distractors(w, rng, held, d.offered, extra)
    rng.shuffle(offered)
    tools = [w.tools[a.name] for a in offered]
    messages: list[dict[str, Any]] = [{"role": "user", "content": d.user}]
    if d.calls:
        messages.append({"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "id": f"call_0_{j}", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for j, c in enumerate(d.calls)]})
    else:
        messages.append({"role": "assistant", "content": d.reply or no_call.no_call_reply(tools, chat=d.small_talk)})
    return Episode.model_validate({
        "id": f"{NAME}-{'h' if held else 't'}-{idx:06d}-{d.kind}", "domain": NAME, "source": f"synthetic:{d.kind}",
        "pattern": pattern, "split": "test" if held else "train", "tools": tools, "messages": messages,
        "expected": {"steps": [d.calls] if d.calls else []}})
