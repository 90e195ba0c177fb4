"""Stage `rl`: reinforcement learning in the domain simulator with TRL GRPOTrainer (GRPO, GSPO, Dr.GRPO or
DAPO), the model calling the simulator's tools live (TRL's tool loop, `environment_factory`; or with `rl.rollout:
engine` the evaluation's batched engine through `rollout_func`, multi_turn prompts included:
components/training/engine_rollout.py), rewarded by the layered rewards (correctness, completion, efficiency) and
optionally the learned reward model. A domain without a simulator (a
bring-your-own tool catalog) trains on single-step prompts instead, without the completion layer.

Reads: `paths.sft_model`, `paths.reward_model` (if its weight > 0), `paths.splits/rl.jsonl` (and `train.jsonl`,
the episodes behind its rows, when the start model is sampled), params `rl` (`sft` for `rft`).
Writes: `paths.rl_model` (safetensors), `paths.reports/rl_reward.{csv,png}`; while training, a checkpoint every
`rl.save_steps` under `paths.checkpoints/rl/`, resumed by a rerun after a kill (components/training/checkpoints.py).
With `decoding.constrained`, rollouts follow the tool-call grammar of the offered tools
(components/training/constrained_rl.py) and metrics `constrained_log_mass` / `constrained_off_grammar_share`
measure how far the policy the trainer scores (unconstrained) is from the one that sampled.
Prompts: drawn weighted by `rl.pattern_weights`, and with `rl.select_samples` = k > 0 only those the start model
solves in some but not all of k samples (components/training/selection.py); TRL logs the share of zero-spread groups
of each step as `frac_reward_zero_std`, the stage reports its mean as `zero_spread_share`.
`rl.algorithm: rft` (rejection-sampling fine-tuning, the cheap baseline; the default): sample the start model
`num_generations` times per prompt through the evaluation's engine (every pattern, whatever `rl.rollout` says), keep
the evaluation scorer's successes, and SFT on them with the sft stage's trainer (`sft.fit`; `sft` settings, except
max_steps, learning_rate, the schedule, lora and save_steps from `rl`), each pattern's share of the successes
trained on weighted by `rl.pattern_weights`; with `rl.rft_references` the reference trajectory of each prompt no
sample solved joins them (STaR's rationalization: the prompts beyond the start model teach too).
`rl.algorithm: more_sft` is the control for all of them: the same fine-tuning on the training episodes the sft stage
would have drawn next (`more_sft`). Every arm runs `rl.lr_schedule` (linear to 0: GRPO's own default).
Run: `python -m components.rl`.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

from components import domains, sft, training
from components.training import checkpoints, rewards, selection
from components.evaluation import single_step
from components.toolcalls import response
from components.config import ConfigError, Params
from components.data.fileio import read_jsonl
from components.result import StageResult

# GRPOConfig settings that turn GRPO into each family member (TRL 1.16; PPO is not in TRL any more).
ALGORITHMS: dict[str, dict[str, Any]] = {
    "grpo": {"loss_type": "grpo"},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence"},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},
    "dapo": {"loss_type": "dapo", "epsilon_high": 0.28, "mask_truncated_completions": True},
}


def reward_functions(params: Params, domain: domains.Domain, tok: Any = None) -> list[tuple[str, Any, float]]:
    """(name, reward callable or the reward model folder, weight) of every reward with a weight above 0; the
    layers are bound to the stage's `domain` (one without a simulator has no `completion` layer) and to the
    policy's tokenizer `tok`, which reads a text completion in the model's own tool syntax (TRL passes reward
    functions no tokenizer)."""
    weights = params.rl.reward_weights
    out = [(name, fn, getattr(weights, name))
           for name, fn in rewards.layers(domain, tok).items() if getattr(weights, name) > 0]
    if weights.reward_model > 0:
        out.append(("reward_model", str(params.path("reward_model")), weights.reward_model))
    return out


def grpo_rows(rows: list[dict[str, Any]], multi_turn: bool = False) -> list[dict[str, Any]]:
    """The dataset columns GRPO needs. multi_turn prompts are left out unless `multi_turn` (the engine's rollouts
    feed the user's follow-up turns; TRL's tool loop cannot, so their later steps could never be earned)."""
    return [{k: r[k] for k in ("id", "prompt", "expected", "goal", "outputs", "pattern")} for r in rows
            if multi_turn or r["pattern"] != "multi_turn"]


def engine_rollout(params: Params, domain: domains.Domain) -> bool:
    """Whether GRPO samples through the evaluation's engine (`rl.rollout: engine`).

    Raises:
        ConfigError: `rl.rollout: engine` on a domain without a simulator.
    """
    if params.rl.rollout != "engine":
        return False
    if not domain.simulated:
        raise ConfigError(f"rl.rollout: engine rolls episodes out in the domain's simulator and domain "
                          f"{domain.name!r} has none; set rl.rollout: trl")
    return True


def resume_inputs(params: Params) -> list[Path]:
    """What a checkpoint of this stage depends on besides params: the prompts, the start model and, when it is used,
    the reward model."""
    used = [params.path("reward_model")] if params.rl.reward_weights.reward_model > 0 else []
    if params.rl.algorithm == "more_sft":
        used.append(params.path("splits") / "sft.jsonl")
    return [params.path("splits") / "rl.jsonl", params.path("sft_model"), *used]


def prompts_needed(params: Params) -> int:
    """Distinct prompts a GRPO run draws: each batch of rollouts takes batch_size / num_generations per process,
    and serves `num_iterations` steps."""
    cfg = params.rl
    return training.rows_needed(math.ceil(cfg.max_steps / cfg.num_iterations), cfg.batch_size // cfg.num_generations, 1)


def prompts(params: Params, domain: domains.Domain) -> list[dict[str, Any]]:
    """The RL prompts (`rl.jsonl`) the arm trains on. rft samples every pattern through the evaluation's engine,
    whatever `rl.rollout` says; GRPO's arms leave multi_turn prompts out of TRL's tool loop (see grpo_rows).

    Raises:
        ConfigError: A GRPO arm with `rl.rollout: engine` on a domain without a simulator.
    """
    rows = read_jsonl(params.path("splits") / "rl.jsonl")
    if params.rl.algorithm in ("rft", "more_sft"):
        return rows
    engine = engine_rollout(params, domain)
    return [r for r in rows if not domain.simulated or engine or r["pattern"] != "multi_turn"]


def run(params: Params) -> StageResult:
    cfg = params.rl
    domain = domains.of(params)  # resolved once: a catalog file is read here only
    training.check_quantization(params.base)  # 4-bit without CUDA: stop before any work
    rows = prompts(params, domain)  # a rollout the domain cannot run: stop before loading the model
    model, tok = training.load_for_training(params, params.path("sft_model"), cfg.lora.enabled)
    if cfg.select_samples or cfg.algorithm == "rft":
        training.place_for_sampling(params, model)  # the start model's samples on the GPU, where there is one
    if cfg.algorithm == "rft":
        return rft(params, domain, model, tok, rows)
    if cfg.algorithm == "more_sft":
        return more_sft(params, model, tok)
    started = time.time()
    rows, chosen_metrics = selection.select(
        rows, prompts_needed(params), cfg.select_samples, cfg.pattern_weights, params.project.seed,
        lambda chunk: [a.successes for a in selection.sample(params, domain, model, tok, chunk, cfg.select_samples,
                                                             gated=False)])  # as GRPO samples: no call gate
    chosen_metrics |= {"select_seconds": round(time.time() - started, 1)} if cfg.select_samples else {}
    trainer, seconds, resume = _grpo(params, domain, model, tok, rows)
    history = trainer.state.log_history
    chosen = reward_functions(params, domain, tok)
    keys = ["reward"] + [f"rewards/{name}/mean" for name, _, _ in chosen]
    reports = params.path("reports")
    training.write_curve(history, keys, reports / "rl_reward.csv", reports / "rl_reward.png",
                         f"RL ({cfg.algorithm}) reward")
    first, last = training.first_last(history, "reward", window=1)
    gated: dict[str, float] = {}
    out = _save(params, trainer, tok, gated)
    constrained = any("constrained/log_mass" in h for h in history)  # either trainer's grammar-bound rollouts
    rerendered = ({"rerendered_tokens": _mean_logged(history, "engine/rerendered_tokens")}  # the engine's rollouts
                  if any("engine/rerendered_tokens" in h for h in history) else {})
    return StageResult(stage="rl", outputs={"model": str(out)},
                       metrics={"reward_first": first, "reward_last": last, "train_seconds": round(seconds, 1),
                                "tool_call_frequency": _mean_logged(history, "tools/call_frequency"),
                                "zero_spread_share": _mean_logged(history, "frac_reward_zero_std"),
                                "prompts": float(len(rows)), **chosen_metrics,
                                "resumed_from_step": float(checkpoints.resumed_step(resume)), **gated, **rerendered,
                                **({"constrained_log_mass": _mean_logged(history, "constrained/log_mass"),
                                    "constrained_off_grammar_share":
                                        _mean_logged(history, "constrained/off_grammar_share")}
                                   if constrained else {})},
                       reports=[str(reports / "rl_reward.png"), str(reports / "rl_reward.csv")],
                       details={"algorithm": cfg.algorithm,
                                "episodes": "multi-step in the simulator" if domain.simulated
                                else "single-step (no simulator): first step of each prompt, scored by call correctness"})


def grpo_trainer(params: Params, domain: domains.Domain, model: Any, tok: Any, rows: list[dict[str, Any]],
                 callbacks: list[Any]) -> Any:
    """The configured GRPO trainer (grpo, gspo, dr_grpo, dapo) on the chosen rl.jsonl `rows`, as the stage builds
    it (bench/bench_rl.py times its steps against a bare GRPOTrainer)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    cfg = params.rl
    engine = engine_rollout(params, domain)
    # no simulator: single-step prompts, nothing executed (components/evaluation/single_step.py)
    prompts = grpo_rows(rows, engine) if domain.simulated else single_step.grpo_rows(rows, tok)
    chosen = reward_functions(params, domain, tok)
    args = GRPOConfig(
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.num_generations, learning_rate=cfg.learning_rate, num_iterations=cfg.num_iterations,
        **sft.schedule_args(cfg),
        max_completion_length=cfg.max_completion_length, max_tool_calling_iterations=cfg.max_tool_calling_iterations,
        temperature=cfg.temperature, beta=cfg.beta, reward_weights=[w for _, _, w in chosen], logging_steps=1,
        report_to="none", seed=params.project.seed, **checkpoints.trainer_args(params, "rl", cfg.save_steps),
        **ALGORITHMS[cfg.algorithm], **training.precision(params.base))
    constrained = params.decoding.constrained and response.grammar_fits(tok)
    trainer_class, extra = GRPOTrainer, {"environment_factory": domain.env}
    if engine:
        from components.training.engine_rollout import EngineGRPOTrainer

        trainer_class = EngineGRPOTrainer
        extra = {"params": params, "domain": domain, "constrained": constrained,
                 "episodes": {e.id: e for e in selection.train_episodes(params, rows)}}
    elif constrained:  # under the ChatML grammar; mismatch measured
        from components.training.constrained_rl import ConstrainedGRPOTrainer

        trainer_class = ConstrainedGRPOTrainer
        if not domain.simulated:
            extra["row_tools"] = {p["prompt"]: json.loads(p["tools"]) for p in prompts}
    return trainer_class(model=model, processing_class=tok, reward_funcs=[fn for _, fn, _ in chosen], args=args,
                         train_dataset=Dataset.from_list(prompts),
                         peft_config=training.lora_config(cfg.lora, "CAUSAL_LM", model), callbacks=callbacks, **extra)


