"""Stage `ingest`: produce the raw episodes file: the domain's synthetic episodes, then any imported ones.

Reads: params `ingest` (synthetic shares and size; `imports`: outside datasets, each with its source
format, path under `project.workdir` and domain tag), `project` (domain, seed).
Writes: `paths.raw` (episodes JSONL, atomic; the previous file stays intact if anything fails).
Run: `python -m components.ingest`.
"""

from __future__ import annotations

import os
from collections import Counter
from itertools import chain
from pathlib import Path

from components import domains
from components.config import ConfigError, Params
from components.domains import sim
from components.domains.tasks import Generated
from components.episode import DataError, Episode, gc_exempt, write_lines
from components.importers import import_file
from components.result import StageResult


def run(params: Params) -> StageResult:
    """Generate the synthetic episodes, append the imported ones, write them all to `paths.raw`."""
    out = params.path("raw")
    generated = _generated(params)
    with gc_exempt(lambda: imported_episodes(params)) as imported:
        n = write_lines(out, chain((g.line for g in generated),
                                   (e.model_dump_json(exclude_none=True) for e in imported)))
        by_pattern = Counter(g.pattern for g in generated) + Counter(e.pattern for e in imported)
        by_source = Counter({"synthetic": len(generated)} if generated else {}) + Counter(e.source for e in imported)
        heldout = sum(g.held for g in generated) + sum(e.split == "test" for e in imported)
    return StageResult(stage="ingest", outputs={"raw": str(out)},
                       metrics={"episodes": float(n), "heldout_episodes": float(heldout),
                                **{f"pattern_{p}": float(c) for p, c in sorted(by_pattern.items())},
                                **{f"source_{s}": float(c) for s, c in sorted(by_source.items())}},
                       details={"source": params.ingest.source, "domain": params.project.domain,
                                "imports": [i.model_dump(exclude_none=True) for i in params.ingest.imports]})


def _generated(params: Params) -> list[Generated]:
    """The built-in domain's synthetic episodes as JSON lines, drawn by `ingest.workers` processes."""
    if params.ingest.source != "synthetic":
        return []
    cfg = params.ingest
    domain = _generator(params, params.project.domain)
    # the cores this process may use (a container's share, not the machine's count); macOS has no affinity call
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = cfg.workers or cores
    return domain.generate_lines(cfg.n_episodes, cfg.shares, cfg.heldout_fraction, params.project.seed, workers)


def synthetic_episodes(params: Params, domain_name: str) -> list[Episode]:
    """Synthetic episodes of every configured pattern from a built-in domain's generator.

    Raises:
        ConfigError: `domain_name` is not a built-in domain.
    """
    cfg = params.ingest
    return _generator(params, domain_name).generate(cfg.n_episodes, cfg.shares, cfg.heldout_fraction,
                                                    params.project.seed)


def _generator(params: Params, domain_name: str) -> domains.Domain:
    """The built-in domain `domain_name`, which has a generator.

    Raises:
        ConfigError: `domain_name` is the project's catalog-only domain, or no built-in domain.
    """
    if domain_name == params.project.domain and params.project.catalog is not None:
        raise ConfigError(f"domain {domain_name!r} is a tool catalog ({params.project.catalog}) with no generator: "
                          "import its episodes instead")
    try:
        return domains.get(domain_name)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None


def source_episodes(params: Params, source: str, path: str | None, domain: str | None,
                    answers: str | None = None) -> list[Episode]:
    """The episodes of one source: generated (`synthetic`) or imported from `path` (`tooltune ingest`).

    Args:
        params: Loaded params (synthetic size, shares, seed; the default domain).
        source: `synthetic` or a key of `components.importers.SOURCES`.
        path: The input file; none for synthetic.
        domain: Domain tag; defaults to `project.domain` for synthetic, else to the source name.
        answers: BFCL only: the possible-answer file.

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
    return import_file(source, path, domain, answers, _catalog(params, domain))


def imported_episodes(params: Params) -> list[Episode]:
    """The episodes of every `ingest.imports` entry, in order, tagged with its source and domain; those of a
    bring-your-own domain are fitted to its catalog (`importers.common.fit_catalog`)."""
    root = Path(params.project.workdir)
    out = []
    for item in params.ingest.imports:
        episodes = import_file(item.source, root / item.path, item.domain,
                               root / item.answers if item.answers else None, _catalog(params, item.domain))
        out += [_hold_out(e, item.heldout_fraction) for e in episodes]
    return out


def _hold_out(episode: Episode, fraction: float) -> Episode:
    """Tag an imported episode for the test split when a stable hash of its id falls under `fraction` (the same
    episodes stay held out however the file is ordered or extended); episodes tagged already keep their split."""
    if episode.split is not None or sim.stable_hash(episode.id) / 0xFFFFFFFF >= fraction:
        return episode
    return episode.model_copy(update={"split": "test"})


def _catalog(params: Params, domain: str) -> list[dict] | None:
    """The project's own tool catalog when `domain` is the project's bring-your-own domain."""
    if params.project.catalog is None or domain != params.project.domain:
        return None
    return domains.of(params).catalog()


def main() -> None:
    from components.tracking import stage_main

    stage_main("ingest")


if __name__ == "__main__":
    main()
