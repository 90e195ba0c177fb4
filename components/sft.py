"""Stage `sft`: supervised fine-tuning on verified trajectories (TRL SFTTrainer, optional PEFT LoRA,
assistant-only loss: tool-call turns and final answers carry loss, prompts and tool results do not).

Reads: `paths.base` (model), `paths.splits/sft.jsonl`, params `sft`.
Writes: `paths.sft_model` (merged weights, safetensors), `paths.reports/sft_loss.{csv,png}`; while training, a
checkpoint every `sft.save_steps` under `paths.checkpoints/sft/`, resumed by a rerun after a kill
(components/training/checkpoints.py).
Run: `python -m components.sft`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from components.training import checkpoints
from components import training
from components.config import ConfigError, Params, Rl, Sft
from components.data.fileio import read_jsonl
from components.result import StageResult
from components.toolcalls import render

SCHEDULES = {"constant": "constant_with_warmup", "cosine": "cosine", "linear": "linear",  # lr_schedule -> HF's
             "wsd": "warmup_stable_decay"}


def schedule_args(cfg: Sft | Rl) -> dict[str, Any]:
    """The trainer arguments of `cfg`'s learning-rate schedule (sft or rl: lr_schedule, warmup_steps,
    cooldown_steps); wsd decays linearly to 0 over the last cooldown_steps."""
    args: dict[str, Any] = {"lr_scheduler_type": SCHEDULES[cfg.lr_schedule], "warmup_steps": cfg.warmup_steps}
    if cfg.lr_schedule == "wsd":
        args["lr_scheduler_kwargs"] = {"num_decay_steps": cfg.cooldown_steps, "decay_type": "linear"}
    return args


def run(params: Params, callbacks: list[Any] = ()) -> StageResult:
    """Train and save the SFT model; `callbacks` are extra `TrainerCallback`s (bench/learning_curve.py's snapshots)."""
    training.check_quantization(params.base)  # 4-bit without CUDA: stop before any work
    cfg = params.sft
    rows = drawn_rows(params, cfg.max_steps)
    loaded = training.load_for_training(params, params.path("base"), cfg.lora.enabled)
    tok = loaded[1]
    data = params.path("splits") / "sft.jsonl"
    trainer, seconds, resume = fit(params, cfg, rows, loaded, "sft", [data, params.path("base")], callbacks)
    history = trainer.state.log_history
    reports = params.path("reports")
    training.write_curve(history, ["loss"], reports / "sft_loss.csv", reports / "sft_loss.png", "SFT loss")
    first, last = training.first_last(history, "loss")
    out = params.path("sft_model")
    gated: dict[str, float] = {}
    steps = trainer.state.global_step  # max_steps, unless a callback ended training early (bench/learning_curve.py)
    training.save_trained(trainer.model, tok, out, {"stage": "sft", "base": params.base.model,
                                                    "lora": cfg.lora.enabled, "steps": steps}, trainer,
                          training.call_gate(params, gated))
    checkpoints.finish(params, "sft")
    return StageResult(stage="sft", outputs={"model": str(out)},
                       metrics={"loss_first": first, "loss_last": last, "train_seconds": round(seconds, 1),
                                "episodes_seen": float(training.rows_needed(steps, cfg.batch_size, cfg.grad_accum)),
                                "resumed_from_step": float(checkpoints.resumed_step(resume)), **gated},
                       reports=[str(reports / "sft_loss.png"), str(reports / "sft_loss.csv")])


def drawn_rows(params: Params, steps: int) -> list[dict[str, Any]]:
    """The episodes a run of `steps` SFT steps draws from `sft.jsonl` (over all processes): the stage's seeded draw,
    by `sft.pattern_weights`; rl's `more_sft` takes what a longer run draws past this stage's own."""
    cfg = params.sft
    return training.sample_rows(read_jsonl(params.path("splits") / "sft.jsonl"),
                                training.rows_needed(steps, cfg.batch_size, cfg.grad_accum), params.project.seed,
                                cfg.pattern_weights)


def fit(params: Params, cfg: Sft, rows: list[dict[str, Any]], loaded: tuple[Any, Any], stage: str,
        inputs: list[Path], callbacks: list[Any] = ()) -> tuple[Any, float, Path | None]:
    """SFT of the loaded (model, tokenizer) on `rows` ({"messages", "tools"}) with the settings of `cfg` (an `sft`
    section; rl's `rft` arm passes its own), checkpointed and resumed as `stage` over `inputs`
    (components/training/checkpoints.py). Returns the trainer, the training seconds and the checkpoint resumed from.

    Raises:
        ConfigError: truncation to `cfg.max_length` leaves no row an assistant token.
    """
    from datasets import Dataset
    from trl import SFTConfig

    from components.tracking import step_metrics_callback

    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in rows]
    dataset = Dataset.from_list(rows, on_mixed_types="use_json")
    model, tok = loaded
    resume = checkpoints.start(params, stage, inputs)
    args = SFTConfig(
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, **schedule_args(cfg),
        max_length=None if cfg.padding_free else cfg.max_length, padding_free=cfg.padding_free,
        train_sampling_strategy=cfg.sampling, assistant_only_loss=True, logging_steps=1, report_to="none",
        seed=params.project.seed, **checkpoints.trainer_args(params, stage, cfg.save_steps),
        **training.precision(params.base))
    trainer_cls = trainer_class(cfg, tok, rows[0])
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tok,
                          peft_config=training.lora_config(cfg.lora, "CAUSAL_LM", model),
                          callbacks=[step_metrics_callback(), checkpoints.sealer(), *callbacks])
    if len(trainer.train_dataset) == 0:  # TRL drops, silently, episodes that truncation left without assistant tokens
        raise ConfigError(f"sft.max_length {cfg.max_length}: truncation leaves none of the {len(rows)} episodes an "
                          f"assistant token with the base model's chat template (its tool list alone is longer); "
                          f"raise sft.max_length")
    return trainer, checkpoints.train(trainer, resume), resume


