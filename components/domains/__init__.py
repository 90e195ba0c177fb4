"""Built-in domains: name -> tool catalog, simulator (a TRL-style environment class), executor and generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Domain:
    name: str
    catalog: Callable[[], list[dict[str, Any]]]
    env: type
    execute: Callable[[Any, dict[str, Any]], tuple[str, bool]]
    goal_reached: Callable[[Any, list[list[dict]], dict[str, Any]], bool]
    generate: Callable[..., list]


def get(name: str) -> Domain:
    """The built-in domain called `name`."""
    from components.domains import finance, finance_tasks, travel, travel_tasks

    domains = {"travel": Domain("travel", travel.catalog, travel.TravelEnv, travel.execute, travel.goal_reached,
                                travel_tasks.generate),
               "finance": Domain("finance", finance.catalog, finance.FinanceEnv, finance.execute,
                                 finance.goal_reached, finance_tasks.generate)}
    if name not in domains:
        raise KeyError(f"unknown domain {name!r}; built-in: {sorted(domains)}")
    return domains[name]
