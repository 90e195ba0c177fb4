"""Real TRL training for a few steps on the tiny model: loss falls, weights change, outputs reload, and each
stage's step metrics land in its nested MLflow run (a real SQLite store).

Marked `integration`; runs in the default suite (about a minute on 2 cores).
"""

from __future__ import annotations

import copy
import dataclasses
import csv
import shutil

import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file
from transformers.trainer_pt_utils import LabelSmoother

from components import base, build, domains, ingest, reward_model, rl, sft, tracking
from components.training import models, selection
from components.config import ConfigError, load_params
from components.data.draw import quotas
from components.data.fileio import read_jsonl
from tests.conftest import write_params

pytestmark = pytest.mark.integration


# The random tiny model learns the classes a trajectory's shape gives away (a step left out or out of order, a stop
# before the end, an answer instead of a call) in 16 steps; a wrong argument value needs a pretrained model. Without
# the tilt, 16 steps over all 13 classes leave the loss at ln 2 (0.693 -> 0.715 on the default draw).
RM_CLASS_WEIGHTS = {"missing_step": 4.0, "premature_stop": 4.0, "wrong_order": 4.0, "no_call": 4.0}


@pytest.fixture(scope="module")
def params(tmp_path_factory, migrated_db):
    tmp = tmp_path_factory.mktemp("train")
    shutil.copy(migrated_db, tmp / "mlflow.db")  # the store `tracking.uri` points at
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 400},
                                 sft={"max_steps": 12, "batch_size": 4},
                                 reward_model={"max_steps": 16, "batch_size": 4, "class_weights": RM_CLASS_WEIGHTS},
                                 rl={"max_steps": 2, "learning_rate": 1.0e-3}), profile="")
    for stage in (base, ingest, build):
        stage.run(p)
    return p


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _tracked(params, stage: str):
    """Run `stage` as the pipeline does (nested run under a pipeline run); its result, run id and a metric reader."""
    with tracking.pipeline_run(params) as parent:
        result = tracking.execute_stage(stage, params, parent)
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name(params.tracking.experiment).experiment_id],
                             f"tags.`tooltune.stage` = '{stage}' and tags.`mlflow.parentRunId` = '{parent}'")[0]
    assert client.get_metric_history(parent, "loss") == []  # step metrics go into the stage's run only

    def steps(key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]

    return result, steps


def _changed(before: dict, after: dict) -> float:
    shared = [k for k in before if k in after and before[k].shape == after[k].shape]
    return max((before[k] - after[k]).abs().max().item() for k in shared)


def test_sft_loss_falls_and_weights_change(params):
    result, steps = _tracked(params, "sft")
    loss = steps("loss")
    assert [s for s, _ in loss] == list(range(1, params.sft.max_steps + 1))  # one point per step, in its run
    curve = (params.path("reports") / "sft_loss.csv").read_text().splitlines()[1:]
    assert [v for _, v in loss] == pytest.approx([float(line.split(",")[1]) for line in curve])
    for key in ("learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy"):
        assert len(steps(key)) == params.sft.max_steps, key
    assert result.metrics["loss_last"] < result.metrics["loss_first"] * 0.9
    assert _changed(_weights(params.path("base")), _weights(params.path("sft_model"))) > 1e-4
    model, tok = models.load(params.path("sft_model"))
    assert tok.chat_template == models.chat_template() and model.dtype == torch.float32
    assert (params.path("reports") / "sft_loss.png").stat().st_size > 0
    # the call gate (decoding.call_gate): fit on the saved model's training-split requests, saved beside the weights,
    # attached on load
    assert 0 < result.metrics["call_gate_no_call_examples"] < result.metrics["call_gate_examples"]
    assert result.metrics["call_gate_examples"] <= params.decoding.call_gate_examples
    assert model.call_gate is not None and (params.path("sft_model") / "call_gate.safetensors").is_file()
    assert (model.call_gate.name_floor, model.call_gate.value_floor) == pytest.approx(
        (params.decoding.call_gate_name_floor, params.decoding.call_gate_value_floor))  # the floors travel with it


