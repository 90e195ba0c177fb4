"""What the built-in task generators share: train/held-out pools, framing, misspellings, and the writer that
runs a drafted episode's gold steps in the simulator and records the trajectory as an `Episode`.

A generator drafts each episode as user turns with their gold call steps (`Draft`); `write` executes them,
checks that exactly the intended steps fail, and writes messages and `expected`. Every pool is a pair
(training side, held-out side): held-out episodes draw only from the second side, so the test split measures
generalisation to new wording, values and tool combinations, not recall.
"""

from __future__ import annotations

import json
import pickle
import random
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import astuple, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from components.data import child
from components import toolcalls
from components.domains import sim
from components.data.episode import Episode, Tool, user_text
from components.data.fileio import gc_paused

Call = dict[str, Any]
Pool = tuple[list, list]  # (training side, held-out side)
Turn = tuple[str, list[list[Call]]]  # one user message and the gold call steps that answer it
K = TypeVar("K")
MAX_DRAWS = 50  # draws of one episode before `generate(unique=True)` gives up

# Training-side framing only (held-out phrasings stay bare): the request itself must decide the tool.
PREFIXES = ("", "", "", "Hi! ", "Hello, ", "Quick question: ", "Please help: ", "Hey, ")
SUFFIXES = ("", "", "", " Thanks!", " Thank you.", " Cheers.")


