"""Stage `rl`: reinforcement learning in the domain simulator with TRL GRPOTrainer (GRPO, GSPO, Dr.GRPO or
DAPO), the model calling the simulator's tools live (`environment_factory`), rewarded by the layered rewards
(correctness, completion, efficiency) and optionally the learned reward model. A domain without a simulator (a
bring-your-own tool catalog) trains on single-step prompts instead, without the completion layer.

Reads: `paths.sft_model`, `paths.reward_model` (if its weight > 0), `paths.splits/rl.jsonl`, params `rl`.
Writes: `paths.rl_model` (safetensors), `paths.reports/rl_reward.{csv,png}`; while training, a checkpoint every
`rl.save_steps` under `paths.checkpoints/rl/`, resumed by a rerun after a kill (components/training/checkpoints.py).
With `decoding.constrained`, rollouts follow the tool-call grammar of the offered tools
(components/training/constrained_rl.py) and metrics `constrained_log_mass` / `constrained_off_grammar_share`
measure how far the policy the trainer scores (unconstrained) is from the one that sampled.
Run: `python -m components.rl`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components import domains, training
from components.training import checkpoints, rewards
from components.evaluation import single_step
from components.toolcalls import response
from components.config import Params
from components.data.fileio import read_jsonl
from components.result import StageResult

# GRPOConfig settings that turn GRPO into each family member (TRL 1.16; PPO is not in TRL any more).
ALGORITHMS: dict[str, dict[str, Any]] = {
    "grpo": {"loss_type": "grpo"},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence"},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},
    "dapo": {"loss_type": "dapo", "epsilon_high": 0.28, "mask_truncated_completions": True},
}


def reward_functions(params: Params, tok: Any = None) -> list[tuple[str, Any, float]]:
    """(name, reward callable or the reward model folder, weight) of every reward with a weight above 0; the
    layers are bound to the project's domain (one without a simulator has no `completion` layer) and to the
    policy's tokenizer `tok`, which reads a text completion in the model's own tool syntax (TRL passes reward
    functions no tokenizer)."""
    weights = params.rl.reward_weights
    out = [(name, fn, getattr(weights, name))
           for name, fn in rewards.layers(domains.of(params), tok).items() if getattr(weights, name) > 0]
    if weights.reward_model > 0:
        out.append(("reward_model", str(params.path("reward_model")), weights.reward_model))
    return out


def rl_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dataset columns GRPO needs. multi_turn prompts are left out: GRPO's tool loop cannot feed the user's
    follow-up turns, so their later steps could never be earned."""
    return [{k: r[k] for k in ("prompt", "expected", "goal", "outputs", "pattern")} for r in rows
            if r["pattern"] != "multi_turn"]


def resume_inputs(params: Params) -> list[Path]:
    """What a checkpoint of this stage depends on besides params: the prompts, the start model and, when it is used,
    the reward model."""
    used = [params.path("reward_model")] if params.rl.reward_weights.reward_model > 0 else []
    return [params.path("splits") / "rl.jsonl", params.path("sft_model"), *used]


def run(params: Params) -> StageResult:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from components.tracking import step_metrics_callback

    cfg = params.rl
    domain = domains.of(params)
    training.check_quantization(params.base)  # 4-bit without CUDA: stop before any work
    model, tok = training.load_for_training(params, params.path("sft_model"), cfg.lora.enabled)
    rows = read_jsonl(params.path("splits") / "rl.jsonl")
    # no simulator: single-step prompts, nothing executed (components/evaluation/single_step.py)
    prompts = rl_rows(rows) if domain.simulated else single_step.rl_rows(rows, tok)
    dataset = Dataset.from_list(prompts)
    chosen = reward_functions(params, tok)
    funcs, weights = [fn for _, fn, _ in chosen], [w for _, _, w in chosen]
    resume = checkpoints.start(params, "rl", resume_inputs(params))
    args = GRPOConfig(
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.num_generations, learning_rate=cfg.learning_rate,
        max_completion_length=cfg.max_completion_length, max_tool_calling_iterations=cfg.max_tool_calling_iterations,
        temperature=cfg.temperature, beta=cfg.beta, reward_weights=weights, logging_steps=1, report_to="none",
        seed=params.project.seed, **checkpoints.trainer_args(params, "rl", cfg.save_steps),
        **ALGORITHMS[cfg.algorithm], **training.precision(params.base))
    trainer_class, extra = GRPOTrainer, {}
    if params.decoding.constrained and response.grammar_fits(tok):  # under the ChatML grammar; mismatch measured
        from components.training.constrained_rl import ConstrainedGRPOTrainer

        trainer_class = ConstrainedGRPOTrainer
        extra = {} if domain.simulated else {"row_tools": {p["prompt"]: json.loads(r["tools"])
                                                          for p, r in zip(prompts, rows)}}
    trainer = trainer_class(model=model, processing_class=tok, reward_funcs=funcs, args=args, train_dataset=dataset,
                            environment_factory=domain.env,
                            peft_config=training.lora_config(cfg.lora, "CAUSAL_LM", model),
                            callbacks=[step_metrics_callback(), checkpoints.sealer()], **extra)
    seconds = checkpoints.train(trainer, resume)
    history = trainer.state.log_history
    keys = ["reward"] + [f"rewards/{name}/mean" for name, fn, _ in chosen if callable(fn)]
    reports = params.path("reports")
    training.write_curve(history, keys, reports / "rl_reward.csv", reports / "rl_reward.png",
                         f"RL ({cfg.algorithm}) reward")
    first, last = training.first_last(history, "reward", window=1)
    out = params.path("rl_model")
    training.save_trained(trainer.model, tok, out, {"stage": "rl", "algorithm": cfg.algorithm, "steps": cfg.max_steps},
                          trainer)
    checkpoints.finish(params, "rl")
    return StageResult(stage="rl", outputs={"model": str(out)},
                       metrics={"reward_first": first, "reward_last": last, "train_seconds": round(seconds, 1),
                                "tool_call_frequency": _mean_logged(history, "tools/call_frequency"),
                                "resumed_from_step": float(checkpoints.resumed_step(resume)),
                                **({"constrained_log_mass": _mean_logged(history, "constrained/log_mass"),
                                    "constrained_off_grammar_share":
                                        _mean_logged(history, "constrained/off_grammar_share")}
                                   if trainer_class is not GRPOTrainer else {})},
                       reports=[str(reports / "rl_reward.png"), str(reports / "rl_reward.csv")],
                       details={"algorithm": cfg.algorithm,
                                "episodes": "multi-step in the simulator" if domain.simulated
                                else "single-step (no simulator): first step of each prompt, scored by call correctness"})


def _mean_logged(history: list[dict[str, Any]], key: str) -> float:
    """The mean of a per-step logged value over the steps that logged it (0.0: none did)."""
    values = [h[key] for h in history if key in h]
    return sum(values) / len(values) if values else 0.0


def main() -> None:
    from components.tracking import stage_main

    stage_main("rl")


if __name__ == "__main__":
    main()
