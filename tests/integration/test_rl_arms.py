"""The rl stage's arms on the tiny model: prompts chosen by the start model's sampled spread, rejection-sampling
fine-tuning (`rl.algorithm: rft`), and the per-step reward-layer, zero-spread, KL and length curves in a real MLflow
SQLite store. The tiny model solves nothing, so where a test needs successes the evaluation scorer is forced."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from mlflow import MlflowClient

from components import base, build, domains, ingest, reward_model, rl, sft, tracking
from components.config import load_params
from components.training import models, selection
from tests.conftest import write_params
from tests.integration.test_training import _changed, _weights

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def params(tmp_path_factory, migrated_db):
    tmp = tmp_path_factory.mktemp("rl_arms")
    shutil.copy(migrated_db, tmp / "mlflow.db")
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 300}, sft={"max_steps": 6, "batch_size": 4},
                                 reward_model={"max_steps": 2},
                                 rl={"max_steps": 2, "learning_rate": 1.0e-3, "beta": 0.04}), profile="")
    for stage in (base, ingest, build, sft, reward_model):
        stage.run(p)
    return p


def _alternating(monkeypatch):
    """Force the scorer: every other attempt succeeds (each prompt then has a spread)."""
    real, count = selection.judged, [0]

    def forced(ro, ep):
        count[0] += 1
        return dataclasses.replace(real(ro, ep), exact=count[0] % 2 == 0)

    monkeypatch.setattr(selection, "judged", forced)
    return count


def test_sampling_the_start_model_gives_k_judged_attempts_per_prompt(params):
    from components.data.fileio import read_jsonl

    rows = [r for r in read_jsonl(params.path("splits") / "rl.jsonl") if r["pattern"] != "multi_turn"][:3]
    model, tok = models.load(params.path("sft_model"))
    attempts = selection.sample(params, domains.of(params), model, tok, rows, 2)
    assert [a.row["id"] for a in attempts] == [r["id"] for r in rows]
    for a, r in zip(attempts, rows):
        assert len(a.successes) == len(a.conversations) == 2
        assert a.conversations[0][:len(r["prompt"])] == r["prompt"]  # the prompt, then the model's turns
        assert a.conversations[0][len(r["prompt"])]["role"] == "assistant"


def test_selected_prompts_train_and_report_what_choosing_them_cost(params, monkeypatch):
    """Also: the start model is sampled without its call gate, as GRPO samples it (the spread a prompt shows
    there is the spread its group will have)."""
    count = _alternating(monkeypatch)
    gates: list[bool] = []
    run_episodes = selection.rollout.run_episodes

    def spy(*args, **kwargs):
        gates.append(args[5].gated)
        return run_episodes(*args, **kwargs)

    monkeypatch.setattr(selection.rollout, "run_episodes", spy)
    trainers = []
    build = rl.grpo_trainer
    monkeypatch.setattr(rl, "grpo_trainer", lambda *a, **k: trainers.append(build(*a, **k)) or trainers[-1])
    assert models.load(params.path("sft_model"))[0].call_gate is not None  # the start model carries one
    chosen = params.model_copy(update={"rl": params.rl.model_copy(update={"select_samples": 2, "beta": 0.0}),
                                       "paths": params.paths.model_copy(update={"rl_model": "artifacts/rl_selected"})})
    result = rl.run(chosen)
    m = result.metrics
    assert m["select_kept"] == m["prompts"] >= rl.prompts_needed(chosen)
    assert m["select_always"] == m["select_never"] == 0
    assert count[0] == 2 * m["select_candidates"] and m["select_seconds"] > 0
    assert 0 <= m["zero_spread_share"] <= 1
    assert _changed(_weights(params.path("sft_model")), _weights(chosen.path("rl_model"))) > 0
    assert gates and not any(gates)
    assert chosen.rl.lr_schedule == "linear" and trainers[0].lr_scheduler.get_last_lr()[0] == pytest.approx(0.0)


def test_rft_fine_tunes_on_the_scorers_successes(params, monkeypatch):
    real = selection.judged
    monkeypatch.setattr(selection, "judged", lambda ro, ep: dataclasses.replace(real(ro, ep), exact=True))  # all pass
    arm = params.model_copy(update={
        "rl": params.rl.model_copy(update={"algorithm": "rft", "max_steps": 12, "learning_rate": 3.0e-3,
                                           "rft_references": False}),
        "paths": params.paths.model_copy(update={"rl_model": "artifacts/rl_rft"})})
    result = rl.run(arm)
    m = result.metrics
    assert m["successes"] == m["samples"] == m["prompts"] * arm.rl.num_generations
    assert sum(v for k, v in m.items() if k.startswith("successes_")) == m["successes"]
    assert m["loss_last"] < m["loss_first"] * 0.95  # its own high-entropy samples: slow, but down
    assert _changed(_weights(params.path("sft_model")), _weights(arm.path("rl_model"))) > 1e-4
    assert result.details["algorithm"] == "rft"
    monkeypatch.setattr(selection, "judged", lambda ro, ep: dataclasses.replace(real(ro, ep), exact=False))
    with pytest.raises(Exception, match="rl.algorithm rft: none of the"):
        rl.run(arm)
    with_references = arm.model_copy(update={
        "rl": arm.rl.model_copy(update={"rft_references": True}),
        "paths": arm.paths.model_copy(update={"rl_model": "artifacts/rl_rft_references"})})
    m = rl.run(with_references).metrics  # nothing solved: the prompts' reference trajectories alone
    assert m["successes"] == m["solved_prompts"] == 0 and m["references"] == m["prompts"] > 0
    assert m["loss_last"] < m["loss_first"] * 0.95
    assert _changed(_weights(params.path("sft_model")), _weights(with_references.path("rl_model"))) > 1e-4


def test_more_sft_trains_on_the_episodes_the_sft_stage_would_have_drawn_next(params, monkeypatch):
    from components.data.fileio import read_jsonl

    seen: list[list[dict]] = []
    rates: list[list[float]] = []  # the learning rate at each step, then after the last

    def fit(p, cfg, rows, *args, **kwargs):
        seen.append(rows)
        trainer, *rest = plain_fit(p, cfg, rows, *args, **kwargs)
        rates.append([h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
                     + trainer.lr_scheduler.get_last_lr())
        return trainer, *rest

    plain_fit = sft.fit
    monkeypatch.setattr(sft, "fit", fit)
    arm = params.model_copy(update={
        "rl": params.rl.model_copy(update={"algorithm": "more_sft", "max_steps": 6, "learning_rate": 3.0e-3}),
        "paths": params.paths.model_copy(update={"rl_model": "artifacts/rl_more_sft"})})
    result = rl.run(arm)
    m = result.metrics
    rows = read_jsonl(params.path("splits") / "sft.jsonl")
    per_step = params.sft.batch_size * params.sft.grad_accum
    assert len(rows) > (params.sft.max_steps + 6) * per_step  # room for the continuation: no repeats expected
    sft_drawn = {r["id"] for r in sft.drawn_rows(params, params.sft.max_steps)}
    assert m["episodes"] == len(seen[0]) == 6 * per_step
    assert not {r["id"] for r in seen[0]} & sft_drawn and len({r["id"] for r in seen[0]}) == 6 * per_step
    assert m["loss_last"] < m["loss_first"]
    assert _changed(_weights(params.path("sft_model")), _weights(arm.path("rl_model"))) > 1e-4
    assert result.details["algorithm"] == "more_sft"
    # rl's schedule, not sft's constant one: linear from rl's rate (no warm-up) down to 0, as GRPO's arms run
    assert (params.sft.lr_schedule, arm.rl.lr_schedule, arm.rl.warmup_steps) == ("constant", "linear", 0)
    steps = rates[0][:6]  # the rate each step trained at
    assert steps[0] == pytest.approx(3.0e-3) and all(b < a for a, b in zip(steps, steps[1:]))
    assert rates[0][-1] == pytest.approx(0.0)


def test_reward_layers_zero_spread_kl_and_length_are_step_metrics_in_mlflow(params):
    with tracking.pipeline_run(params) as parent:
        tracking.execute_stage("rl", params, parent)
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name(params.tracking.experiment).experiment_id],
                             f"tags.`tooltune.stage` = 'rl' and tags.`mlflow.parentRunId` = '{parent}'")[0]
    steps = list(range(1, params.rl.max_steps + 1))
    for key in ("rewards/correctness/mean", "rewards/completion/mean", "rewards/efficiency/mean",
                "rewards/reward_model/mean", "frac_reward_zero_std", "kl", "completions/mean_length", "reward"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == steps, key
    assert 0 <= run.data.metrics["zero_spread_share"] <= 1