def trainer_class(cfg: Sft, tok: Any, row: dict[str, Any]) -> type:
    """TRL's SFTTrainer with what `cfg` turns on: the decision weight (`decision_weighted_trainer`) and, under it, the
    shared prefix of `row`'s system turn and tools (`shared_prefix_trainer`, whose rewritten batch then gets the
    weights). The prefix is rendered only when it is used: some chat templates (Qwen's) refuse a conversation
    without a user turn."""
    from trl import SFTTrainer

    cls = SFTTrainer
    if cfg.decision_weight != 1.0:
        cls = decision_weighted_trainer(cls, cfg.decision_weight)
    if cfg.share_prefix and cfg.padding_free:
        cls = shared_prefix_trainer(cls, prefix_ids(tok, row))
    return cls


def decision_weighted_trainer(base: type, weight: float) -> type:
    """`base` (TRL's SFTTrainer) with the loss of each assistant turn's first token multiplied by `weight`.

    That token is the turn's decision: `<` of `<tool_call>` or the first word of a text answer. In a 66-step run it
    is one token of the ~60 an episode's turn carries loss on, so a plain token average spends little of the
    gradient on whether to call at all. The loss stays divided by the number of loss tokens (what TRL divides by),
    so the other tokens keep their weight and the decision tokens gain `weight - 1` times theirs.
    """

    class DecisionWeightedSFTTrainer(base):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            scaled = _ScaledLogProbs(model, decision_scale(inputs["labels"], weight))
            out = super().compute_loss(scaled, inputs, return_outputs, num_items_in_batch)
            if scaled.unfused_calls:  # label smoothing or a compute_loss_func: the loss came from plain logits
                raise ConfigError(f"sft.decision_weight {weight}: TRL computed this loss from plain logits, not its "
                                  "fused per-token log-probabilities the weight scales; set it to 1")
            return out

    return DecisionWeightedSFTTrainer


def decision_scale(labels: torch.Tensor, weight: float) -> torch.Tensor:
    """Per next-token weights (shape of `labels[:, 1:]`): `weight` where a run of loss tokens starts (an assistant
    turn's first token), 1 elsewhere."""
    target = labels[:, 1:] != -100
    starts = target & (labels[:, :-1] == -100)
    return torch.where(starts, torch.tensor(weight, dtype=torch.float32, device=labels.device),
                       torch.tensor(1.0, dtype=torch.float32, device=labels.device))