def _grpo(params: Params, domain: domains.Domain, model: Any, tok: Any,
          rows: list[dict[str, Any]]) -> tuple[Any, float, Path | None]:
    from components.tracking import step_metrics_callback

    resume = checkpoints.start(params, "rl", resume_inputs(params))
    trainer = grpo_trainer(params, domain, model, tok, rows, [step_metrics_callback(), checkpoints.sealer()])
    return trainer, checkpoints.train(trainer, resume), resume


def rft(params: Params, domain: domains.Domain, model: Any, tok: Any, rows: list[dict[str, Any]]) -> StageResult:
    """Rejection-sampling fine-tuning: `rl.num_generations` samples of the start model per prompt, the evaluation
    scorer's successes kept, SFT on them with the sft stage's trainer (`rl.rft_references`: and on the reference
    trajectories of the prompts no sample solved).

    Raises:
        ConfigError: nothing to fine-tune on (no sample succeeded, and no reference joins them).
    """
    cfg = params.rl
    started = time.time()
    attempts = selection.sample(params, domain, model, tok, rows, cfg.num_generations)
    sample_seconds = time.time() - started
    kept = selection.sft_rows(attempts)
    unsolved = [a.row for a in attempts if not any(a.successes)]
    references = ([e.sft_row(params.base.system_prompt) for e in selection.train_episodes(params, unsolved)]
                  if cfg.rft_references else [])
    if not kept and not references:
        raise ConfigError(f"rl.algorithm rft: none of the {len(rows)} x {cfg.num_generations} samples of the start "
                          f"model succeeded, so there is nothing to fine-tune on; raise rl.num_generations or "
                          f"build.rl_prompts")
    needed = training.rows_needed(cfg.max_steps, params.sft.batch_size, params.sft.grad_accum)
    data = training.sample_rows(kept + references, needed, params.project.seed, cfg.pattern_weights)
    per_pattern = {f"successes_{p}": float(n) for p, n in sorted(Counter(r["pattern"] for r in kept).items())}
    return _fine_tune(params, model, tok, data, {
        "sample_seconds": round(sample_seconds, 1), "prompts": float(len(rows)),
        "samples": float(len(rows) * cfg.num_generations), "successes": float(len(kept)), **per_pattern,
        "solved_prompts": float(len(rows) - len(unsolved)),
        **({"references": float(len(references))} if cfg.rft_references else {})})


