"""Stage `reward_model`: a learned reward on preference pairs (a good trajectory against the same one with a mistake
of one error class of the scorer: components/training/pairs.py), trained with TRL RewardTrainer and measured per
class on held-out pairs it never trained on.

Pairs of two sources: the build's (`paths.splits/pairs.jsonl` for training, `heldout_pairs.jsonl` from the val and test
episodes), and on-policy ones (`reward_model.on_policy`): the SFT model's own sampled attempts at a request, ranked by
the scorer, a failure against a success (class `on_policy`, drawn and reported like the others). A success has every
call right and completes the task (answered, the tool's results stated): right calls followed by a refusal are a
failure here, not a trajectory to prefer.

Reads: `paths.base` (`paths.sft_model` with `reward_model.start` sft), `paths.splits/pairs.jsonl`,
`paths.splits/heldout_pairs.jsonl`, and with `reward_model.on_policy` `paths.sft_model` and the train / val / test
episodes; params `reward_model`.
Writes: `paths.reward_model` (sequence-classification model, safetensors), `paths.reports/reward_model_curve.*`
(training loss and the accuracy on each training batch), `paths.reports/reward_model.md` and
`paths.reports/reward_model_heldout.png` (held-out accuracy per class: chosen scored above rejected, with 95 %
intervals; the report lists the pairs ranked wrong), `paths.reports/reward_model_heldout.csv` (each held-out pair's
rewards), `paths.reports/reward_model_on_policy.jsonl` (the sampled pairs, `split` train or heldout); metrics
`heldout_accuracy` (all held-out pairs), `heldout_accuracy.<class>`, `heldout_margin.<class>`,
`heldout_requests.<class>` (the distinct episodes behind a class's pairs), `on_policy_*`
and `pairs_drawn.<class>` (the training draw, which `reward_model.balance_classes` levels and
`reward_model.class_weights` tilts). With `reward_model.share_prefix` each pair's common start runs once
(`shared_prefix_trainer`). While training, a checkpoint every `reward_model.save_steps` under
`paths.checkpoints/reward_model/`, resumed by a rerun after a kill (components/training/checkpoints.py).
Run: `python -m components.reward_model`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components import distributed, training
from components.config import ConfigError, Params
from components.data.episode import record_object
from components.data.fileio import md_cell
from components.data.inputs import DataError, iter_json_lines, schema_error
from components.evaluation import cache
from components.evaluation.stats import clustered
from components.result import StageResult
from components.training import checkpoints, models

# What samples, judges and pairs the on-policy attempts besides the evaluation's rollout code (its cache key's code)
ON_POLICY_CODE = ("components/training/selection.py", "components/training/pairs.py")


def run(params: Params) -> StageResult:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from components.tracking import step_metrics_callback

    training.check_quantization(params.base)  # 4-bit without CUDA: stop before any work
    cfg, splits = params.reward_model, params.path("splits")
    drawn = training.rows_needed(cfg.max_steps, cfg.batch_size, cfg.grad_accum)  # over all processes
    made = read_pairs(splits / "pairs.jsonl")
    heldout_rows = read_pairs(splits / "heldout_pairs.jsonl")  # checked now, not after sampling and training
    base = start_model(params)
    sampled, sampled_metrics = on_policy(params)
    pairs = training.sample_rows(made + [r for r in sampled if r["split"] == "train"], drawn, params.project.seed,
                                 cfg.class_weights, key="kind", balanced=cfg.balance_classes)
    heldout_rows += [r for r in sampled if r["split"] == "heldout"]
    dataset = Dataset.from_list(preference_rows(pairs), on_mixed_types="use_json")
    model, tok = training.load_for_training(params, base, cfg.lora.enabled, sequence_classification=True)
    model.config.pad_token_id = tok.pad_token_id
    resume = checkpoints.start(params, "reward_model", list(dict.fromkeys(
        [splits / "pairs.jsonl", base, *([params.path("sft_model")] if sampled_metrics else [])])))
    args = RewardConfig(max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
                        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
                        max_length=cfg.max_length, logging_steps=1, report_to="none",
                        seed=params.project.seed, **checkpoints.trainer_args(params, "reward_model", cfg.save_steps),
                        **training.precision(params.base))
    trainer_cls = shared_prefix_trainer(RewardTrainer) if shares_prefix(cfg.share_prefix) else RewardTrainer
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tok,
                          peft_config=training.lora_config(cfg.lora, "SEQ_CLS", model, modules_to_save=["score"]),
                          callbacks=[step_metrics_callback(), checkpoints.sealer()])
    seconds = checkpoints.train(trainer, resume)
    history = trainer.state.log_history
    reports = params.path("reports")
    training.write_curve(history, ["loss", "accuracy"], reports / "reward_model_curve.csv",
                         reports / "reward_model_curve.png", "Reward model (training batches)")
    first, last = training.first_last(history, "loss")
    out = params.path("reward_model")
    training.save_trained(trainer.model, tok, out, {"stage": "reward_model", "base": params.base.model,
                                                    "start": cfg.start}, trainer)
    checkpoints.finish(params, "reward_model")
    kept = len(trainer.train_dataset)  # RewardTrainer drops pairs longer than max_length
    metrics = {"loss_first": first, "loss_last": last, "pairs": float(kept), "pairs_too_long": float(len(pairs) - kept),
               "train_seconds": round(seconds, 1), "resumed_from_step": float(checkpoints.resumed_step(resume))}
    metrics |= {f"pairs_drawn.{kind}": float(n) for kind, n in sorted(Counter(p["kind"] for p in pairs).items())}
    metrics |= sampled_metrics
    result = StageResult(stage="reward_model", outputs={"model": str(out)}, metrics=metrics,
                         reports=[str(reports / name) for name in ("reward_model_curve.png",
                                                                   "reward_model_on_policy.jsonl")])
    if not distributed.is_main():
        return result  # rank 0 measures the saved model
    scored = heldout_scores(heldout_rows,
                            *models.load_for_inference(out, params.base.dtype, sequence_classification=True))
    heldout = per_class(scored)
    write_report(heldout, scored, reports / "reward_model.md", reports / "reward_model_heldout.png",
                 reports / "reward_model_heldout.csv")
    result.metrics |= heldout_metrics(heldout)
    result.reports += [str(reports / f"reward_model{end}") for end in (".md", "_heldout.png", "_heldout.csv")]
    return result


def start_model(params: Params) -> Path:
    """The folder the reward model starts from (`reward_model.start`).

    Raises:
        ConfigError: start sft and `paths.sft_model` holds no model (the sft stage has not run).
    """
    if params.reward_model.start == "base":
        return params.path("base")
    return _sft_model(params, "reward_model.start sft", "or set it to base")


def _sft_model(params: Params, setting: str, instead: str) -> Path:
    sft = params.path("sft_model")
    if not (sft / "config.json").is_file():
        raise ConfigError(f"{setting} needs the SFT model, and {sft} holds none: run the sft stage first, {instead}")
    return sft


def on_policy(params: Params) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """On-policy pairs (`reward_model.on_policy`): the SFT model sampled on a seeded draw of training episodes
    (split "train") and of val and test ones ("heldout"), as GRPO samples it (no call gate), each failed attempt
    against a success of the same request (`pairs.on_policy_pairs`; success: `exact` and `completion`,
    `selection.attempts`). Written to
    `paths.reports/reward_model_on_policy.jsonl` (empty when off); the model is freed before the reward model loads.
    With `evaluate.reuse` the attempts are kept in `paths.eval_cache` (components/evaluation/cache.py), keyed by the
    SFT model, the episodes drawn, the settings and the code, and read back by a later run: a rerun of the stage on
    the same SFT model skips the sampling (25 min at 120 + 120 episodes x 4 here).

    Returns:
        The pairs and metrics `on_policy_episodes`, `on_policy_solved_share` (attempts the scorer passed),
        `on_policy_pairs`, `on_policy_heldout_pairs`, `on_policy_seconds`, `on_policy_cached` (1.0: read back from
        the cache), and `on_policy_errors.<class>` (the failed attempts' classes); no metrics when off.

    Raises:
        ConfigError: sampling is on and `paths.sft_model` holds no model (the sft stage has not run).
    """
    import random
    import time

    from components import domains
    from components.data.episode import iter_episodes
    from components.data.fileio import write_jsonl
    from components.training import pairs, selection

    cfg, out = params.reward_model.on_policy, params.path("reports") / "reward_model_on_policy.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not (cfg.episodes or cfg.heldout_episodes):
        write_jsonl(out, [])
        return [], {}
    sft = _sft_model(params, "reward_model.on_policy", "or set its episodes and heldout_episodes to 0")
    started = time.time()
    domain = domains.of(params)
    drawn = []
    for split, names, n in (("train", ("train",), cfg.episodes), ("heldout", ("val", "test"), cfg.heldout_episodes)):
        pool = sorted((e for name in names for e in iter_episodes(params.path("splits") / f"{name}.jsonl")),
                      key=lambda e: e.id)
        drawn.append((split, random.Random(f"{params.project.seed}:on_policy:{split}").sample(pool, min(n, len(pool)))))
    entry_key = _on_policy_key(params, domain, sft, drawn)
    found = cache.load_result(params.path("eval_cache"), entry_key) if entry_key else None
    hit = found is not None
    if found is None:
        model, tok = models.load_for_inference(sft, params.base.dtype)
        found = {"rows": [], "outcomes": [], "errors": []}
        for split, episodes in drawn:
            attempts = selection.sample_episodes(params, domain, model, tok, episodes, cfg.samples, gated=False,
                                                 desc=f"reward_model: sample the SFT model ({split})", complete=True)
            found["rows"] += pairs.on_policy_pairs(episodes, attempts, split)
            found["outcomes"] += [ok for a in attempts for ok in a.successes]
            found["errors"] += [sorted(set(e)) for a in attempts for e in a.errors]
        del model
        if entry_key:
            cache.store_result(params.path("eval_cache"), entry_key, found,
                               {"what": "reward_model.on_policy", "model": str(sft)})
    rows, outcomes = found["rows"], found["outcomes"]
    write_jsonl(out, rows)
    errors = Counter(e for classes in found["errors"] for e in classes)
    return rows, {"on_policy_episodes": float(sum(len(episodes) for _, episodes in drawn)),
                  "on_policy_solved_share": sum(outcomes) / max(1, len(outcomes)),
                  "on_policy_pairs": float(sum(r["split"] == "train" for r in rows)),
                  "on_policy_heldout_pairs": float(sum(r["split"] == "heldout" for r in rows)),
                  "on_policy_seconds": round(time.time() - started, 1), "on_policy_cached": float(hit),
                  **{f"on_policy_errors.{k}": float(v) for k, v in sorted(errors.items())}}


def _on_policy_key(params: Params, domain: Any, sft: Path, drawn: list[tuple[str, list[Any]]]) -> str | None:
    """The evaluation cache's key of the on-policy attempts: the SFT model, the episodes drawn per split, the rollout
    settings, the sampling and the code that samples, judges and pairs; None with `evaluate.reuse` off."""
    model = cache.model_hash(sft) if params.evaluate.reuse else None
    if model is None:
        return None
    cfg = params.reward_model.on_policy
    settings = cache.rollout_settings(params, domain, params.decoding.constrained) | {
        "what": "reward_model.on_policy", "samples": cfg.samples, "temperature": params.rl.temperature,
        "seed": params.project.seed}
    episodes = "".join(f"{split}:{cache.episodes_hash(eps)}" for split, eps in drawn)
    return cache.key(model, episodes, settings, cache.code_hash(ON_POLICY_CODE))


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(min_length=1)


class _Pair(BaseModel):
    """A row the reward model reads; other keys (episode, pattern, errors) are kept and not needed."""
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    prompt: list[_Message] = Field(min_length=1)
    chosen: list[_Message] = Field(min_length=1)
    rejected: list[_Message] = Field(min_length=1)
    tools: list[dict[str, Any]]


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a pairs file (`pairs.jsonl`, `heldout_pairs.jsonl`), each checked for what the reward model reads.

    Raises:
        DataError: `file:line (id ...)` and the rule: `record_schema` (not an object, or a key missing or of the
            wrong type: id, kind, prompt, chosen, rejected, tools), `duplicate_id`, `identical_pair` (chosen is
            rejected: no preference to learn), or a JSON rule of `components.data.inputs`.
    """
    rows: list[dict[str, Any]] = []
    ids: set[str] = set()
    for lineno, value in iter_json_lines(path):
        if isinstance(value, DataError):
            raise value
        value = record_object(value, f"{path}:{lineno}")
        where = f"{path}:{lineno} (id {value.get('id', '?')})"
        try:
            _Pair.model_validate(value)
        except ValidationError as err:
            raise schema_error(err, where) from None
        if value["id"] in ids:
            raise DataError(where=where, rule="duplicate_id", detail="an earlier pair has this id")
        if value["chosen"] == value["rejected"]:
            raise DataError(where=where, rule="identical_pair",
                            detail="chosen and rejected are the same trajectory: nothing to prefer")
        ids.add(value["id"])
        rows.append(value)
    return rows


def preference_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RewardTrainer's rows for pairs of `pairs.jsonl`: prompt, chosen, rejected, and the tools as JSON text (one
    column type for every row, whatever each pair's schemas hold)."""
    return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"], "tools": json.dumps(p["tools"])}
            for p in pairs]


