"""RL rollouts through the evaluation's engine (`rl.rollout: engine`): `GRPOTrainer(rollout_func=...)`.

TRL's own tool loop (`environment_factory`) generates a batch turn by turn with `model.generate`, re-encoding each
prompt from its first token. Here every rollout of a step runs in `rollout.run_episodes`, the continuous-batching,
prefix-cached engine evaluation decodes with: the same simulator, parser, turn cap and (with `decoding.constrained`)
the same grammar, so RL samples the policy the evaluation measures. multi_turn episodes are trained too: an answer
without a call gets the user's next turn, as in evaluation (TRL's loop cannot feed one).

What the trainer gets for each rollout (`Trace`):
- `prompt_ids`: the first request rendered (system turn, tools, user turn, generation prompt);
- `completion_ids`: everything after it, in the order the engine encoded it: the model's turns and, between them,
  the tool results, the user's next turns and the template's turn markers;
- `env_mask`: 1 on the model's own tokens, 0 on the rest (TRL's `tool_mask`: out of the loss and the KL);
- `logprobs`: each model token's log-probability under the distribution it was sampled from, at `rl.temperature`
  (the grammar's mask applied under constrained decoding; the call gate is off: RL trains the model's own decision).
  TRL scores tokens with the model's unmasked distribution; per token the two differ by the log of the mass the
  grammar kept, logged as `constrained/log_mass` and `constrained/off_grammar_share` as in
  components/training/constrained_rl.py.
A later turn's prompt is the conversation rendered again; where the template renders an earlier turn of the model
differently from the tokens it sampled, the engine encodes the new rendering and so does the trace: those earlier
tokens become context (mask 0) and are counted in `engine/rerendered_tokens` (the 66-step SmolLM2 travel model: 27 of
3,603 model tokens in 32 rollouts).

The rewards read the rollout as messages (`EngineGRPOTrainer` hands them over as TRL's `completions`, so the layers
and a reward model see every turn), and the `completion` layer the simulator's goal check done by the rollout
(`reached`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import GRPOTrainer

from components.config import Params
from components.data.episode import Episode
from components.domains import Domain
from components.evaluation import rollout
from components.training.constrained_rl import OFF_GRAMMAR


@dataclass
class Sequence:
    """One rollout as the trainer reads it."""

    prompt: list[int]
    completion: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)  # env_mask: 1 for the model's tokens
    logprobs: list[float] = field(default_factory=list)  # sampled distribution; 0.0 on context tokens
    log_mass: list[float] = field(default_factory=list)  # per model token (mask 1): unmasked minus sampled log-prob
    rerendered: int = 0  # model tokens turned into context by a different rendering of a later prompt


class Trace:
    """Builds each conversation's `Sequence` from what the engine encodes and samples (`Engine(trace=...)`)."""

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self.sequences: dict[Any, Sequence] = {}

    def request(self, key: Any, ids: list[int]) -> None:
        """A request's whole prompt: the first one starts the sequence, a later one adds what is new in it.

        Raises:
            ValueError: the template rendered the first request differently inside a later prompt (it is not
                prefix-preserving: TRL's own loop refuses such templates too).
        """
        seq = self.sequences.get(key)
        if seq is None:
            self.sequences[key] = Sequence(list(ids))
            return
        whole = seq.prompt + seq.completion
        same = next((i for i, (a, b) in enumerate(zip(whole, ids)) if a != b), min(len(whole), len(ids)))
        if same < len(seq.prompt):
            raise ValueError(f"RL rollout {key}: the chat template renders the first request differently once the "
                             "conversation goes on (not prefix-preserving); use rl.rollout: trl")
        cut = same - len(seq.prompt)
        lost = sum(seq.mask[cut:])  # model tokens after the cut: the last `lost` entries of log_mass
        seq.rerendered += lost
        del seq.completion[cut:], seq.mask[cut:], seq.logprobs[cut:], seq.log_mass[len(seq.log_mass) - lost:]
        seq.completion += ids[same:]
        seq.mask += [0] * (len(ids) - same)
        seq.logprobs += [0.0] * (len(ids) - same)

    def turn(self, key: Any, ids: list[int], logps: list[tuple[float, float]]) -> None:
        """A finished turn of the model: its tokens and their (sampled, unmasked) log-probabilities."""
        seq = self.sequences[key]
        seq.completion += ids
        seq.mask += [1] * len(ids)
        seq.logprobs += [sampled for sampled, _ in logps]
        seq.log_mass += [free - sampled for sampled, free in logps]


class EngineGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rollouts run in the evaluation's engine (see the module docstring).

    Args:
        params: The run's params (`rl` temperature and completion length per turn, `evaluate` batch size and turn
            cap, `decoding.constrained`, `base.system_prompt`, `project.seed`).
        domain: The stage's domain, one with a simulator (`rl.engine_rollout` refuses the others).
        episodes: The training episodes behind the dataset's rows, by id (the dataset has an `id` column).
    """

    def __init__(self, *args: Any, params: Params, domain: Domain, episodes: dict[str, Episode],
                 constrained: bool, **kwargs: Any) -> None:
        super().__init__(*args, rollout_func=lambda prompts, trainer: trainer.rollouts(prompts), **kwargs)
        self._params, self._domain, self._episodes, self._constrained = params, domain, episodes, constrained
        self._inputs: list[dict[str, Any]] = []

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        self._inputs = inputs  # the rows behind the prompts `rollouts` gets (TRL passes it the prompts only)
        return super()._generate_and_score_completions(inputs)

    def _generate(self, prompts: list) -> Any:
        out = list(super()._generate(prompts))
        out[3] = out[5].pop("messages")  # completions: every turn of each rollout, as the rewards read them
        return tuple(out)

    def rollouts(self, prompts: list) -> dict[str, Any]:
        """The rollout_func: one engine rollout per prompt of the batch (TRL repeats each prompt once per
        generation); returns the trainer's fields, the rollouts' messages and their goal checks."""
        if len(prompts) != len(self._inputs):
            raise RuntimeError(f"rl.rollout: engine got {len(prompts)} prompts for {len(self._inputs)} rows")
        params, cfg = self._params, self._params.rl
        episodes = [self._episodes[row["id"]].model_copy(update={"id": f"{row['id']}#{i}"})
                    for i, row in enumerate(self._inputs)]
        model = self.accelerator.unwrap_model(self.model)
        trace = Trace(cfg.temperature)
        # a new draw every step, the same draws on a rerun with the same seed
        sampling = rollout.Sampling(cfg.temperature, 1.0, params.project.seed + self.state.global_step)
        training = model.training
        try:
            decoding = rollout.Decoding(params.evaluate.batch_size, cfg.max_completion_length,
                                        params.evaluate.max_turns, sampling, self._constrained, gated=False)
            done = rollout.run_episodes(model, self.processing_class, episodes, self._domain,
                                        params.base.system_prompt, decoding, desc="rl: rollouts", trace=trace)
        finally:
            model.train(training)
        sequences = [trace.sequences[ep.id] for ep in episodes]
        mode = "train" if training else "eval"
        self._metrics[mode]["engine/rerendered_tokens"].append(float(sum(s.rerendered for s in sequences)))
        calls = sum(len(step) for ro in done for step in ro.steps)
        self._metrics[mode]["tools/call_frequency"].append(calls / len(done))  # as TRL's loop logs it
        if self._constrained:
            mass = [m for s in sequences for m in s.log_mass]
            self._metrics[mode]["constrained/log_mass"].extend(mass)
            self._metrics[mode]["constrained/off_grammar_share"].extend(float(m < OFF_GRAMMAR) for m in mass)
        return {"prompt_ids": [s.prompt for s in sequences], "completion_ids": [s.completion for s in sequences],
                "logprobs": [s.logprobs for s in sequences], "env_mask": [s.mask for s in sequences],
                "messages": [_turns(ro, len(ep.prompt_messages())) for ro, ep in zip(done, episodes)],
                "reached": [ro.goal_reached for ro in done]}


def _turns(ro: rollout.Rollout, prompt_messages: int) -> list[dict[str, Any]]:
    """A rollout's messages after its prompt (system turn and first request), an unparsable last turn as text."""
    rest = ro.messages[1 + prompt_messages:]
    return rest + ([{"role": "assistant", "content": ro.final or ""}] if ro.unparsable else [])

