"""Benchmark: RL seconds per step, the rl stage's GRPO trainer (`rl.grpo_trainer`: its config, reward layers,
simulator environment, constrained rollouts and MLflow / checkpoint callbacks, as the stage builds it) against a
bare TRL `GRPOTrainer` script on the same start model, prompts, reward functions and settings, in one run.

    python bench/bench_rl.py [--params params.yaml] [--profile NAME] [--steps 4] [--rounds 2] [-S key=value ...]
                             [--arms bare,stock,constrained,engine]
                             [--prepare]

Arms, each from a fresh copy of the SFT model with the same seed (so the same rollouts are sampled): `bare` (TRL
alone), `project, stock decoding` (the stage with `decoding.constrained: false`: target <= 1.05x bare) and, when
params turn it on, `project, constrained` (rollouts under the tool-call grammar: its cost is the grammar's), and
`project, engine rollouts` (`rl.rollout: engine`: the evaluation's batched engine through `rollout_func`, with the
params' decoding; `rl.max_completion_length` caps each turn there, the whole rollout in TRL's loop).
The first step of each run is a warm-up and not counted; each arm runs `--rounds` times, the order of the
arms reversed every other round, so neither order nor warm caches favour one. Prompt selection
(`rl.select_samples`) runs before training, not in a step: its seconds are printed apart. No checkpoints are
written (`rl.save_steps` 0 in all arms). `--prepare` runs the base, ingest, build and sft stages first when the
SFT model is missing (e.g. `--profile quick -S project.workdir=runs/bench_rl --prepare` on the tiny model;
the reward model too when its weight is above 0).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components import base, build, domains, ingest, reward_model, rl, sft, training  # noqa: E402
from components.config import Params, load_params  # noqa: E402
from components.data.fileio import read_jsonl  # noqa: E402
from components.training import models, selection  # noqa: E402


def _timer() -> Any:
    """A TrainerCallback keeping the wall time at train begin and at each step's end."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        marks: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.marks = [time.perf_counter()]

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.marks.append(time.perf_counter())

    return Timer()


