"""Drawing the general generator's episodes as components/domains/generation.py draws a built-in domain's: the
pattern mix shuffled with the seed, chunks with their own random streams (so any number of processes gives the
same episodes), unique requests within and across chunks, children for the chunks (`generation.in_children`).

Run: `python -m components.domains.general.draw -n 20000 [--workers W]` times a draw and prints the function
count, distinct phrasings per function and episodes per second; `python -m components.domains.general.draw JOBS
OUT` is a generating child.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from functools import partial

from components.data.episode import Episode
from components.data.fileio import gc_paused
from components.domains.general import episodes, requests
from components.domains.general.episodes import Settings
from components.domains.generation import (CHUNK, CHUNKS_PER_WORKER, Drawer, Generated, as_child, in_children,
                                          kind_shares, new_request, pattern_list, redrawn, request_key, streams)
from components.domains.phrasing import Voice


@dataclass(frozen=True)
class Generator:
    """The general domain's generator bound to its settings, with the built-in generators' call signatures."""

    settings: Settings

    def generate(self, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                 kinds: Mapping[str, float] | None = None) -> list[Episode]:
        """`n` episodes at the pattern `shares`, a `heldout_fraction` share of them held out (see `generate`)."""
        return generate(self.settings, n, shares, heldout_fraction, seed, kinds)

    def generate_lines(self, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                       workers: int = 1, kinds: Mapping[str, float] | None = None) -> list[Generated]:
        return generate_lines(self.settings, n, shares, heldout_fraction, seed, workers, kinds)


def _kinds(kinds: Mapping[str, float] | None) -> dict[str, float]:
    from components.domains.tasks import DEFAULT_IRRELEVANCE_KINDS

    return dict(DEFAULT_IRRELEVANCE_KINDS if kinds is None else kinds)


def generate(s: Settings, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
             kinds: Mapping[str, float] | None = None, chunk: int = CHUNK) -> list[Episode]:
    """`n` episodes: the patterns of `shares` shuffled with `seed`, each chunk of `chunk` episodes from its own
    random stream (seed and the chunk's start), each episode held out at `heldout_fraction`; an episode whose
    request repeats an earlier one's is drawn again (within its chunk as it is drawn, then across chunks from a
    stream of its own index), so no request can land in two splits."""
    patterns = pattern_list(n, shares, seed)
    with gc_paused():
        drawn = [e for c in range(0, n, chunk)
                 for e in _chunk(s, patterns, c, c + chunk, heldout_fraction, seed, kinds)]
        for i, episode in redrawn(_drawer(s, patterns, kinds), seed,
                                  [(request_key(e), e.split == "test") for e in drawn]):
            drawn[i] = episode
    return drawn


def generate_lines(s: Settings, n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                   workers: int = 1, kinds: Mapping[str, float] | None = None, chunk: int = CHUNK) -> list[Generated]:
    """What `generate` gives, as JSON lines, its chunks drawn by up to `workers` processes (one per
    `generation.CHUNKS_PER_WORKER` chunks at most): the same lines for any number of workers."""
    starts = range(0, n, chunk)
    workers = min(workers, len(starts) // CHUNKS_PER_WORKER)
    if workers <= 1:
        return [Generated.of(e) for e in generate(s, n, shares, heldout_fraction, seed, kinds, chunk)]
    patterns = pattern_list(n, shares, seed)
    jobs = [(s, patterns, c, c + chunk, heldout_fraction, seed, kinds) for c in starts]
    parts = in_children([jobs[w::workers] for w in range(workers)], __name__)
    drawn = [Generated(*g) for c in range(len(jobs)) for g in parts[c % workers][c // workers]]
    for i, episode in redrawn(_drawer(s, patterns, kinds), seed, [(g.key, g.held) for g in drawn]):
        drawn[i] = Generated.of(episode)
    return drawn


def _chunk(s: Settings, patterns: list[str], start: int, stop: int, heldout_fraction: float, seed: int,
           kinds: Mapping[str, float] | None) -> list[Episode]:
    draw = _drawer(s, patterns, kinds)
    seen: set[str] = set()
    return [new_request(partial(draw, i, rng, held), seen)
            for i, held, rng in streams(seed, start, min(stop, len(patterns)), heldout_fraction)]


def _drawer(s: Settings, patterns: list[str], kinds: Mapping[str, float] | None) -> Drawer:
    shares = kind_shares(kinds)
    return lambda i, rng, held: episodes.draw(s, patterns[i], rng, held, i, shares)


def phrasing_counts(s: Settings, n: int = 300, seed: int = 0) -> dict[str, int]:
    """Distinct phrasings per function in `n` requests each, drawn on the function's own side (held-out functions
    in held-out wording): a phrasing is the request before its values are filled in, with the voice's date and
    number formats; {function name: count}."""
    rng = random.Random(f"phrasings/{seed}")
    w = episodes.world(s.heldout_functions)
    counts = {}
    for api in w.train + w.held:
        keys = set()
        for _ in range(n):
            values = requests.draw_values(api, rng, api.held, s.optional_rate)
            voice = Voice.draw(rng, api.held, episodes.GENERIC_CONTEXTS)
            intent, _ = requests.intent(api, values, "a")
            keys.add(voice.ask(intent) + f"|{voice.formats['date']},{voice.formats['amount']}")
        counts[api.name] = len(keys)
    return counts


def _chunk_fields(job: tuple) -> list[tuple]:
    """One chunk job drawn in a child: the `Generated` fields of its episodes, as plain tuples."""
    with gc_paused():
        return [astuple(Generated.of(e)) for e in _chunk(*job)]


def main(argv: list[str] | None = None) -> None:
    """A generating child (`JOBS OUT`), or the timing and variety report."""
    args = sys.argv[1:] if argv is None else argv
    if as_child(args, _chunk_fields):
        return
    parser = argparse.ArgumentParser(prog="python -m components.domains.general.draw",
                                     description="Time a draw of general episodes; count functions and phrasings.")
    parser.add_argument("-n", type=int, default=20000, help="episodes to draw")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--params", default="params.yaml", help="general settings, shares, held-out share and seed")
    parser.add_argument("--profile", default="general", help="the params profile to read (default: general)")
    opts = parser.parse_args(args)
    from components.config import load_params
    from components.domains.general import settings_of

    params = load_params(opts.params, profile=opts.profile)
    s, cfg = settings_of(params.general), params.ingest
    start = time.perf_counter()
    lines = generate_lines(s, opts.n, cfg.shares, cfg.heldout_fraction, params.project.seed, opts.workers,
                           cfg.irrelevance_kinds)
    seconds = time.perf_counter() - start
    counts = phrasing_counts(s)
    w = episodes.world(s.heldout_functions)
    print(json.dumps({"functions": len(w.train) + len(w.held), "heldout_functions": len(w.held),
                      "episodes": len(lines), "workers": opts.workers, "seconds": round(seconds, 2),
                      "episodes_per_second": round(len(lines) / seconds, 1),
                      "phrasings_per_function_in_300": {"min": min(counts.values()),
                                                         "median": statistics.median(counts.values()),
                                                         "max": max(counts.values())}}, indent=1))


if __name__ == "__main__":
    main()
