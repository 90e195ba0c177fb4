"""Domain `general`: an open catalog. Every episode brings its own tools, drawn from a made-up world of a few
hundred functions across many fields (maths, finance, weather, health, units, text, dates, shopping, ...), so a
model learns to call whatever tools it is given rather than one catalog's.

- `concepts`, `vocab`, `everyday`, `leisure`: parameter concepts (type, names, values, phrases; each pool with a
  training and a held-out side);
- `fields`, `daily`: the fields, their nouns and each noun's operations;
- `apis`: every (noun, operation) composed into a function with an OpenAI-format JSON Schema, a stable share of
  them held out (their episodes go only to the test split, their names and parameter names are never trained on);
- `requests`: argument values, how a user spells them, the request's `phrasing.Intent`, the gold call;
- `episodes`: episodes of BFCL's kinds (simple, multiple, parallel, parallel_multiple; irrelevance as near misses,
  missing arguments and small talk), with distractor tools in shuffled order;
- `draw`: chunked, seeded drawing in any number of processes (the same episodes for any number), and the CLI
  that times a draw and counts phrasings.

With no simulator, evaluation and RL score single steps by call correctness against each episode's own tools
(components/evaluation/single_step.py). Settings: `general:` of params.yaml; pattern shares: `ingest.shares`
(single, parallel, irrelevance), no-call kinds: `ingest.irrelevance_kinds`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from components.domains.general.episodes import NAME, Settings

if TYPE_CHECKING:
    from components.config import General
    from components.domains import Domain

def settings_of(cfg: General) -> Settings:
    """The generator's settings from params' `general:` section."""
    return Settings(cfg.multiple, cfg.parallel_multiple, cfg.heldout_functions, tuple(cfg.distractors),
                    tuple(cfg.siblings), tuple(cfg.parallel_calls), cfg.optional_rate)


def catalog(heldout_functions: float) -> list[dict[str, Any]]:
    """Every function of the world as an OpenAI tool (names are unique); episodes each offer a few of them."""
    from components.domains.general.apis import apis

    return [dict(a.tool) for a in apis(heldout_functions)]


def domain(cfg: General) -> Domain:
    """The `general` domain: no simulator, its generator bound to `cfg`."""
    from functools import partial

    from components.domains import Domain
    from components.domains.general.draw import Generator

    return Domain(NAME, partial(catalog, cfg.heldout_functions), generator=Generator(settings_of(cfg)))