def test_reward_model_loss_falls_and_weights_change(params, monkeypatch):
    """Also: on-policy pairs (`reward_model.on_policy`), the SFT model's sampled attempts ranked by the scorer, join
    the training draw and the held-out table as class on_policy (the scorer forced to pass every other attempt: the
    random tiny model solves nothing)."""
    if not params.path("sft_model").exists():
        sft.run(params)
    real, count = selection.judged, [0]

    def alternating(ro, ep):
        count[0] += 1  # a success must also complete the task (answered, results stated)
        return dataclasses.replace(real(ro, ep), exact=count[0] % 2 == 0, completion=count[0] % 2 == 0)

    monkeypatch.setattr(selection, "judged", alternating)
    result, steps = _tracked(params, "reward_model")
    cfg = params.reward_model.on_policy
    assert count[0] == (cfg.episodes + cfg.heldout_episodes) * cfg.samples
    sampled = read_jsonl(params.path("reports") / "reward_model_on_policy.jsonl")
    assert {r["split"] for r in sampled} == {"train", "heldout"} and {r["kind"] for r in sampled} == {"on_policy"}
    train_eps = {e["id"] for e in read_jsonl(params.path("splits") / "train.jsonl")}
    assert all((r["episode"] in train_eps) == (r["split"] == "train") for r in sampled)
    assert all(r["errors"] and r["chosen"] != r["rejected"] for r in sampled)
    assert result.metrics["on_policy_pairs"] == sum(r["split"] == "train" for r in sampled)
    assert result.metrics["on_policy_solved_share"] == 0.5 and result.metrics["on_policy_cached"] == 0.0
    # a rerun on the same SFT model and episodes reads the attempts back from the evaluation cache: nothing sampled;
    # with evaluate.reuse off it samples again
    fresh = selection.sample_episodes
    monkeypatch.setattr(selection, "sample_episodes", lambda *a, **k: pytest.fail("sampled again"))
    again, again_metrics = reward_model.on_policy(params)
    assert again == sampled and again_metrics["on_policy_cached"] == 1.0
    same = {k for k in again_metrics if k not in ("on_policy_seconds", "on_policy_cached")}
    assert {k: again_metrics[k] for k in same} == {k: result.metrics[k] for k in same}
    calls = []
    monkeypatch.setattr(selection, "sample_episodes", lambda *a, **k: calls.append(1) or fresh(*a, **k))
    no_reuse = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"reuse": False})})
    assert reward_model.on_policy(no_reuse)[1]["on_policy_cached"] == 0.0 and len(calls) == 2
    for key in ("loss", "accuracy", "learning_rate", "grad_norm"):
        assert [s for s, _ in steps(key)] == list(range(1, params.reward_model.max_steps + 1)), key
    assert result.metrics["loss_last"] < result.metrics["loss_first"]
    drawn = {k.split(".", 1)[1]: v for k, v in result.metrics.items() if k.startswith("pairs_drawn.")}
    n = params.reward_model.max_steps * params.reward_model.batch_size
    assert sum(drawn.values()) == n and len(drawn) > 5
    # the default draw is level across classes (balance_classes), times the weights: 4 : 1 whatever each class's rows
    present = {r["kind"] for r in read_jsonl(params.path("splits") / "pairs.jsonl")} | {"on_policy"}
    assert params.reward_model.balance_classes
    assert drawn == {k: c for k, c in quotas({k: RM_CLASS_WEIGHTS.get(k, 1.0) for k in present}, n).items() if c}
    after = _weights(params.path("reward_model"))
    assert "score.weight" in after
    assert _changed(_weights(params.path("base")), after) > 1e-4
    model, tok = models.load(params.path("reward_model"), sequence_classification=True)
    assert model.config.num_labels == 1
    # held-out accuracy per class, from a forward pass of the saved model over pairs of val/test episodes; the
    # accuracy of the last training batch is a curve value only
    heldout = read_jsonl(params.path("splits") / "heldout_pairs.jsonl")
    heldout += [r for r in sampled if r["split"] == "heldout"]
    kinds = {r["kind"] for r in heldout}
    assert len(kinds) >= 13 and "on_policy" in kinds
    assert result.metrics["heldout_pairs"] == len(heldout) and "accuracy_last" not in result.metrics
    assert steps("heldout_accuracy") == [(0, result.metrics["heldout_accuracy"])]  # logged to the stage's run
    rows = [next(r for r in heldout if r["kind"] == k) for k in sorted(kinds)]
    for row, (chosen, rejected) in zip(rows, reward_model.pair_rewards(model, tok, rows)):
        share = result.metrics[f"heldout_accuracy.{row['kind']}"]
        assert 0.0 <= share <= 1.0 and chosen != rejected  # a real number from a real forward pass, both ways
        n = sum(r["kind"] == row["kind"] for r in heldout)
        assert round(share * n) == pytest.approx(share * n)  # a share of the class's pairs
    table = (params.path("reports") / "reward_model.md").read_text()
    assert all(f"| {k} | " in table for k in kinds) and "| all | " in table
    # every held-out pair's rewards as CSV; the report names the pairs ranked wrong, worst first
    with (params.path("reports") / "reward_model_heldout.csv").open() as f:
        scored = list(csv.DictReader(f))
    assert [r["id"] for r in scored] == [r["id"] for r in heldout]
    assert [r["episode"] for r in scored] == [r.get("episode") or r["id"] for r in heldout]
    held_policy = {r["episode"] for r in sampled if r["split"] == "heldout"}  # several pairs per request
    assert result.metrics["heldout_requests.on_policy"] == len(held_policy) > 0
    wrong = sorted((r for r in scored if float(r["margin"]) <= 0), key=lambda r: float(r["margin"]))
    assert len(wrong) == round((1 - result.metrics["heldout_accuracy"]) * len(heldout))
    assert (f"Ranked wrong: {len(wrong)} pairs" in table) == bool(wrong)
    assert all(f"| {r['id']} | {r['kind']} | " in table for r in wrong[:20])
    for r in scored:
        assert float(r["margin"]) == pytest.approx(float(r["chosen"]) - float(r["rejected"]))
    assert (params.path("reports") / "reward_model_heldout.png").stat().st_size > 0