def more_sft(params: Params, model: Any, tok: Any) -> StageResult:
    """The control every RL arm is measured against at its budget: `rl.max_steps` more SFT steps on the training
    episodes' own trajectories, the ones the sft stage would have drawn next had it run that much longer (its
    seeded draw of `sft.jsonl`, `sft.pattern_weights`, continued past its `sft.max_steps`)."""
    cfg = params.sft
    done, needed = (training.rows_needed(steps, cfg.batch_size, cfg.grad_accum)
                    for steps in (cfg.max_steps, params.rl.max_steps))
    data = sft.drawn_rows(params, cfg.max_steps + params.rl.max_steps)[done:]
    if len(data) < needed:  # fewer episodes than the longer run draws: it would have begun another epoch
        data += training.sample_rows(read_jsonl(params.path("splits") / "sft.jsonl"), needed - len(data),
                                     params.project.seed + 1, cfg.pattern_weights)
    return _fine_tune(params, model, tok, data, {"episodes": float(len(data))})


def _fine_tune(params: Params, model: Any, tok: Any, data: list[dict[str, Any]],
               metrics: dict[str, float]) -> StageResult:
    """SFT of the start model on `data` with the sft stage's trainer (`sft` settings, except max_steps,
    learning_rate, the schedule, lora and save_steps from `rl`), saved as the stage's model: the rft
    and more_sft arms."""
    cfg = params.rl
    settings = params.sft.model_copy(update={
        "max_steps": cfg.max_steps, "learning_rate": cfg.learning_rate, "lr_schedule": cfg.lr_schedule,
        "warmup_steps": cfg.warmup_steps, "cooldown_steps": cfg.cooldown_steps, "lora": cfg.lora,
        "save_steps": cfg.save_steps, "pattern_weights": None})
    trainer, seconds, resume = sft.fit(params, settings, data, (model, tok), "rl", resume_inputs(params))
    history = trainer.state.log_history
    reports = params.path("reports")
    training.write_curve(history, ["loss"], reports / "rl_reward.csv", reports / "rl_reward.png",
                         f"RL ({cfg.algorithm}) SFT loss")
    first, last = training.first_last(history, "loss")
    gated: dict[str, float] = {}
    out = _save(params, trainer, tok, gated)
    return StageResult(stage="rl", outputs={"model": str(out)},
                       metrics={"loss_first": first, "loss_last": last, "train_seconds": round(seconds, 1), **metrics,
                                "resumed_from_step": float(checkpoints.resumed_step(resume)), **gated},
                       reports=[str(reports / "rl_reward.png"), str(reports / "rl_reward.csv")],
                       details={"algorithm": cfg.algorithm})


def _save(params: Params, trainer: Any, tok: Any, metrics: dict[str, float]) -> Path:
    """Save the trained model (with its call gate, whose metrics go to `metrics`) as `paths.rl_model`."""
    out = params.path("rl_model")
    training.save_trained(trainer.model, tok, out, {"stage": "rl", "algorithm": params.rl.algorithm,
                                                    "steps": params.rl.max_steps}, trainer,
                          training.call_gate(params, metrics))
    checkpoints.finish(params, "rl")
    return out


def _mean_logged(history: list[dict[str, Any]], key: str) -> float:
    """The mean of a per-step logged value over the steps that logged it (0.0: none did)."""
    values = [h[key] for h in history if key in h]
    return sum(values) / len(values) if values else 0.0


def main() -> None:
    from components.tracking import stage_main

    stage_main("rl")


if __name__ == "__main__":
    main()
