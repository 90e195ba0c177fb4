"""RL rollouts under the tool-call grammar (`decoding.constrained`): GRPO samples every turn through
`components.evaluation.constrained`, as evaluation and serving decode.

What the trainer sees. TRL scores a completion with the model's plain (temperature-scaled) log-probabilities, the
unconstrained policy; the rollouts come from the constrained policy `softmax(mask(logits))`. Per token the two
differ by `log Z`, the log of the probability mass the sampling distribution put on the tokens the grammar allowed
(0 where the model already followed it): `log pi_free(t) = log pi_constrained(t) + log Z`. The mismatch is
measured, not hidden: every rollout token's `log Z` is logged as `constrained/log_mass` (mean per token) and
`constrained/off_grammar_share` (tokens where the model put more than 1 % of its mass outside the grammar), and
the stage reports both. A model that follows the grammar on its own has `log Z` near 0, and the two policies, and
so the trainer's ratios, agree. transformers runs a caller's processors before its temperature and top-k/top-p
warpers, so `log Z` is that of the model's distribution at temperature 1 (`rl.temperature` is 1.0 by default);
the -inf of disallowed tokens survives the warpers, so the sampler's support is the grammar's at any temperature.

Only TRL's plain `model.generate` path is constrained (vLLM and transformers' continuous batching are refused).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import LogitsProcessorList
from transformers.utils import get_json_schema
from trl import GRPOTrainer

from components.evaluation.constrained import ConstrainedLogitsProcessor

OFF_GRAMMAR = math.log(0.99)  # a token whose allowed mass is below 99 % counts as off-grammar


class _Measured(ConstrainedLogitsProcessor):
    """The grammar processor that also records, per live row and step, the log of the mass it kept."""

    def __init__(self, tok: Any, tools_per_row: list[list[dict[str, Any]]]) -> None:
        super().__init__(tok, tools_per_row)
        self.log_mass: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = super().__call__(input_ids, scores)
        live = [r for r in range(scores.shape[0]) if not self.constraint.done(r)]
        if live:
            kept = torch.logsumexp(out[live].float(), -1) - torch.logsumexp(scores[live].float(), -1)
            self.log_mass += kept.tolist()
        return out


class ConstrainedGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose rollouts follow the tool-call grammar of the tools each prompt offers.

    Tools per prompt: the trainer's own (`environment_factory` methods, the same for every row) or, for prompts
    rendered by the caller (single-step rows without a simulator), `row_tools`: the tools of each prompt text.
    """

    def __init__(self, *args: Any, row_tools: dict[str, list[dict[str, Any]]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.use_vllm or self.use_transformers_continuous_batching:
            raise ValueError("constrained rollouts (decoding.constrained) need TRL's model.generate path: "
                             "vLLM and continuous batching are not supported")
        self._row_tools = row_tools or {}
        self._batch_tools: list[list[dict[str, Any]]] | None = None
        self._shared_tools = [get_json_schema(fn) for fn in self.tools] if self.tools else []

    def _generate(self, prompts: list) -> Any:
        self._batch_tools = ([self._row_tools.get(p, []) for p in prompts]
                             if self._row_tools and all(isinstance(p, str) for p in prompts) else None)
        return super()._generate(prompts)

    def _generate_single_turn(self, prompt_ids: list, *args: Any, **kwargs: Any) -> Any:
        n = len(prompt_ids)
        tools = self._batch_tools if self._batch_tools and len(self._batch_tools) == n else [self._shared_tools] * n
        processor = _Measured(self.processing_class, tools)
        model = self.accelerator.unwrap_model(self.model_wrapped)
        plain = model.generate

        def generate(*gen_args: Any, **gen_kwargs: Any) -> Any:
            given = gen_kwargs.pop("logits_processor", None) or LogitsProcessorList()
            return plain(*gen_args, logits_processor=LogitsProcessorList([*given, processor]), **gen_kwargs)

        model.generate = generate
        try:
            out = super()._generate_single_turn(prompt_ids, *args, **kwargs)
        finally:
            del model.generate  # the instance attribute; the class's method shows again
        if processor._prompt_len is None:
            raise RuntimeError("constrained rollouts: TRL generated without the grammar processor "
                               "(a generation path this trainer does not patch)")
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["constrained/log_mass"].extend(processor.log_mass)
        self._metrics[mode]["constrained/off_grammar_share"].extend(
            float(x < OFF_GRAMMAR) for x in processor.log_mass)
        return out
