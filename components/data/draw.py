"""Shares of a draw: how many of `n` rows each pattern gets (the sft stage's and rft's `sample_rows`, the build's RL
prompts). Kept apart from components/training so that `build` does not depend on the training code."""

from __future__ import annotations


def quotas(mass: dict[str, float], n: int) -> dict[str, int]:
    """`n` split over the keys of `mass` in proportion to their mass, by largest remainder (ties by key); the
    counts add up to `n`, and a key's count is at most the ceiling of its exact share."""
    total = sum(mass.values())
    quota = {k: n * m / total for k, m in mass.items()}
    counts = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (counts[k] - quota[k], k))[:n - sum(counts.values())]:
        counts[k] += 1
    return counts
