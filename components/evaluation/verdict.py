"""One episode's verdict, typed: what evaluation reports per episode and what RL's prompt selection judges by.

- `rollout.judge(ro, ep)` (components/evaluation/rollout.py): a simulator rollout of episode `ep`, with the shared
  scorer (`toolcalls.score_episode`): its steps, and its final state where the episode sets a goal.
- `single_step.judge`: one step of an episode, without a simulator.
- `Verdict.row()` is the JSON line of `<model>_rollouts.jsonl` and of the evaluation cache's rows.jsonl;
  `Verdict.from_row` reads one back (the register gate, the cache).
This module imports no project code: the register gate and the statistics read verdicts without the rollout loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# written only when set: a simulator rollout's (stated .. rollout), a single step's (episode, step, output), and
# the call gate's check that answered a first request in text (refused_by)
OPTIONAL = ("stated", "failed_calls", "rollout", "episode", "step", "output", "refused_by")


@dataclass(frozen=True)
class Verdict:
    """How one model did on one episode (or, without a simulator, on one step of it)."""

    id: str
    pattern: str
    exact: bool  # every step right (rightly no call on irrelevance), then an answer
    first_exact: bool | None  # the first step's calls right: tool and every argument (None: not a first step)
    tool_ok: bool | None  # the first step's tool names right (None: not a first step)
    unparsable: bool
    errors: tuple[str, ...]  # error classes of the taxonomy (`toolcalls.score_episode`)
    completion: bool | None  # goal state reached, answered, the expected facts stated (None: no simulator)
    turns: int
    stated: bool | None = None  # the answers state the facts of `expected.outputs`
    failed_calls: int | None = None  # calls the simulator answered with an error (None: nothing was executed)
    rollout: dict[str, Any] | None = None  # the rollout judged (`Rollout` fields)
    episode: str | None = None  # a single step's episode id
    step: int | None = None  # a single step's turn in its episode
    output: str | None = None  # a single step's generated text
    refused_by: str | None = None  # the check that made a first request's turn text: gate | name | value

    def row(self) -> dict[str, Any]:
        """The JSON-able row (the optional fields only when set)."""
        out = asdict(self)
        return {k: v for k, v in out.items() if k not in OPTIONAL or v is not None} | {"errors": list(self.errors)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Verdict":
        """A verdict from its row; fields the row lacks are None, so a row must hold at least `id` and `pattern`.

        Raises:
            ValueError: The row is not a dict with `id` and `pattern`, or its `errors` is not a list.
        """
        if not isinstance(row, dict) or not {"id", "pattern"} <= row.keys():
            raise ValueError("a verdict row needs id and pattern")
        if not isinstance(row.get("errors", []), list):
            raise ValueError("a verdict row's errors must be a list")
        return cls(**{f.name: row.get(f.name) for f in fields(cls)} | {"errors": tuple(row.get("errors", []))})