class _ScaledLogProbs:
    """The model as TRL's `compute_loss` calls it, with the fused LM head's per-token log-probabilities multiplied
    by `scale` (TRL 1.16 sums `-log_probs` into the loss; its entropy and accuracy metrics stay unweighted)."""

    def __init__(self, model: Any, scale: torch.Tensor) -> None:
        self._model, self._scale = model, scale
        self.unfused_calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self._model(*args, **kwargs)
        if kwargs.get("fused_lm_head"):
            out.log_probs = out.log_probs * self._scale.to(out.log_probs.dtype)
        else:
            self.unfused_calls += 1
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def shared_prefix_trainer(base: type, prefix: torch.Tensor) -> type:
    """`base` (TRL's SFTTrainer) computing the prompt prefix every episode shares only once per batch.

    All episodes of a domain start with the same system turn (instructions and tool list): about half of
    a single-call episode's tokens, and none of them carry loss. A padding-free batch is rewritten so the
    prefix runs once (with gradients) and every episode attends to its keys and values; the loss and the
    gradients are the same as for the full batch (tests/integration/test_training.py checks this), the
    compute per batch of 4 single-call episodes falls by about 40 %. Batches whose episodes do not all
    start with the prefix take the normal path.

    Args:
        base: The trainer class to extend.
        prefix: Token ids of the shared prefix (`prefix_ids`).
    """

    class SharedPrefixSFTTrainer(base):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            head = prefix.to(inputs["input_ids"].device)
            shared = split_shared_prefix(inputs, head)
            if shared is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            plain = self.accelerator.unwrap_model(model)  # not DDP's wrapper (which has no `.model`)
            body = getattr(plain, "get_base_model", lambda: plain)().model
            shared["past_key_values"] = body(input_ids=head[None], use_cache=True).past_key_values
            counted = self._total_train_tokens
            out = super().compute_loss(model, shared, return_outputs, num_items_in_batch)
            if model.training:  # TRL counted (and put in the step's metrics) the 4-D mask's cells: count the
                # episodes' tokens, prefix included, as the plain path does
                tokens = torch.tensor(inputs["input_ids"].numel(), device=head.device)
                self._total_train_tokens = counted + self.accelerator.gather_for_metrics(tokens).sum().item()
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return out

    return SharedPrefixSFTTrainer


def prefix_ids(tok: Any, row: dict[str, Any]) -> torch.Tensor:
    """Token ids of an SFT row's system turn with its tool list: the part episodes of one catalog share."""
    system = [m for m in row["messages"][:1] if m["role"] == "system"]
    tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]  # build stores JSON text
    text = render.prompt(tok, system, tools, generation=False) if system or tools else ""
    return torch.tensor(tok(text, add_special_tokens=False)["input_ids"], dtype=torch.long)


def split_shared_prefix(inputs: dict[str, Any], prefix: torch.Tensor) -> dict[str, Any] | None:
    """Drop the shared prefix from every episode of a padding-free batch; None when one lacks it.

    Returns the episodes' remaining tokens (positions kept, so they continue after the prefix) and a
    4-D boolean mask: each token sees the whole prefix, then its own episode causally.
    """
    ids, pos, labels = inputs["input_ids"][0], inputs["position_ids"][0], inputs["labels"][0]
    n = len(prefix)
    starts = (pos == 0).nonzero().flatten().tolist()
    keep = torch.ones(len(ids), dtype=torch.bool, device=ids.device)
    for start, end in zip(starts, starts[1:] + [len(ids)]):
        if (end - start <= n or not torch.equal(ids[start:start + n], prefix)
                or (labels[start:start + n + 1] != -100).any()):
            return None
        keep[start:start + n] = False
    episode = (torch.cumsum((pos == 0).long(), 0) - 1)[keep]
    rest = pos[keep]
    causal = (episode[:, None] == episode[None, :]) & (rest[None, :] <= rest[:, None])
    mask = torch.cat([torch.ones(len(rest), n, dtype=torch.bool, device=ids.device), causal], dim=1)
    return {"input_ids": ids[keep][None], "position_ids": rest[None], "labels": labels[keep][None],
            "attention_mask": mask[None, None]}


def main() -> None:
    from components.tracking import stage_main

    stage_main("sft")


if __name__ == "__main__":
    main()
