"""Stage `ingest`: produce the raw episodes file: the domain's synthetic episodes, then any imported ones.

Reads: params `ingest` (synthetic shares and size; `imports`: outside datasets, each with its source
format, path under `project.workdir` (a relative path may not lead outside it: rule `path_outside_workdir`;
an absolute one is the user's choice), domain tag and `skip_invalid`), `project` (domain, seed).
Writes: `paths.raw` (episodes JSONL, atomic; the previous file stays intact if anything fails). Imported
episodes are streamed from their file to the output, never all held. An import with `skip_invalid: true` sets
its bad records aside in `<paths.raw>.rejected.jsonl` (one row each: file, line, rule, detail; metric
`rejected`) instead of failing the stage; strict is the default.
Run: `python -m components.ingest`.

Then, for the project's domain, the no-call episodes of `ingest.irrelevance_pool` (components/domains/no_call.py):
off-domain requests from the shipped pool at `share` of the file, after everything else, and for a catalog domain
removed-tool twins right after the imported single-call episodes they copy (for a built-in domain, at
`removed_tool_builtin`, after its generated training episodes), and voice twins (`ingest.voice_twins`,
components/domains/voice.py): a share of its imported training episodes again, their first request framed by the
project's openers and closers. A built-in domain's generated training requests can also get aside twins
(`ingest.aside_twins`): the request after a statement that asks for nothing, and that statement alone without a call.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import TextIO

from components import domains
from components.config import ConfigError, Params
from components.data.imports import catalog_for, iter_imported
from components.domains import generation, no_call, tasks, voice
from components.domains.generation import Generated
from components.data.episode import DataError, Episode, Tool
from components.data.fileio import atomic_file, write_lines
from components.data.importers import iter_import
from components.result import StageResult


def run(params: Params) -> StageResult:
    """Generate the synthetic episodes, stream the imported ones after them, write them all to `paths.raw`."""
    out = params.path("raw")
    generated = _generated(params)
    tally = Tally()
    lenient = any(item.skip_invalid for item in params.ingest.imports)
    with quarantine(out, lenient) as rejects:
        imported = (tally.add(e).model_dump_json(exclude_none=True)
                    for e in with_twins(params, iter_imported(params, rejects)))
        pool = (tally.add(e).model_dump_json(exclude_none=True)  # drawn once the episodes before it are counted
                for e in pool_for(params, lambda: len(generated) + tally.domains[params.project.domain]))
        twins = (tally.add(e).model_dump_json(exclude_none=True) for e in generated_twins(params, generated))
        n = write_lines(out, chain((g.line for g in generated), twins, imported, pool))
    by_pattern = Counter(g.pattern for g in generated) + tally.patterns
    by_source = Counter({"synthetic": len(generated)} if generated else {}) + tally.sources
    heldout = sum(g.held for g in generated) + tally.heldout
    rejected = {"rejected": float(rejects.count)} if rejects else {}
    outputs = {"raw": str(out), **({"rejected": str(rejects.path)} if rejects else {})}
    return StageResult(stage="ingest", outputs=outputs,
                       metrics={"episodes": float(n), "heldout_episodes": float(heldout), **rejected,
                                **{f"pattern_{p}": float(c) for p, c in sorted(by_pattern.items())},
                                **{f"source_{s}": float(c) for s, c in sorted(by_source.items())}},
                       details={"source": params.ingest.source, "domain": params.project.domain,
                                "imports": [i.model_dump(exclude_none=True) for i in params.ingest.imports],
                                **({"rejected_by_rule": dict(rejects.by_rule)} if rejects else {})})


@dataclass
class Tally:
    """Counts of the episodes streamed past (the imported ones are never all held)."""

    patterns: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    domains: Counter = field(default_factory=Counter)
    heldout: int = 0

    def add(self, episode: Episode) -> Episode:
        self.patterns[episode.pattern] += 1
        self.sources[episode.source] += 1
        self.domains[episode.domain] += 1
        self.heldout += episode.split == "test"
        return episode


@dataclass
class Quarantine:
    """The records an import set aside (`skip_invalid`): one JSON line each in `path`, counted by rule."""

    path: Path
    handle: TextIO
    by_rule: Counter = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.by_rule.values())

    def __call__(self, err: DataError, path: Path, line: int) -> None:
        rule = err.rule or "record"
        self.by_rule[rule] += 1
        self.handle.write(json.dumps({"file": str(path), "line": line, "rule": rule,
                                      "detail": err.detail or str(err)}) + "\n")


def rejected_path(out: Path) -> Path:
    """Where the records set aside while writing `out` go: `<out>.rejected.jsonl`."""
    return out.with_name(out.name + ".rejected.jsonl")


@contextmanager
def quarantine(out: str | Path, wanted: bool) -> Iterator[Quarantine | None]:
    """A `Quarantine` beside `out` when `wanted` (written atomically with it: nothing is kept if the block
    fails), else None; a strict run that succeeds removes a quarantine file left by an earlier lenient one."""
    path = rejected_path(Path(out))
    if not wanted:
        yield None
        path.unlink(missing_ok=True)
        return
    with atomic_file(path) as handle:
        yield Quarantine(path, handle)


def with_twins(params: Params, episodes: Iterable[Episode]) -> Iterator[Episode]:
    """The episodes, each of the project's catalog domain followed by its removed-tool twin and its voice twin
    when it gets them (`ingest.irrelevance_pool.removed_tool`, `no_call.removed_tool_twin`; `ingest.voice_twins`,
    `voice.voice_twin`)."""
    removed, voiced, seed = params.ingest.irrelevance_pool.removed_tool, params.ingest.voice_twins, params.project.seed
    for episode in episodes:
        yield episode
        if params.project.catalog is None or episode.domain != params.project.domain:
            continue
        for twin in (no_call.removed_tool_twin(episode, removed, seed), voice.voice_twin(episode, voiced, seed)):
            if twin is not None:
                yield twin


def generated_twins(params: Params, generated: list[Generated]) -> Iterator[Episode]:
    """The removed-tool twins and the aside twins of a built-in domain's generated single-call training episodes
    (`ingest.irrelevance_pool.removed_tool_builtin`, `no_call.removed_tool_twin`; `ingest.aside_twins`,
    `voice.aside_twins`), after all of them, drawn as they are read. Held-out episodes get none: the test split is
    the one measured without twins.

    Raises:
        ConfigError: `ingest.aside_twins` is set for a domain whose generator has no asides (raised at the call,
            before anything is written).
    """
    removed, asides = params.ingest.irrelevance_pool.removed_tool_builtin, params.ingest.aside_twins
    seed = params.project.seed
    b = _asides_of(params) if asides > 0 else None

    def twins(episode: Episode) -> list[Episode]:
        asided = voice.aside_twins(episode, b, asides, seed) if b is not None else []
        return [t for t in (no_call.removed_tool_twin(episode, removed, seed), *asided) if t is not None]

    if removed <= 0 and b is None:
        return iter(())
    return (twin for g in generated if g.pattern == "single" and not g.held
            for twin in twins(Episode.model_validate_json(g.line)))


def _asides_of(params: Params) -> tasks.Builders:
    """The project's built-in domain's generator parts, which must have asides (`ingest.aside_twins`)."""
    try:
        b = generation.builders(params.project.domain)
    except KeyError:
        b = None
    if b is None or not b.asides:
        raise ConfigError(f"ingest.aside_twins: domain {params.project.domain!r} has no asides to write contrast "
                          "pairs with (travel and finance have); set it to 0")
    return b


def pool_for(params: Params, written: Callable[[], int]) -> Iterator[Episode]:
    """The off-domain no-call episodes of the project's domain (`no_call.pool_episodes`): as many as make them
    `ingest.irrelevance_pool.share` of that domain's episodes (a built-in domain's only with `builtin`), given the
    `written()` ones before them (called when the first is asked for, after every episode before them is counted;
    none when there are none)."""
    share = params.ingest.irrelevance_pool.share
    if share <= 0 or (params.project.catalog is None and not params.ingest.irrelevance_pool.builtin):
        return
    n = round(share / (1 - share) * written())
    tools = [Tool.model_validate(t) for t in domains.of(params).catalog()]
    yield from no_call.pool_episodes(params.project.domain, tools, n, params.ingest.heldout_fraction,
                                     params.project.seed)


def _generated(params: Params) -> list[Generated]:
    """The built-in domain's synthetic episodes as JSON lines, drawn by `ingest.workers` processes."""
    if params.ingest.source != "synthetic":
        return []
    cfg = params.ingest
    domain = _generator(params, params.project.domain)
    # the cores this process may use (a container's share, not the machine's count); macOS has no affinity call
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = cfg.workers or cores
    return domain.generate_lines(cfg.n_episodes, cfg.shares, cfg.heldout_fraction, params.project.seed, workers,
                                 cfg.irrelevance_kinds)


