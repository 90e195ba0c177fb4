"""One generator for every built-in domain: `generate(domain, n, shares, heldout_fraction, seed)` draws episodes
from the domain's `Builders` (components/domains/tasks.py) and owns what no domain should repeat: the pattern
mix, chunks with their own random streams, the held-out draw, unique requests, and drawing in several processes
(`generate_lines`). `phrasing_counts` measures the wording variety a draw reaches.

Run: `python -m components.domains.generation --domain travel -n 2400 [--workers W]` times a draw and prints the
distinct phrasings per tool; `python -m components.domains.generation JOBS OUT` is a generating child.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import astuple, dataclass
from functools import partial
from pathlib import Path

from components.data import child
from components.data.episode import Episode, Tool, user_text
from components.data.fileio import gc_paused
from components.domains import tasks
from components.domains.phrasing import Voice

MAX_DRAWS = 50  # draws of one episode before `unique` generation gives up
CHUNK = 2000  # episodes per generation chunk; each chunk has its own random stream (see `generate`)
Kinds = Mapping[str, float] | None  # irrelevance kind -> share (`ingest.irrelevance_kinds`); None: the default
CHUNKS_PER_WORKER = 4  # a generating process at most per this many chunks: starting one costs about a chunk's time
Drawer = Callable[[int, random.Random, bool], Episode]  # (index, random stream, held out) -> that episode


def builders(domain: str) -> tasks.Builders:
    """The `Builders` of the built-in domain `domain`.

    Raises:
        KeyError: `domain` has no generator.
    """
    from components.domains import finance_tasks, travel_tasks

    known = {"travel": travel_tasks.BUILDERS, "finance": finance_tasks.BUILDERS}
    if domain not in known:
        raise KeyError(f"unknown domain {domain!r}; built-in: {sorted(known)}")
    return known[domain]


def make_episode(domain: str, pattern: str, rng: random.Random, held: bool, idx: int, tools: list[Tool],
                 kinds: Kinds = None) -> Episode:
    """One synthetic episode of `pattern`, its gold trajectory executed in the domain's simulator (`kinds`: the
    irrelevance kinds' shares, `ingest.irrelevance_kinds`)."""
    b = builders(domain)
    c = tasks.Ctx(rng, held, b.slots(rng, held), b.env(), Voice.draw(rng, held, b.contexts), kind_shares(kinds))
    return tasks.write(b.spec, c.env, tasks.build(b, pattern, c), held, idx, tools)


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


def kind_shares(kinds: Kinds) -> dict[str, float]:
    """The irrelevance kinds' shares: params' `ingest.irrelevance_kinds`, or for a caller without params (tests,
    benches) `tasks.DEFAULT_IRRELEVANCE_KINDS`."""
    return dict(tasks.DEFAULT_IRRELEVANCE_KINDS if kinds is None else kinds)


def _catalog(domain: str) -> list[dict]:
    from components import domains

    return domains.get(domain).catalog()


def generate(domain: str, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
             kinds: Kinds = None) -> list[Episode]:
    """`n` episodes of the built-in `domain` with the given pattern shares (shuffled), a `heldout_fraction` share
    of them held out; irrelevance episodes of each kind at its share of `kinds` (`ingest.irrelevance_kinds`).

    The patterns are shuffled with `seed`; then each chunk of `CHUNK` episodes draws its held-out flags from its
    own random stream (seeded with `seed` and the chunk's start) and each episode from one of its own (`streams`),
    so chunks can be drawn in any order or process (`generate_lines`) and give the same episodes.

    For a domain whose `Builders.unique` is set, an episode that calls tools is drawn again while its request
    (`request_key`) repeats an earlier episode's, so no request can land in two splits: within a chunk as it is
    drawn, then across chunks, in order, from a random stream of the episode's own.
    """
    tools = [Tool.model_validate(t) for t in _catalog(domain)]
    patterns = pattern_list(n, shares, seed)
    unique = builders(domain).unique
    with gc_paused():
        episodes = [e for c in range(0, n, CHUNK) for e in _chunk(domain, tools, patterns, c, c + CHUNK,
                                                                    heldout_fraction, seed, kinds)]
        if unique:
            for i, episode in redrawn(_drawer(domain, tools, patterns, kinds), seed,
                                      [(request_key(e), e.split == "test") for e in episodes]):
                episodes[i] = episode
    return episodes