def bare_trainer(params: Params, model: Any, tok: Any, rows: list[dict[str, Any]], out: str, timer: Any) -> Any:
    """What a user's ~20-line TRL script would build: GRPOConfig with the same values, plain reward functions,
    the domain's environment class, no callbacks of the project's."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    cfg, domain = params.rl, domains.of(params)
    chosen = rl.reward_functions(params, domain, tok)
    args = GRPOConfig(output_dir=out, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                      num_generations=cfg.num_generations, learning_rate=cfg.learning_rate,
                      max_completion_length=cfg.max_completion_length,
                      max_tool_calling_iterations=cfg.max_tool_calling_iterations, temperature=cfg.temperature,
                      beta=cfg.beta, reward_weights=[w for _, _, w in chosen], logging_steps=1, report_to="none",
                      seed=params.project.seed, save_strategy="no", **rl.ALGORITHMS[cfg.algorithm],
                      **training.precision(params.base))
    return GRPOTrainer(model=model, processing_class=tok, reward_funcs=[fn for _, fn, _ in chosen], args=args,
                       train_dataset=Dataset.from_list(rl.grpo_rows(rows)), environment_factory=domain.env,
                       peft_config=training.lora_config(cfg.lora, "CAUSAL_LM", model), callbacks=[timer])


def project_trainer(params: Params, model: Any, tok: Any, rows: list[dict[str, Any]], out: str, timer: Any) -> Any:
    from components.tracking import step_metrics_callback
    from components.training import checkpoints

    trainer = rl.grpo_trainer(params, domains.of(params), model, tok, rows,
                              [step_metrics_callback(), checkpoints.sealer(), timer])
    trainer.args.output_dir = out
    return trainer


def _timed_generation(trainer: Any) -> list[float]:
    """Wrap the trainer's rollout generation (`_generate`: TRL's tool loop, or the engine's rollout_func) to keep
    its seconds per call (one call per step here); returns the list it fills."""
    spent: list[float] = []
    generate = trainer._generate

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    trainer._generate = timed
    return spent


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--steps", type=int, default=4, help="steps per arm, the first one a warm-up (not counted)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per arm, in reversed order every other round")
    ap.add_argument("-S", "--set-param", action="append", default=[], dest="overrides")
    ap.add_argument("--prepare", action="store_true", help="run base, ingest, build and sft first if needed")
    ap.add_argument("--arms", default="bare,stock,constrained,engine",
                    help="which arms, comma-separated (bare is always run: the ratios are to it)")
    args = ap.parse_args()
    params = load_params(args.params, args.profile, [*args.overrides, f"rl.max_steps={args.steps}", "rl.save_steps=0"])
    if args.prepare and not params.path("sft_model").exists():
        for stage in (base, ingest, build, sft):
            stage.run(params)
    if args.prepare and params.rl.reward_weights.reward_model > 0 and not params.path("reward_model").exists():
        reward_model.run(params)
    domain = domains.of(params)
    if not domain.simulated:
        raise SystemExit("bench_rl: a domain with a simulator only (the bare arm uses its environment class)")
    model, tok = models.load(params.path("sft_model"))
    rows = [r for r in read_jsonl(params.path("splits") / "rl.jsonl") if r["pattern"] != "multi_turn"]
    started = time.time()
    rows, found = selection.select(
        rows, rl.prompts_needed(params), params.rl.select_samples, params.rl.pattern_weights, params.project.seed,
        lambda chunk: [a.successes
                       for a in selection.sample(params, domain, model, tok, chunk, params.rl.select_samples,
                                                 gated=False)])
    print(f"prompt selection (rl.select_samples {params.rl.select_samples}): {time.time() - started:.1f} s {found}")
    stock = params.model_copy(update={"decoding": params.decoding.model_copy(update={"constrained": False})})
    engine = params.model_copy(update={"rl": params.rl.model_copy(update={"rollout": "engine"})})
    wanted = {"bare", *args.arms.split(",")}
    arms = [(name, build_trainer, arm_params) for key, name, build_trainer, arm_params in (
        ("bare", "bare TRL GRPOTrainer", bare_trainer, params),
        ("stock", "project, stock decoding", project_trainer, stock),
        ("constrained", "project, constrained", project_trainer, params),
        ("engine", f"project, engine rollouts{', constrained' if params.decoding.constrained else ''}",
         project_trainer, engine)) if key in wanted and (key != "constrained" or params.decoding.constrained)]
    import mlflow

    load_before, times = os.getloadavg()[0], {name: [] for name, _, _ in arms}
    generating = {name: [] for name, _, _ in arms}  # seconds in the trainer's `_generate` per counted step
    lengths = {name: [] for name, _, _ in arms}  # mean model tokens per rollout of each counted step
    runs = [arm for r in range(args.rounds) for arm in (arms if r % 2 == 0 else arms[::-1])]
    for name, build_trainer, arm_params in runs:
        timer = _timer()
        with tempfile.TemporaryDirectory() as out:
            # the project's arms log their step metrics into an MLflow run, as the stage does
            mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
            trainer = build_trainer(arm_params, copy.deepcopy(model), tok, rows, out, timer)
            spent = _timed_generation(trainer)
            with mlflow.start_run():
                trainer.train()
        steps = [b - a for a, b in zip(timer.marks, timer.marks[1:])][1:]  # the first: warm-up
        times[name] += steps
        generating[name] += spent[1:]
        lengths[name] += [h["completions/mean_length"] for h in trainer.state.log_history
                          if "completions/mean_length" in h][1:]
        print(f"{name}: {', '.join(f'{s:.2f}' for s in steps)} s per step")
    per_step = {name: sum(steps) / len(steps) for name, steps in times.items()}
    bare = per_step["bare TRL GRPOTrainer"]
    print("\n| arm | s/step | steps counted | ratio to bare | generation s/step | model tokens per rollout | "
          "generation ms per model token |\n|---|---|---|---|---|---|---|")
    for name, seconds in per_step.items():
        gen, length = _mean(generating[name]), _mean(lengths[name])
        per_token = 1000 * gen / (length * params.rl.batch_size) if length else float("nan")
        print(f"| {name} | {seconds:.2f} | {len(times[name])} | {seconds / bare:.3f} | {gen:.2f} | {length:.1f} | "
              f"{per_token:.1f} |")
    print(f"\nmodel {params.base.model}, {params.rl.algorithm}, batch {params.rl.batch_size} x "
          f"{params.rl.num_generations} generations, load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    ratio = per_step.get("project, stock decoding", bare) / bare
    raise SystemExit(0 if ratio <= 1.05 else 1)


if __name__ == "__main__":
    main()