def test_held_out_scoring_with_shared_prefixes_equals_whole_forward_passes(params):
    """`reward_model.pair_rewards` runs the system turn once and each pair's common prefix once; the rewards are
    those of one whole forward pass per trajectory, for every class (mistakes early, late, in text or in calls)."""
    model, tok = models.load(params.path("base"), sequence_classification=True)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.score.weight, std=1.0)  # a random head: rewards that differ between sequences
    model.config.pad_token_id = tok.pad_token_id
    heldout = read_jsonl(params.path("splits") / "heldout_pairs.jsonl")
    rows = [r for k in sorted({r["kind"] for r in heldout}) for r in [r for r in heldout if r["kind"] == k][:2]]
    whole = []
    with torch.inference_mode():
        for row in rows:
            ids = [tok.apply_chat_template(row["prompt"] + row[k], tools=row["tools"], tokenize=True,
                                           return_dict=True)["input_ids"] for k in ("chosen", "rejected")]
            whole.append(tuple(model(input_ids=torch.tensor([seq])).logits[0, 0].item() for seq in ids))
    shared = reward_model.pair_rewards(model, tok, rows)
    assert shared == [pytest.approx(w, abs=1e-4) for w in whole]
    assert len({round(c - r, 4) for c, r in whole}) > len(rows) // 2  # the pairs are told apart at all


