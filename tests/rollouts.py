"""Hand-made rollouts for the tests that judge them (evaluation's verdicts, the reward model's on-policy pairs)."""

from __future__ import annotations

from typing import Any

from components.data.episode import Episode
from components.evaluation import rollout


def gold_rollout(ep: Episode, domain: Any) -> rollout.Rollout:
    """Replay the gold trajectory through the simulator, as a perfect model would (its answers included)."""
    ro = rollout.Rollout(ep.id, ep.message_dicts())
    env = domain.env()
    for step in ep.expected.steps:
        calls = [c.model_dump() for c in step]
        ro.steps.append(calls)
        for call in calls:
            domain.execute(env, call)
    ro.final, ro.turns = ep.messages[-1].content, len(ro.steps) + 1
    ro.goal_reached = domain.goal_reached(env, [[c.model_dump() for c in s] for s in ep.expected.steps],
                                          ep.expected.goal)
    return ro
