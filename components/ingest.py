"""Stage `ingest`: produce the raw episodes file: the domain's synthetic episodes, then any imported ones.

Reads: params `ingest` (synthetic shares and size; `imports`: outside datasets, each with its source
format, path under `project.workdir` and domain tag), `project` (domain, seed).
Writes: `paths.raw` (episodes JSONL, atomic; the previous file stays intact if anything fails).
Run: `python -m components.ingest`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from components import domains
from components.config import ConfigError, Params
from components.episode import DataError, Episode, gc_exempt, write_episodes
from components.importers import import_file
from components.result import StageResult


def run(params: Params) -> StageResult:
    """Generate the synthetic episodes, append the imported ones, write them all to `paths.raw`."""
    out = params.path("raw")
    with gc_exempt(lambda: synthetic_episodes(params, params.project.domain) + imported_episodes(params)) as episodes:
        n = write_episodes(out, episodes)
        by_pattern = Counter(e.pattern for e in episodes)
        by_source = Counter(e.source for e in episodes)
        heldout = sum(e.split == "test" for e in episodes)
    return StageResult(stage="ingest", outputs={"raw": str(out)},
                       metrics={"episodes": float(n), "heldout_episodes": float(heldout),
                                **{f"pattern_{p}": float(c) for p, c in sorted(by_pattern.items())},
                                **{f"source_{s}": float(c) for s, c in sorted(by_source.items())}},
                       details={"source": params.ingest.source, "domain": params.project.domain,
                                "imports": [i.model_dump(exclude_none=True) for i in params.ingest.imports]})


def synthetic_episodes(params: Params, domain_name: str) -> list[Episode]:
    """Synthetic episodes of every configured pattern from a built-in domain's generator.

    Raises:
        ConfigError: `domain_name` is not a built-in domain.
    """
    cfg = params.ingest
    try:
        domain = domains.get(domain_name)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    return domain.generate(cfg.n_episodes, cfg.shares, cfg.heldout_fraction, params.project.seed)


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
    return import_file(source, path, domain or source, answers)


def imported_episodes(params: Params) -> list[Episode]:
    """The episodes of every `ingest.imports` entry, in order, tagged with its source and domain."""
    root = Path(params.project.workdir)
    return [episode for item in params.ingest.imports
            for episode in import_file(item.source, root / item.path, item.domain,
                                       root / item.answers if item.answers else None)]


def main() -> None:
    from components.tracking import stage_main

    stage_main("ingest")


if __name__ == "__main__":
    main()
