"""Stage `ingest`: produce the raw episodes file of the project's domain.

Reads: params `ingest`, `project` (domain, seed).
Writes: `paths.raw` (episodes JSONL, atomic; the previous file stays intact if anything fails).
Run: `python -m components.ingest`.
"""

from __future__ import annotations

from collections import Counter

from components import domains
from components.config import Params
from components.episode import write_episodes
from components.result import StageResult


def run(params: Params) -> StageResult:
    """Generate synthetic episodes of every configured pattern with the domain's simulator."""
    cfg = params.ingest
    domain = domains.get(params.project.domain)
    episodes = domain.generate(cfg.n_episodes, cfg.shares, cfg.heldout_fraction, params.project.seed)
    out = params.path("raw")
    n = write_episodes(out, episodes)
    by_pattern = Counter(e.pattern for e in episodes)
    heldout = sum(e.split == "test" for e in episodes)
    return StageResult(stage="ingest", outputs={"raw": str(out)},
                       metrics={"episodes": float(n), "heldout_episodes": float(heldout),
                                **{f"pattern_{p}": float(c) for p, c in sorted(by_pattern.items())}},
                       details={"source": cfg.source, "domain": domain.name})


def main() -> None:
    from components.tracking import stage_main

    stage_main("ingest")


if __name__ == "__main__":
    main()