def synthetic_episodes(params: Params, domain_name: str) -> list[Episode]:
    """Synthetic episodes of every configured pattern from a built-in domain's generator.

    Raises:
        ConfigError: `domain_name` is not a built-in domain.
    """
    cfg = params.ingest
    return _generator(params, domain_name).generate(cfg.n_episodes, cfg.shares, cfg.heldout_fraction,
                                                    params.project.seed, cfg.irrelevance_kinds)


def _generator(params: Params, domain_name: str) -> domains.Domain:
    """The domain `domain_name`, which has a generator: a built-in one, or the project's `general` (its generator
    bound to params' `general:`).

    Raises:
        ConfigError: `domain_name` is the project's catalog-only domain, or no domain with a generator.
    """
    if domain_name == params.project.domain and params.project.catalog is not None:
        raise ConfigError(f"domain {domain_name!r} is a tool catalog ({params.project.catalog}) with no generator: "
                          "import its episodes instead")
    try:
        return domains.of(params) if domain_name == params.project.domain else domains.get(domain_name)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None


def source_episodes(params: Params, source: str, path: str | None, domain: str | None,
                    answers: str | None = None, reject: Quarantine | None = None) -> Iterable[Episode]:
    """The episodes of one source: generated (`synthetic`) or streamed from `path` (`tooltune ingest`).

    Args:
        params: Loaded params (synthetic size, shares, seed; the default domain).
        source: `synthetic` or a key of `components.data.importers.SOURCES`.
        path: The input file; none for synthetic.
        domain: Domain tag; defaults to `project.domain` for synthetic, else to the source name.
        answers: BFCL only: the possible-answer file.
        reject: Where bad records go instead of failing (`--skip-invalid`); None: the first one fails.

    Raises:
        DataError: An input path is missing (or given for synthetic), or the input is bad.
        ConfigError: Synthetic with a domain that is not built in.
    """
    if source == "synthetic":
        if path is not None or answers is not None:
            raise DataError("the synthetic source reads no input file: drop the path and answers")
        return synthetic_episodes(params, domain or params.project.domain)
    if path is None:
        raise DataError(f"source {source} needs an input path")
    domain = domain or source
    return iter_import(source, path, domain, answers, catalog_for(params, domain), reject)


def write_source(params: Params, out: str | Path, source: str, path: str | None = None,
                 domain: str | None = None, options: dict | None = None) -> tuple[int, Counter, Quarantine | None]:
    """`tooltune ingest`: stream one source's episodes into `out` (atomic).

    Args:
        options: `answers` (BFCL) and `skip_invalid` (set bad records aside in `<out>.rejected.jsonl`).

    Returns:
        How many episodes were written, their count per pattern, and the quarantine (None when strict).
    """
    options, tally = options or {}, Tally()
    with quarantine(out, bool(options.get("skip_invalid"))) as rejects:
        episodes = source_episodes(params, source, path, domain, options.get("answers"), rejects)
        n = write_lines(out, (tally.add(e).model_dump_json(exclude_none=True) for e in episodes))
    return n, tally.patterns, rejects


def main() -> None:
    from components.tracking import stage_main

    stage_main("ingest")


if __name__ == "__main__":
    main()