def shares_prefix(setting: bool | str) -> bool:
    """`reward_model.share_prefix` resolved: auto is on without CUDA (where tokens, not kernel launches, cost)."""
    import torch

    return setting is True or (setting == "auto" and not torch.cuda.is_available())


def shared_prefix_trainer(base: type) -> type:
    """`base` (TRL's RewardTrainer) running the start the two trajectories of a pair share only once.

    Chosen and rejected are the same conversation up to the mistake: the system turn with the tools, the request and
    every turn before it, about a third of a batch's tokens (two thirds of a pair's longer sequence). Each pair's
    common prefix runs once, with gradients, and both continuations read its keys and values; no compute goes to
    padding either (a random batch of 4 pairs pads ~23 % of its cells). The rewards, so the loss, the metrics and
    the gradients, are those of TRL's padded forward pass (tests/integration/test_training.py checks this). A model
    a distributed wrapper holds (DDP, FSDP, DeepSpeed) takes the plain path: the wrapper's own forward must run.
    """

    class SharedPrefixRewardTrainer(base):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            plain = self.accelerator.unwrap_model(model)
            if plain is not model:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            scorer = getattr(plain, "get_base_model", lambda: plain)()  # PEFT's LoRA layers live inside it
            rewards = batch_rewards(scorer, inputs["input_ids"], inputs["attention_mask"])
            return super().compute_loss(_Outputs(rewards), inputs, return_outputs, num_items_in_batch)

    return SharedPrefixRewardTrainer