@pytest.mark.parametrize("lora", [True, False])
def test_shared_prefix_reward_model_computes_the_same_loss_and_gradients(params, lora, monkeypatch):
    """`reward_model.share_prefix` runs each pair's common start once and no padding; loss, metrics and gradients
    equal RewardTrainer's padded batch, under LoRA (whose layers sit inside PEFT's wrapper) and full training."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from components import training

    pairs = read_jsonl(params.path("splits") / "pairs.jsonl")
    rows = reward_model.preference_rows([next(p for p in pairs if p["kind"] == k)
                                         for k in sorted({p["kind"] for p in pairs})][:6])
    model, tok = models.load(params.path("base"), sequence_classification=True)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.score.weight, std=1.0)  # rewards that differ between sequences
    model.config.pad_token_id = tok.pad_token_id
    calls = []
    shared_rewards = reward_model.batch_rewards
    monkeypatch.setattr(reward_model, "batch_rewards", lambda *a: calls.append(a) or shared_rewards(*a))
    lora_cfg = params.reward_model.lora.model_copy(update={"enabled": lora})
    config = RewardConfig(output_dir=str(params.path("reports") / "scratch"), per_device_train_batch_size=6,
                          max_length=None, report_to="none", **training.precision())
    outcomes = []
    for cls in (RewardTrainer, reward_model.shared_prefix_trainer(RewardTrainer)):
        start = copy.deepcopy(model)
        trainer = cls(model=start, args=config, processing_class=tok, train_dataset=Dataset.from_list(rows),
                      peft_config=training.lora_config(lora_cfg, "SEQ_CLS", start, modules_to_save=["score"]))
        trainer.model.train()  # RewardTrainer logs its metrics in training mode only
        batch = next(iter(trainer.get_train_dataloader()))
        assert (batch["attention_mask"] == 0).any()  # padded: the shared path must strip it
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        outcomes.append((loss.item(), metrics, {n: p.grad for n, p in trainer.model.named_parameters()
                                                if p.grad is not None}))
    (plain_loss, plain_metrics, plain_grads), (shared_loss, shared_metrics, shared_grads) = outcomes
    assert len(calls) == 1  # the shared path ran (once: the shared-prefix trainer's batch), not the fallback
    assert abs(plain_loss - shared_loss) < 1e-5 and plain_loss > 0.01
    assert plain_metrics.keys() >= {"accuracy", "margin", "mean_reward", "num_tokens"}
    assert shared_metrics == {k: pytest.approx(v, abs=1e-4) for k, v in plain_metrics.items()}
    assert plain_grads.keys() == shared_grads.keys() and len(plain_grads) > 2
    assert any("lora" in k for k in plain_grads) == lora
    scale = max(g.abs().max().item() for g in plain_grads.values())
    assert max((plain_grads[k] - shared_grads[k]).abs().max().item() for k in plain_grads) < 1e-4 * scale


def test_rl_updates_policy_with_layered_rewards(params):
    if not params.path("sft_model").exists():
        sft.run(params)
    if not params.path("reward_model").exists():
        reward_model.run(params)
    result, steps = _tracked(params, "rl")
    for key in ("loss", "reward", "rewards/correctness/mean", "rewards/efficiency/mean", "completions/mean_length",
                "frac_reward_zero_std", "learning_rate"):
        assert [s for s, _ in steps(key)] == list(range(1, params.rl.max_steps + 1)), key
    assert _changed(_weights(params.path("sft_model")), _weights(params.path("rl_model"))) > 0
    csv = (params.path("reports") / "rl_reward.csv").read_text()
    for layer in ("rewards/correctness/mean", "rewards/completion/mean", "rewards/efficiency/mean"):
        assert layer in csv.splitlines()[0]
    assert result.details["algorithm"] == "grpo"


def test_constrained_rl_rollouts_follow_the_grammar_and_measure_the_mismatch(params, monkeypatch):
    """`decoding.constrained`: every rollout turn GRPO samples that ends parses and calls only offered tools with
    schema-valid arguments; the log of the mass the grammar kept is logged per step, and below 0 for a model that
    did not learn the grammar fully (the tiny model after 12 SFT steps)."""
    from components.toolcalls import check, parse_output
    from components.training.constrained_rl import ConstrainedGRPOTrainer

    for stage, out in ((sft, "sft_model"), (reward_model, "reward_model")):
        if not params.path(out).exists():
            stage.run(params)
    turns: list[list[int]] = []
    plain = ConstrainedGRPOTrainer._generate_single_turn

    def spy(self, prompt_ids, *args, **kwargs):
        out = plain(self, prompt_ids, *args, **kwargs)
        turns.extend(out[0])
        return out

    monkeypatch.setattr(ConstrainedGRPOTrainer, "_generate_single_turn", spy)
    constrained = params.model_copy(update={
        "decoding": params.decoding.model_copy(update={"constrained": True}),
        "rl": params.rl.model_copy(update={"max_steps": 1}),
        "paths": params.paths.model_copy(update={"rl_model": "artifacts/rl_constrained",
                                                 "checkpoints": "artifacts/checkpoints_constrained"})})
    result = rl.run(constrained)
    _, tok = models.load(params.path("sft_model"))
    index = check.tool_index(domains.of(params).catalog())
    ended = [t for t in turns if t and t[-1] == tok.convert_tokens_to_ids("<|im_end|>")]
    assert len(turns) >= params.rl.batch_size and ended
    for ids in ended:
        parsed = parse_output(tok.decode(ids, skip_special_tokens=False))
        assert not parsed.unparsable, tok.decode(ids)
        assert all(c["name"] in index and check.schema_errors(c, index) == [] for c in parsed.calls)
    assert result.metrics["constrained_log_mass"] < 0
    assert 0 < result.metrics["constrained_off_grammar_share"] <= 1
    assert _changed(_weights(params.path("sft_model")), _weights(constrained.path("rl_model"))) > 0


@pytest.mark.parametrize("algorithm", ["gspo", "dr_grpo", "dapo"])
def test_rl_family_settings_build_valid_configs(algorithm):
    from trl import GRPOConfig

    from components import training

    config = GRPOConfig(output_dir="/tmp/unused", **rl.ALGORITHMS[algorithm], **training.precision())
    if algorithm == "gspo":
        assert config.importance_sampling_level == "sequence"
    else:
        assert config.loss_type == algorithm


def test_gspo_equals_grpo_with_one_update_per_batch_and_differs_with_two(params, monkeypatch):
    """`rl.num_iterations` (TRL's mu): at 1 the importance ratio is 1 when the loss is taken, so GSPO's sequence-level
    ratio gives GRPO's gradient (the same weights after a step, same rollouts by seed); at 2 the second update reuses
    the batch after the first moved the policy, and the two losses part. The reward is a checksum of the text, so
    every group has a spread (the tiny model earns no layer's reward)."""
    if not params.path("sft_model").exists():
        sft.run(params)

    def checksum(completions, **kwargs):
        return [float(sum(map(ord, str(c))) % 5) for c in completions]

    monkeypatch.setattr(rl, "reward_functions", lambda *args: [("checksum", checksum, 1.0)])
    domain = domains.of(params)
    rows = read_jsonl(params.path("splits") / "rl.jsonl")[:4]
    start = _weights(params.path("sft_model"))
    after = {}
    for algorithm in ("grpo", "gspo"):
        for mu in (1, 2):
            p = params.model_copy(update={"rl": params.rl.model_copy(update={
                "algorithm": algorithm, "num_iterations": mu, "max_steps": mu, "save_steps": 0})})
            model, tok = models.load(params.path("sft_model"))
            trainer = rl.grpo_trainer(p, domain, model, tok, rows, [])
            assert trainer.args.num_iterations == mu
            trainer.train()
            after[algorithm, mu] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    for key in after:
        assert _changed(start, after[key]) > 0, key
    assert _changed(after["grpo", 1], after["gspo", 1]) < 1e-6
    assert _changed(after["grpo", 2], after["gspo", 2]) > 1e-5


def test_shared_prefix_sft_computes_the_same_loss_and_gradients(params):
    """`sft.share_prefix` runs the system turn once per batch; loss and gradients equal TRL's plain path."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from components import training
    from components.data.fileio import read_jsonl

    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in read_jsonl(params.path("splits") / "sft.jsonl")[:4]]
    model, tok = models.load(params.path("base"))
    config = SFTConfig(output_dir=str(params.path("reports") / "scratch"), per_device_train_batch_size=4,
                       padding_free=True, max_length=None, assistant_only_loss=True, report_to="none",
                       **training.precision())
    outcomes = []
    for cls in (SFTTrainer, sft.shared_prefix_trainer(SFTTrainer, sft.prefix_ids(tok, rows[0]))):
        trainer = cls(model=copy.deepcopy(model), args=config, processing_class=tok,
                      train_dataset=Dataset.from_list(rows, on_mixed_types="use_json"))
        batch = next(iter(trainer.get_train_dataloader()))
        assert sft.split_shared_prefix(batch, sft.prefix_ids(tok, rows[0])) is not None  # every episode has it
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        outcomes.append((loss.item(), {n: p.grad for n, p in trainer.model.named_parameters() if p.grad is not None}))
    (plain_loss, plain_grads), (shared_loss, shared_grads) = outcomes
    assert abs(plain_loss - shared_loss) < 1e-5 and plain_grads.keys() == shared_grads.keys()
    assert max((plain_grads[k] - shared_grads[k]).abs().max().item() for k in plain_grads) < 1e-5


def test_shared_prefix_sft_logs_the_tokens_of_the_episodes(params):
    """`num_tokens` of a shared-prefix run counts every episode's full length, as TRL's plain path does on the
    same batches (the prefix runs once per batch, but each episode trained on all of its tokens)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from components import training
    from components.data.fileio import read_jsonl

    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in read_jsonl(params.path("splits") / "sft.jsonl")[:12]]
    model, tok = models.load(params.path("base"))
    prefix = sft.prefix_ids(tok, rows[0])
    config = SFTConfig(output_dir=str(params.path("reports") / "scratch"), per_device_train_batch_size=4, max_steps=3,
                       padding_free=True, max_length=None, assistant_only_loss=True, logging_steps=1,
                       save_strategy="no", report_to="none", train_sampling_strategy="sequential",
                       **training.precision())
    logged = []
    for cls in (SFTTrainer, sft.shared_prefix_trainer(SFTTrainer, prefix)):
        trainer = cls(model=copy.deepcopy(model), args=config, processing_class=tok,
                      train_dataset=Dataset.from_list(rows, on_mixed_types="use_json"))
        batches = list(trainer.get_train_dataloader())
        assert all(sft.split_shared_prefix(b, prefix) is not None for b in batches)  # the shared path runs
        trainer.train()
        logged.append([h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h])
    plain, shared = logged
    tokens = [b["input_ids"].numel() for b in batches]
    assert plain == [sum(tokens[:i + 1]) for i in range(3)]  # the reference: every token of every episode
    assert shared == plain


def test_decision_weight_multiplies_the_loss_of_each_assistant_turns_first_token(params):
    """`sft.decision_weight`: the loss is TRL's token sum with each assistant turn's first token counted `weight`
    times, over the same token count, on the plain and the shared-prefix path; the weighted tokens are where the
    turns start (`<` of a call or a text answer's first token)."""
    from datasets import Dataset
    from trl import SFTConfig

    from components import training
    from components.data.fileio import read_jsonl

    rows = [{"messages": r["messages"], "tools": r["tools"]} for r in read_jsonl(params.path("splits") / "sft.jsonl")[:4]]
    model, tok = models.load(params.path("base"))
    config = SFTConfig(output_dir=str(params.path("reports") / "scratch"), per_device_train_batch_size=4,
                       padding_free=True, max_length=None, assistant_only_loss=True, report_to="none",
                       **training.precision())
    losses, trainers = [], []
    for share in (False, True):  # the classes the stage builds from its settings
        cfg = params.sft.model_copy(update={"decision_weight": 5.0, "share_prefix": share, "padding_free": True})
        cls = sft.trainer_class(cfg, tok, rows[0])
        trainer = cls(model=copy.deepcopy(model), args=config, processing_class=tok,
                      train_dataset=Dataset.from_list(rows, on_mixed_types="use_json"))
        batch = next(iter(trainer.get_train_dataloader()))
        chain = ["SharedPrefixSFTTrainer"] * share + ["DecisionWeightedSFTTrainer", "SFTTrainer"]
        assert [c.__name__ for c in cls.__mro__][:len(chain)] == chain
        losses.append(trainer.compute_loss(trainer.model, dict(batch)).item())
        trainers.append((trainer, batch))
    labels = batch["labels"]
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[:, :-1]
    target = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target.clamp(min=0), reduction="none")
    ce = ce * (target != -100)
    starts = (target != -100) & (labels[:, :-1] == -100)
    expected = (ce.sum() + 4.0 * ce[starts].sum()) / (target != -100).sum()
    turns = sum(1 for r in rows for m in r["messages"] if m["role"] == "assistant")
    assert starts.sum().item() == turns  # one weighted token per assistant turn
    first = {tok.decode(t) for t in target[starts].tolist()}
    assert any(t.startswith("<") for t in first)  # the calls' `<tool_call>` starts among them
    assert losses[0] == pytest.approx(expected.item(), rel=1e-4)
    assert losses[1] == pytest.approx(expected.item(), rel=1e-4)
    assert sft.decision_scale(labels, 1.0).eq(1.0).all()
    plain, plain_batch = trainers[0]
    plain.label_smoother = LabelSmoother(epsilon=0.1)  # a loss from plain logits would ignore the weight: refused
    with pytest.raises(ConfigError, match="sft.decision_weight 5.0: TRL computed this loss from plain logits"):
        plain.compute_loss(plain.model, dict(plain_batch))


