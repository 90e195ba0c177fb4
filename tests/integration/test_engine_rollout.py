"""`rl.rollout: engine`: GRPO's rollouts through the evaluation's engine (components/training/engine_rollout.py) on
the tiny model after a few SFT steps: the rollout_func contract (prompt, completion, env_mask covering the tool
results, the user's follow-ups and the template's markers, log-probabilities that match a forward pass) and a run
of the rl stage with it, multi_turn prompts included."""

from __future__ import annotations

import shutil

import pytest
import torch

from components import base, build, domains, ingest, rl, sft
from components.config import ConfigError, load_params
from components.data.fileio import read_jsonl
from components.toolcalls import render
from components.training import models
from components.training.engine_rollout import Trace
from tests.conftest import write_params
from tests.integration.test_training import _changed, _weights

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def params(tmp_path_factory, migrated_db):
    tmp = tmp_path_factory.mktemp("engine_rollout")
    shutil.copy(migrated_db, tmp / "mlflow.db")
    p = load_params(write_params(tmp, "quick", ingest={"n_episodes": 300}, sft={"max_steps": 60},
                                 rl={"max_steps": 2, "learning_rate": 1.0e-3, "rollout": "engine", "temperature": 0.5,
                                     "reward_weights": {"reward_model": 0.0}}), profile="")
    for stage in (base, ingest, build, sft):
        stage.run(p)
    return p


def _runs(mask: list[int]) -> list[tuple[int, int, int]]:
    """(value, start, end) of each run of equal values."""
    out, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            out.append((mask[start], start, i))
            start = i
    return out


def test_rollout_func_returns_prompt_completion_env_mask_and_the_sampled_logprobs(params):
    """Under the tool-call grammar (so the tiny model's turns parse and rollouts go on): the prompt is the first
    request rendered; each model turn is a run of mask 1; before every later turn, prompt + completion is exactly the
    conversation so far rendered (the tool results, the user's next turn) with mask 0; a forward pass over the whole
    sequence at the rl temperature gives each model token the sampled log-probability plus the logged log of the
    mass the grammar kept (0 where it did not bind)."""
    plain = params
    domain = domains.of(plain)
    rows = sorted(read_jsonl(plain.path("splits") / "rl.jsonl"), key=lambda r: r["pattern"] != "multi_turn")[:8]
    assert len(rows) == 8 and rows[0]["pattern"] == "multi_turn"
    model, tok = models.load(plain.path("sft_model"))
    trainer = rl.grpo_trainer(plain, domain, model, tok, rows, [])
    trainer._inputs = rl.grpo_rows(rows, multi_turn=True)
    trainer.model.train()  # as in a training step
    out = trainer.rollouts([r["prompt"] for r in trainer._inputs])
    assert set(out) == {"prompt_ids", "completion_ids", "logprobs", "env_mask", "messages", "reached"}
    assert all(len(v) == len(rows) for v in out.values())
    policy = trainer.accelerator.unwrap_model(trainer.model).eval()
    mass = iter(trainer._metrics["train"]["constrained/log_mass"])
    later_turns = 0
    for i, row in enumerate(rows):
        tools = domain.catalog()
        prompt, completion, mask = out["prompt_ids"][i], out["completion_ids"][i], out["env_mask"][i]
        assert prompt == tok(render.prompt(tok, row["prompt"], tools), add_special_tokens=False)["input_ids"]
        assert len(completion) == len(mask) == len(out["logprobs"][i]) and mask[0] == 1
        runs = [r for r in _runs(mask) if r[0] == 1]
        messages = out["messages"][i]
        turns = [j for j, m in enumerate(messages) if m["role"] == "assistant"]
        # the conversation before each model turn, rendered: where that turn's tokens start
        starts = {j: tok(render.prompt(tok, row["prompt"] + messages[:j], tools), add_special_tokens=False)["input_ids"]
                  for j in turns}
        found = [next((j for j in turns if starts[j] == prompt + completion[:start]), None) for _, start, _ in runs]
        assert None not in found and found == sorted(set(found)) and found[0] == turns[0], (found, turns)
        # a turn the template rendered differently from its first token on became context as a whole
        # (engine/rerendered_tokens); every other turn is one run of mask 1
        assert len(found) == len(turns) or sum(trainer._metrics["train"]["engine/rerendered_tokens"]) > 0
        for j, (_, start, end) in zip(found, runs):
            ids = completion[start:end]
            # a turn ends at end-of-turn or at the cap; or the template rendered its tail differently in the next
            # prompt, which then holds the tail as context (counted in engine/rerendered_tokens)
            assert ids[-1] == tok.eos_token_id or len(ids) == plain.rl.max_completion_length or j < turns[-1]
            later_turns += j != turns[0]
        whole = torch.tensor([prompt + completion])
        with torch.no_grad():
            logits = policy(whole).logits[0, len(prompt) - 1:-1].float() / plain.rl.temperature
        forward = torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None])[:, 0]
        picked = torch.tensor(mask).bool()
        free = torch.tensor(out["logprobs"][i])[picked] + torch.tensor([next(mass) for _ in range(int(picked.sum()))])
        assert torch.allclose(forward[picked], free, atol=2e-3)
        assert all(lp == 0.0 for lp, m in zip(out["logprobs"][i], mask) if not m)
    assert later_turns > 0  # some rollouts went on after a tool result
    assert out["reached"] == [bool(x) for x in out["reached"]]


def test_trace_turns_a_differently_rendered_earlier_turn_into_context_and_refuses_a_changed_prompt():
    trace = Trace(1.0)
    trace.request("a", [1, 2, 3])
    trace.turn("a", [7, 8, 9], [(-0.5, -0.7)] * 3)
    trace.request("a", [1, 2, 3, 7, 8, 5, 6])  # the template rendered the model's 9 as 5: 8 is still its own
    seq = trace.sequences["a"]
    assert seq.completion == [7, 8, 5, 6] and seq.mask == [1, 1, 0, 0] and seq.rerendered == 1
    assert seq.logprobs == [-0.5, -0.5, 0.0, 0.0] and seq.log_mass == pytest.approx([-0.2] * 2)
    with pytest.raises(ValueError, match="not prefix-preserving"):
        trace.request("a", [1, 4, 3, 7])


def test_rl_stage_trains_through_the_engine_on_multi_turn_prompts(params):
    """Only multi_turn prompts drawn (every other pattern weighs 0): TRL's own loop would have none to train on."""
    rows = read_jsonl(params.path("splits") / "rl.jsonl")
    patterns = {r["pattern"] for r in rows}
    only = params.model_copy(update={"rl": params.rl.model_copy(
        update={"pattern_weights": {p: float(p == "multi_turn") for p in patterns}})})
    result = rl.run(only)
    m = result.metrics
    assert m["prompts"] == sum(r["pattern"] == "multi_turn" for r in rows) > 0
    assert m["constrained_log_mass"] <= 0 and 0 <= m["constrained_off_grammar_share"] <= 1
    assert m["tool_call_frequency"] > 0  # counted from the rollouts, as TRL's loop logs it
    assert "rerendered_tokens" in m  # the engine's metric (the tiny model's loose JSON spacing is re-rendered)
    assert _changed(_weights(params.path("sft_model")), _weights(params.path("rl_model"))) > 0


def test_engine_rollout_needs_a_simulator(params):
    catalog = params.model_copy(update={"project": params.project.model_copy(update={"domain": "general"})})
    with pytest.raises(ConfigError, match="rl.rollout: engine rolls episodes out in the domain's simulator"):
        rl.engine_rollout(catalog, domains.of(catalog))