class _Outputs:
    """Stands for the model in RewardTrainer's `compute_loss`: its call returns rewards computed beforehand."""

    def __init__(self, rewards: Any) -> None:
        self.logits = rewards[:, None]

    def __call__(self, **_: Any) -> _Outputs:
        return self


def batch_rewards(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """The reward of every sequence of a RewardTrainer batch (the chosen half, then the rejected half, padded), each
    pair's common prefix run once: shape (2 x pairs,)."""
    import torch

    seqs = [row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask)]
    half = len(seqs) // 2
    rewards = [_pair_scores(model, [chosen, rejected]) for chosen, rejected in zip(seqs[:half], seqs[half:])]
    return torch.stack([r[0] for r in rewards] + [r[1] for r in rewards])


def pair_rewards(model: Any, tok: Any, rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The model's reward of each row's chosen and rejected trajectory, on the sequences RewardTrainer trains on
    (prompt + completion through the chat template, with the row's tools).

    The two sequences of a pair share their start (the system turn with the tools, the request, the turns before
    the mistake): that prefix runs once and both continuations reuse its keys and values, and the system turn runs
    once for all pairs that share it. Same numbers as whole forward passes (tests/integration/test_training.py) at
    about half the cost.
    """
    import torch

    model.config.pad_token_id = tok.pad_token_id
    model.eval()
    out, heads = [], {}
    with torch.inference_mode():
        for row in rows:
            tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
            ids = [_ids(tok, row["prompt"] + row[k], tools) for k in ("chosen", "rejected")]
            chosen, rejected = _pair_scores(model, ids, _ids(tok, row["prompt"][:1], tools), heads)
            out.append((chosen.item(), rejected.item()))
    return out


def _pair_scores(model: Any, ids: list[list[int]], head: list[int] | None = None,
                 heads: dict[tuple[int, ...], Any] | None = None) -> tuple[Any, Any]:
    """The rewards (0-d tensors) of two token sequences, their common prefix run once (and `head`, the system turn,
    taken from `heads` when it starts that prefix); both continuations read its keys and values. Gradients reach
    the prefix through both when the caller trains."""
    import torch
    from trl.data_utils import common_prefix_length

    n = min(common_prefix_length(*ids), len(ids[0]) - 1, len(ids[1]) - 1)
    cache = _prefix_cache(model, head or [], ids[0][:n], {} if heads is None else heads)
    return tuple(model(input_ids=torch.tensor([seq[n:]], device=model.device), past_key_values=_fork(cache),
                       use_cache=cache is not None).logits[0, 0] for seq in ids)


def _fork(cache: Any) -> Any:
    """A new cache holding `cache`'s keys and values, which its own updates leave as they were (None: None). The
    tensors are the same ones, so gradients flow back to the pass that made them (a deep copy would cut them)."""
    from transformers import DynamicCache

    return None if cache is None else DynamicCache(ddp_cache_data=list(cache))


def _ids(tok: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
    return tok.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=True)["input_ids"]


def _prefix_cache(model: Any, head: list[int], prefix: list[int], heads: dict[tuple[int, ...], Any]) -> Any:
    """Keys and values of `prefix` (None when empty); when it starts with `head` (the system turn), that part comes
    from `heads`, which holds the last system turn's."""
    import torch

    if not prefix:
        return None
    if not 0 < len(head) < len(prefix) or prefix[:len(head)] != head:
        head = []
    cache = None
    if head:
        if tuple(head) not in heads:
            heads.clear()
            heads[tuple(head)] = model.base_model(input_ids=torch.tensor([head], device=model.device),
                                                  use_cache=True).past_key_values
        cache = _fork(heads[tuple(head)])
    return model.base_model(input_ids=torch.tensor([prefix[len(head):]], device=model.device), past_key_values=cache,
                            use_cache=True).past_key_values


def heldout_scores(rows: list[dict[str, Any]], model: Any, tok: Any) -> list[dict[str, Any]]:
    """Each held-out pair's id, class, the rewards of its chosen and rejected trajectories, their margin, and the
    episode it comes from (its id where the row names none)."""
    return [{"id": row["id"], "kind": row["kind"], "chosen": chosen, "rejected": rejected, "margin": chosen - rejected,
             "episode": row.get("episode") or row["id"]}
            for row, (chosen, rejected) in zip(rows, pair_rewards(model, tok, rows))]


def per_class(scored: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Held-out accuracy (chosen rewarded above rejected) of `heldout_scores`' rows per error class and over all
    pairs ("all"), with n, the mean reward margin, `requests` (the distinct episodes behind the pairs) and a 95 %
    interval: Wilson's at the effective sample size (`stats.clustered`: pairs of one request as a group), since
    on-policy pairs come several per request (one per distinct failed attempt) and miss together."""
    margins: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))  # class -> episode -> margins
    for row in scored:
        for key in (row["kind"], "all"):
            margins[key][row["episode"]].append(row["margin"])
    out = {}
    for key in sorted(margins, key=lambda k: (k == "all", k)):
        wins = [[m > 0 for m in request] for request in margins[key].values()]
        n, k = sum(map(len, wins)), sum(map(sum, wins))
        low, high = clustered(wins)
        out[key] = {"n": n, "accuracy": k / n, "low": low, "high": high,
                    "margin": sum(map(sum, margins[key].values())) / n, "requests": len(wins)}
    return out


def heldout_metrics(table: dict[str, dict[str, float]]) -> dict[str, float]:
    """`heldout_accuracy` (all pairs), `heldout_accuracy.<class>`, `heldout_margin.<class>` (mean reward of chosen
    minus rejected), `heldout_requests.<class>` (distinct episodes), `heldout_pairs` and the worst class's accuracy
    `heldout_accuracy_min`."""
    classes = {k: v for k, v in table.items() if k != "all"}
    out = {"heldout_accuracy": table["all"]["accuracy"] if "all" in table else float("nan"),
           "heldout_pairs": float(table.get("all", {}).get("n", 0)),
           "heldout_accuracy_min": min((v["accuracy"] for v in classes.values()), default=float("nan"))}
    return out | {f"heldout_{m}.{k}": float(v[m]) for m in ("accuracy", "margin", "requests")
                  for k, v in classes.items()}


def write_report(table: dict[str, dict[str, float]], scored: list[dict[str, Any]], md_path: Path, png_path: Path,
                 csv_path: Path, listed: int = 20) -> None:
    """The held-out table as markdown with the `listed` worst-ranked pairs under it (the mistakes the reward model
    misses, by pair id), a bar chart of accuracy per class with its interval, and every pair's rewards as CSV."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# Reward model: held-out accuracy per error class", "",
             "Pairs from the val and test episodes, never trained on: the share where the reward model scores the "
             "good trajectory above the same trajectory with one mistake of the class (95 % Wilson interval; where "
             "a class has several pairs per request, at its effective number of pairs).", "",
             "| class | n | requests | accuracy [95 %] | mean margin |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {md_cell(k)} | {v['n']} | {v['requests']} | {v['accuracy']:.1%} [{v['low']:.0%}-{v['high']:.0%}] "
              f"| {v['margin']:+.3f} |" for k, v in table.items()]
    wrong = sorted((r for r in scored if r["margin"] <= 0), key=lambda r: r["margin"])
    if wrong:
        lines += ["", f"Ranked wrong: {len(wrong)} pairs (the worst {min(len(wrong), listed)}; every pair's rewards: "
                      f"{csv_path.name}).", "", "| pair | class | chosen | rejected |", "|---|---|---:|---:|"]
        lines += [f"| {md_cell(r['id'])} | {md_cell(r['kind'])} | {r['chosen']:+.3f} | {r['rejected']:+.3f} |"
                  for r in wrong[:listed]]
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "kind", "chosen", "rejected", "margin", "episode"])
        writer.writeheader()
        writer.writerows(scored)
    names = list(table)
    acc = [table[k]["accuracy"] for k in names]
    err = [[max(0.0, a - table[k]["low"]) for k, a in zip(names, acc)],
           [max(0.0, table[k]["high"] - a) for k, a in zip(names, acc)]]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(names, acc, xerr=err, color=["#888" if k == "all" else "#4c72b0" for k in names], capsize=2)
    ax.axvline(0.95, color="#c44", linestyle="--", linewidth=1, label="target 95 %")
    ax.axvline(0.5, color="#999", linestyle=":", linewidth=1, label="chance")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("held-out accuracy (chosen > rejected)")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def main() -> None:
    from components.tracking import stage_main

    stage_main("reward_model")


if __name__ == "__main__":
    main()