def side(pool: Pool, held: bool) -> list:
    """The held-out or the training side of a pool."""
    return pool[1] if held else pool[0]


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
    over all turns), the goal state, and the steps that must fail (a recovery's first, slightly wrong call)."""

    pattern: str
    turns: list[Turn]
    depends_on: list[tuple[int, int]] = field(default_factory=list)
    goal: dict[str, Any] = field(default_factory=dict)
    failing: frozenset[int] = frozenset()

    def frame(self, rng: random.Random, held: bool) -> None:
        """Wrap the first user message in a greeting and a thank-you on the training side."""
        if not held:
            user, steps = self.turns[0]
            self.turns[0] = (rng.choice(PREFIXES) + user + rng.choice(SUFFIXES), steps)


@dataclass(frozen=True)
class Phrasings:
    """A domain's phrasing pools for the patterns every domain drafts the same way."""

    single: Mapping[str, Pool]  # intent -> request templates
    parallel: Mapping[tuple[str, ...], Pool]  # intents answered together -> request templates
    irrelevant: Pool  # requests no tool fits


def draft(pattern: str, rng: random.Random, slots: dict[str, Any], held: bool, phrasings: Phrasings,
          call: Callable[[str, dict[str, Any]], Call], own: Mapping[str, Callable[[], Draft]]) -> Draft:
    """The draft of one episode: single, parallel and irrelevance from `phrasings` and the domain's `call`
    (intent, slots -> gold call); the other patterns from the domain's own builders `own`.

    Each pattern draws its own randomness inside its branch, so adding a pattern to the shares leaves the draws
    (and episodes) of the others as they were for a given sequence of patterns.

    Raises:
        ValueError: `pattern` is none of these.
    """
    if pattern == "single":
        intent, user = phrase(rng, phrasings.single, held)
        return Draft(pattern, [(user.format(**slots), [[call(intent, slots)]])])
    if pattern == "parallel":
        intents, user = phrase(rng, phrasings.parallel, held)
        return Draft(pattern, [(user.format(**slots), [[call(i, slots) for i in intents]])])
    if pattern == "irrelevance":
        return Draft(pattern, [(rng.choice(side(phrasings.irrelevant, held)).format(**slots), [])])
    if pattern in own:
        return own[pattern]()
    raise ValueError(f"unknown pattern {pattern!r}")


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
        reply = " ".join(spec.answer(c, r) for c, r in results) if steps else spec.no_call_reply
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
    for value in _leaves(results):
        text = toolcalls.normalise_text(str(value))
        if len(text) >= 2 and text in said and text not in known and text not in out:
            out.append(text)
    return out


def _leaves(value: Any) -> list[Any]:
    """The strings and numbers inside nested lists and dicts, in order."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else []


def write(spec: Spec, env: Any, draft: Draft, held: bool, idx: int, tools: list[Tool]) -> Episode:
    """Run a draft in a fresh simulator session and record it as a validated episode.

    `tools` are validated `Tool` models, which pydantic takes as they are: all episodes share one catalog,
    validated once (100k episodes would otherwise each validate and hold their own copy).
    """
    messages, outputs = run_turns(spec, env, draft)
    return Episode.model_validate({
        "id": f"{spec.domain}-{'h' if held else 't'}-{idx:06d}", "domain": spec.domain, "source": "synthetic",
        "pattern": draft.pattern, "split": "test" if held else "train", "tools": tools, "messages": messages,
        "expected": {"steps": [s for _, steps in draft.turns for s in steps], "depends_on": draft.depends_on,
                     "goal": draft.goal, "outputs": outputs}})


Make = Callable[[str, random.Random, bool, int, list[Tool]], Episode]  # (pattern, rng, held, idx, tools) -> episode
CHUNK = 2000  # episodes per generation chunk; each chunk has its own random stream (see `generate`)
CHUNKS_PER_WORKER = 4  # a generating process at most per this many chunks: starting one costs about a chunk's time


@dataclass(frozen=True)
class Generated:
    """One generated episode as ingest writes and counts it: its JSON line (`Episode` fields, None left out),
    pattern and split, and its request key (`request_key`)."""

    line: str
    pattern: str
    held: bool
    key: str | None

    @classmethod
    def of(cls, episode: Episode) -> Generated:
        return cls(episode.model_dump_json(exclude_none=True), episode.pattern, episode.split == "test",
                   request_key(episode))


def request_key(episode: Episode) -> str | None:
    """What `unique` generation keeps unique: the user turns, compared as build's leakage check compares them;
    None for an episode without calls (small talk may repeat)."""
    return user_text(episode) if episode.expected.steps else None


def generate(make: Make, catalog: list[dict[str, Any]], n: int, shares: dict[str, float], heldout_fraction: float,
             seed: int, unique: bool = False) -> list[Episode]:
    """`n` episodes with the given pattern shares (shuffled), a `heldout_fraction` share of them held out.

    The patterns are shuffled with `seed`; then each chunk of `CHUNK` episodes draws from its own random stream
    (seeded with `seed` and the chunk's start), so chunks can be drawn in any order or process
    (`generate_lines`) and give the same episodes.

    With `unique`, an episode that calls tools is drawn again while its request (`request_key`) repeats an
    earlier episode's, so no request can land in two splits: within a chunk as it is drawn, then across chunks,
    in order, from a random stream of the episode's own.
    """
    tools = [Tool.model_validate(t) for t in catalog]
    patterns = _patterns(n, shares, seed)
    with gc_paused():
        episodes = [e for c in range(0, n, CHUNK) for e in _chunk(make, tools, patterns, c, c + CHUNK,
                                                                    heldout_fraction, seed, unique)]
        if unique:
            for i, episode in _redrawn(make, tools, patterns, seed, [(request_key(e), e.split == "test")
                                                                     for e in episodes]):
                episodes[i] = episode
    return episodes


def generate_lines(make: Make, catalog: list[dict[str, Any]], n: int, shares: dict[str, float],
                   heldout_fraction: float, seed: int, unique: bool = False, workers: int = 1) -> list[Generated]:
    """What `generate` gives, as JSON lines, its chunks drawn by up to `workers` processes (the same episodes
    however many; one per `CHUNKS_PER_WORKER` chunks at most, and none for fewer). Workers send lines back, not
    `Episode`s: pickling 100k models would cost more than drawing them."""
    chunks = range(0, n, CHUNK)
    workers = min(workers, len(chunks) // CHUNKS_PER_WORKER)
    if workers <= 1:
        return [Generated.of(e) for e in generate(make, catalog, n, shares, heldout_fraction, seed, unique)]
    patterns = _patterns(n, shares, seed)
    jobs = [(make, catalog, patterns, c, c + CHUNK, heldout_fraction, seed, unique) for c in chunks]
    parts = _in_children([jobs[w::workers] for w in range(workers)])  # worker w draws chunks w, w + workers, ...
    drawn = [Generated(*g) for c in range(len(jobs)) for g in parts[c % workers][c // workers]]
    if unique:
        tools = [Tool.model_validate(t) for t in catalog]
        for i, episode in _redrawn(make, tools, patterns, seed, [(g.key, g.held) for g in drawn]):
            drawn[i] = Generated.of(episode)
    return drawn


def _in_children(shares: list[list[tuple]]) -> list[list[list[tuple]]]:
    """Each share of chunk jobs drawn by a child process (`main`), all at once: per share, per chunk, the
    `Generated` fields of its episodes."""
    with tempfile.TemporaryDirectory(prefix="tooltune-generate-") as scratch, ExitStack() as children:
        folder = Path(scratch)
        waits = []
        for w, share in enumerate(shares):
            (folder / f"jobs-{w}.pkl").write_bytes(pickle.dumps(share, protocol=pickle.HIGHEST_PROTOCOL))
            waits.append(children.enter_context(child.started(
                __name__, [str(folder / f"jobs-{w}.pkl"), str(folder / f"lines-{w}.pkl")],
                f"generating episodes (process {w + 1} of {len(shares)})")))
        for wait in waits:
            wait()
        return [pickle.loads((folder / f"lines-{w}.pkl").read_bytes()) for w in range(len(shares))]


def _patterns(n: int, shares: dict[str, float], seed: int) -> list[str]:
    """The pattern of each episode: `shares` of `n` each, shuffled with `seed`."""
    patterns = [p for p, share in shares.items() for _ in range(round(share * n))]
    random.Random(seed).shuffle(patterns)
    return patterns


def _chunk(make: Make, tools: list[Tool], patterns: list[str], start: int, stop: int, heldout_fraction: float,
           seed: int, unique: bool) -> list[Episode]:
    """Episodes `start` to `stop` (or the last) from the chunk's own random stream (requests unique within it)."""
    rng = random.Random(f"{seed}/{start}")
    seen: set[str] = set()
    episodes = []
    for i in range(start, min(stop, len(patterns))):
        draw = partial(make, patterns[i], rng, rng.random() < heldout_fraction, i, tools)
        episodes.append(_new_request(draw, seen) if unique else draw())
    return episodes


def _chunk_fields(job: tuple) -> list[tuple]:
    """One chunk job (`_chunk`'s arguments, with the catalog as JSON schemas) drawn: the `Generated` fields of
    its episodes (plain tuples: a child runs this module as `__main__`, whose classes its parent cannot load)."""
    make, catalog, patterns, *chunk = job
    with gc_paused():
        episodes = _chunk(make, [Tool.model_validate(t) for t in catalog], patterns, *chunk)
        return [astuple(Generated.of(e)) for e in episodes]


def _redrawn(make: Make, tools: list[Tool], patterns: list[str], seed: int,
             drawn: list[tuple[str | None, bool]]) -> Iterator[tuple[int, Episode]]:
    """(index, new episode) for each episode, given as (request key, held out), whose request an earlier chunk
    made already: drawn again, split kept, from a stream of its own index until its request is new."""
    seen: set[str] = set()
    for i, (key, held) in enumerate(drawn):
        if key is not None and key in seen:
            yield i, _new_request(partial(make, patterns[i], random.Random(f"{seed}/again/{i}"), held, i, tools), seen)
        elif key is not None:
            seen.add(key)


def _new_request(draw: Callable[[], Episode], seen: set[str]) -> Episode:
    """Draw until the episode's request is not in `seen` (then add it); an episode without calls (small talk)
    may repeat.

    Raises:
        RuntimeError: `MAX_DRAWS` draws found no new request: the generator's pools are too small.
    """
    for _ in range(MAX_DRAWS):
        episode = draw()
        key = request_key(episode)
        if key is None:
            return episode
        if key not in seen:
            seen.add(key)
            return episode
    raise RuntimeError(f"{episode.pattern}: no new request in {MAX_DRAWS} draws; the value pools are too small")


def main(argv: list[str] | None = None) -> None:
    """A generating child of `generate_lines`: `python -m components.domains.tasks JOBS OUT` draws the chunk jobs
    pickled in JOBS (written by its parent in a private scratch folder) and pickles their lines to OUT."""
    jobs, out = map(Path, sys.argv[1:] if argv is None else argv)
    out.write_bytes(pickle.dumps([_chunk_fields(job) for job in pickle.loads(jobs.read_bytes())],
                                 protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
