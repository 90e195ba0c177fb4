"""Domains: name -> tool catalog, and for the built-in ones a simulator (a TRL-style environment class), its
executor, the goal check and the episode generator (`generate(domain, ...)` of components/domains/generation.py,
fed by the domain's builders).

A bring-your-own domain (`project.catalog`) is a tool catalog file and nothing else: no simulator and no
generator. Its episodes come from `ingest.imports`; RL and evaluation fall back to single-step episodes scored by
call correctness (components/evaluation/single_step.py).

The open-catalog domain `general` (components/domains/general/) has no simulator either, but a generator of its
own: every episode carries its own tools, drawn from a few hundred made-up functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from components.data.episode import DataError

if TYPE_CHECKING:
    from components.config import Params


@dataclass(frozen=True)
class Domain:
    name: str
    catalog: Callable[[], list[dict[str, Any]]]
    env: type | None = None
    execute: Callable[[Any, dict[str, Any]], tuple[str, bool]] | None = None
    goal_reached: Callable[[Any, list[list[dict]], dict[str, Any]], bool] | None = None
    generated: bool = False  # the shared generator has builders for it
    generator: Any = None  # a generator of its own (`generate`, `generate_lines`), as the open-catalog `general` has

    @property
    def simulated(self) -> bool:
        """Whether tools can run: a simulator to roll episodes out in and a goal state to check."""
        return self.env is not None

    @property
    def generate(self) -> Callable[..., list] | None:
        """`generation.generate` for this domain: (n, shares, heldout_fraction, seed) -> episodes; None when
        the domain has no generator."""
        from components.domains import generation

        if self.generator is not None:
            return self.generator.generate
        return partial(generation.generate, self.name) if self.generated else None

    @property
    def generate_lines(self) -> Callable[..., list] | None:
        """`generation.generate_lines` for this domain: the same as JSON lines, drawn by `workers` processes."""
        from components.domains import generation

        if self.generator is not None:
            return self.generator.generate_lines
        return partial(generation.generate_lines, self.name) if self.generated else None


def get(name: str) -> Domain:
    """The built-in domain called `name`."""
    from components.domains import finance, travel

    domains = {"travel": Domain("travel", travel.catalog, travel.TravelEnv, travel.execute, travel.goal_reached, True),
               "finance": Domain("finance", finance.catalog, finance.FinanceEnv, finance.execute,
                                 finance.goal_reached, True)}
    if name not in domains:
        raise KeyError(f"unknown domain {name!r}; built-in: {sorted(domains)}")
    return domains[name]


def system_prompt(domain: str) -> str:
    """The default `base.system_prompt` (params' null) of `domain`: a built-in domain's own, else one that names the
    domain (a catalog's name, e.g. "clinic": "You are a helpful clinic assistant. ..."). The open-catalog `general`
    profile sets its own."""
    from components.domains import finance, travel

    own = {travel.NAME: travel.SYSTEM_PROMPT, finance.NAME: finance.SYSTEM_PROMPT}
    return own.get(domain) or (f"You are a helpful {domain} assistant. Call a tool when it helps; ask for a missing "
                               "detail; answer directly when no tool fits.")


def of(params: Params) -> Domain:
    """The project's domain: its own tool catalog (`project.catalog`), the open-catalog `general` (its generator
    bound to params' `general:`) or the built-in `project.domain`.

    Raises:
        DataError: The catalog file is missing or malformed (file, tool and rule named).
        KeyError: No catalog and `project.domain` is not built in.
    """
    if params.project.catalog is None:
        from components.domains import general

        return general.domain(params.general) if params.project.domain == general.NAME else get(params.project.domain)
    from components.data.inputs import workdir_path

    tools = read_catalog(workdir_path(params.project.workdir, params.project.catalog, "project.catalog"))
    return Domain(params.project.domain, lambda: [dict(t) for t in tools])


def read_catalog(path: Path) -> list[dict[str, Any]]:
    """A tool catalog file: a JSON array of OpenAI function schemas (`{"type": "function", "function": {...}}` or
    bare `{"name", "description", "parameters"}`), or an object holding that array under `tools`.

    Raises:
        DataError: The file is missing, not JSON, holds no tool, a tool schema is invalid, or a name repeats.
    """
    from components.data.importers.common import Record, normalise_tools

    if not path.is_file():
        raise DataError(f"{path}: rule 'catalog': tool catalog file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: rule 'catalog': not a JSON file ({err})") from None
    items = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: rule 'catalog': expected a non-empty JSON array of tool schemas "
                        "(or an object with one under 'tools')")
    tools = [tool for n, item in enumerate(items, start=1)
             for tool in normalise_tools([item], Record(path, n, {}, in_array=True))]
    seen: set[str] = set()
    for n, tool in enumerate(tools, start=1):
        name = tool["function"]["name"]
        if name in seen:
            raise DataError(f"{path} record {n}: rule 'catalog': tool name {name!r} is used by an earlier tool")
        seen.add(name)
    return tools