def generate_lines(domain: str, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                   workers: int = 1, kinds: Kinds = None) -> list[Generated]:
    """What `generate` gives, as JSON lines, its chunks drawn by up to `workers` processes (the same episodes
    however many; one per `CHUNKS_PER_WORKER` chunks at most, and none for fewer). Workers send lines back, not
    `Episode`s: pickling 100k models would cost more than drawing them."""
    chunks = range(0, n, CHUNK)
    workers = min(workers, len(chunks) // CHUNKS_PER_WORKER)
    if workers <= 1:
        return [Generated.of(e) for e in generate(domain, n, shares, heldout_fraction, seed, kinds)]
    patterns = pattern_list(n, shares, seed)
    jobs = [(domain, patterns, c, c + CHUNK, heldout_fraction, seed, kinds) for c in chunks]
    parts = in_children([jobs[w::workers] for w in range(workers)])  # worker w draws chunks w, w + workers, ...
    drawn = [Generated(*g) for c in range(len(jobs)) for g in parts[c % workers][c // workers]]
    if builders(domain).unique:
        tools = [Tool.model_validate(t) for t in _catalog(domain)]
        for i, episode in redrawn(_drawer(domain, tools, patterns, kinds), seed, [(g.key, g.held) for g in drawn]):
            drawn[i] = Generated.of(episode)
    return drawn


def in_children(shares: list[list[tuple]], module: str = __name__) -> list[list[list[tuple]]]:
    """Each share of chunk jobs drawn by a child process (`module`'s `main`, this module's by default), all at once:
    per share, per chunk, the `Generated` fields of its episodes."""
    with tempfile.TemporaryDirectory(prefix="tooltune-generate-") as scratch, ExitStack() as children:
        folder = Path(scratch)
        waits = []
        for w, share in enumerate(shares):
            (folder / f"jobs-{w}.pkl").write_bytes(pickle.dumps(share, protocol=pickle.HIGHEST_PROTOCOL))
            waits.append(children.enter_context(child.started(
                module, [str(folder / f"jobs-{w}.pkl"), str(folder / f"lines-{w}.pkl")],
                f"generating episodes (process {w + 1} of {len(shares)})")))
        for wait in waits:
            wait()
        return [pickle.loads((folder / f"lines-{w}.pkl").read_bytes()) for w in range(len(shares))]


def pattern_list(n: int, shares: dict[str, float], seed: int) -> list[str]:
    """The pattern of each episode: `shares` of `n` each, shuffled with `seed`."""
    patterns = [p for p, share in shares.items() for _ in range(round(share * n))]
    random.Random(seed).shuffle(patterns)
    return patterns


def _chunk(domain: str, tools: list[Tool], patterns: list[str], start: int, stop: int, heldout_fraction: float,
           seed: int, kinds: Kinds = None) -> list[Episode]:
    """Episodes `start` to `stop` (or the last), each from its own random stream (`streams`); requests unique
    within the chunk when the domain asks for unique requests."""
    unique = builders(domain).unique
    make = _drawer(domain, tools, patterns, kinds)
    seen: set[str] = set()
    episodes = []
    for i, held, rng in streams(seed, start, min(stop, len(patterns)), heldout_fraction):
        draw = partial(make, i, rng, held)
        episodes.append(new_request(draw, seen) if unique else draw())
    return episodes


def _drawer(domain: str, tools: list[Tool], patterns: list[str], kinds: Kinds) -> Drawer:
    """Episode `i` of `domain` from a random stream, on the held-out side or not (`Drawer`)."""
    return lambda i, rng, held: make_episode(domain, patterns[i], rng, held, i, tools, kinds)


def streams(seed: int, start: int, stop: int, heldout_fraction: float) -> Iterator[tuple[int, bool, random.Random]]:
    """(index, held out, random stream) of episodes `start` to `stop`: the held-out draws come from the chunk's
    stream, each episode's content from a stream of its own index. So a held-out episode does not depend on what the
    training episodes before it drew: a change to a training-side pool (a new date format) leaves the test split as
    it was, and two models trained on the two datasets compare on the same test episodes."""
    chunk = random.Random(f"{seed}/{start}")
    for i in range(start, stop):
        yield i, chunk.random() < heldout_fraction, random.Random(f"{seed}/{start}/{i}")


def _chunk_fields(job: tuple) -> list[tuple]:
    """One chunk job (`_chunk`'s arguments but the catalog) drawn: the `Generated` fields of its episodes (plain
    tuples: a child runs this module as `__main__`, whose classes its parent cannot load)."""
    domain, patterns, *chunk = job
    with gc_paused():
        tools = [Tool.model_validate(t) for t in _catalog(domain)]
        return [astuple(Generated.of(e)) for e in _chunk(domain, tools, patterns, *chunk)]


def redrawn(draw: Drawer, seed: int, drawn: list[tuple[str | None, bool]]) -> Iterator[tuple[int, Episode]]:
    """(index, new episode) for each episode, given as (request key, held out), whose request an earlier chunk
    made already: drawn again by `draw`, split kept, from a stream of its own index until its request is new."""
    seen: set[str] = set()
    for i, (key, held) in enumerate(drawn):
        if key is not None and key in seen:
            yield i, new_request(partial(draw, i, random.Random(f"{seed}/again/{i}"), held), seen)
        elif key is not None:
            seen.add(key)


def new_request(draw: Callable[[], Episode], seen: set[str]) -> Episode:
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


def phrasing_counts(domain: str, n: int = 5000, seed: int = 0) -> dict[str, dict[str, int]]:
    """Distinct phrasings per tool in `n` single requests per intent drawn as the `single` pattern draws them,
    on each side: {tool: {"train": count, "held": count}}. A phrasing is the request before its values are filled
    in, with its date, amount and ticker formats (`Voice.key`): "Flights from {origin} to {city} on {d1}?" with
    ISO dates is one, the same with "June 3rd" another."""
    b = builders(domain)
    keys: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"train": set(), "held": set()})
    rng = random.Random(f"phrasings/{seed}")
    for intent in sorted(b.intents):
        tool = b.call(intent, b.slots(random.Random(0), False))["name"]
        for held, name in ((False, "train"), (True, "held")):
            for _ in range(n):
                voice = Voice.draw(rng, held, b.contexts)
                keys[tool][name].add(voice.key(voice.ask(b.intents[intent])))
    return {tool: {side: len(found) for side, found in sides.items()} for tool, sides in sorted(keys.items())}


def as_child(args: list[str], chunk_fields: Callable[[tuple], list[tuple]]) -> bool:
    """Be a generating child of `in_children` when `args` are `JOBS OUT`: draw the chunk jobs pickled in JOBS
    (written by the parent in a private scratch folder) with `chunk_fields` and pickle their lines to OUT. False
    when `args` are something else (the caller's own command line)."""
    if len(args) != 2 or args[0].startswith("-"):
        return False
    jobs, out = map(Path, args)
    out.write_bytes(pickle.dumps([chunk_fields(job) for job in pickle.loads(jobs.read_bytes())],
                                 protocol=pickle.HIGHEST_PROTOCOL))
    return True


def main(argv: list[str] | None = None) -> None:
    """A generating child of `generate_lines` (`as_child`), or the timing and variety report."""
    args = sys.argv[1:] if argv is None else argv
    if as_child(args, _chunk_fields):
        return
    parser = argparse.ArgumentParser(prog="python -m components.domains.generation",
                                     description="Time a draw of synthetic episodes; count phrasings per tool.")
    parser.add_argument("--domain", default="travel")
    parser.add_argument("-n", type=int, default=2400, help="episodes to draw")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--params", default="params.yaml", help="pattern shares, held-out share and seed")
    opts = parser.parse_args(args)
    from components.config import load_params

    params = load_params(opts.params, profile="")
    cfg, start = params.ingest, time.perf_counter()
    lines = generate_lines(opts.domain, opts.n, cfg.shares, cfg.heldout_fraction, params.project.seed, opts.workers,
                           cfg.irrelevance_kinds)
    seconds = time.perf_counter() - start
    print(json.dumps({"domain": opts.domain, "episodes": len(lines), "workers": opts.workers,
                      "seconds": round(seconds, 2), "phrasings_per_tool": phrasing_counts(opts.domain)}, indent=1))


if __name__ == "__main__":
    main()