def test_lr_schedule_constant_holds_the_rate_and_cosine_decays_it_to_zero(params):
    """`sft.lr_schedule`: constant keeps the peak after warm-up (bench/learning_curve.py's N-step snapshots need it);
    cosine and linear fall every step after warm-up, to 0 at max_steps; wsd holds the peak, then falls linearly to 0
    over the last cooldown_steps."""
    rows = read_jsonl(params.path("splits") / "sft.jsonl")[:8]
    peak, steps, warmup, cooldown = 1e-3, 6, 1, 2
    rates = {}
    for schedule in ("constant", "cosine", "linear", "wsd"):
        cfg = params.sft.model_copy(update={"lr_schedule": schedule, "max_steps": steps, "warmup_steps": warmup,
                                            "cooldown_steps": cooldown if schedule == "wsd" else 0,
                                            "learning_rate": peak, "batch_size": 2, "save_steps": 0})
        model, tok = models.load(params.path("base"))
        trainer, _, _ = sft.fit(params, cfg, rows, (model, tok), "sft", [params.path("base")])
        rates[schedule] = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
        rates[schedule].append(trainer.lr_scheduler.get_last_lr()[0])  # the rate after the last step
        assert len(rates[schedule]) == steps + 1, schedule
    assert rates["constant"][warmup:] == pytest.approx([peak] * (steps + 1 - warmup))
    for schedule in ("cosine", "linear"):
        after = rates[schedule][warmup:]
        assert after[0] == pytest.approx(peak) and all(b < a for a, b in zip(after, after[1:])), schedule
        assert after[-1] == pytest.approx(0.0, abs=1e-12), schedule
    assert rates["wsd"][warmup:] == pytest.approx([peak] * (steps - warmup - cooldown + 1) + [peak / 2, 0.0])
