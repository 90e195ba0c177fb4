"""`project.domain: general` end to end on the tiny model: base, ingest, validate, build, SFT and evaluate, with
the `general` profile's data settings over the quick profile. Each episode brings its own tools; evaluation scores
single steps by call correctness against each record's own schemas.

Marked `integration` (real TRL training, about two minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors.torch import load_file

from components import base, build, evaluate, ingest, sft, validate
from components.config import load_params
from components.evaluation import single_step
from tests.conftest import REPO, write_params

pytestmark = pytest.mark.integration


def general_quick(tmp, **more):
    """The quick profile with the `general` profile's domain and data settings, smaller."""
    g = yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]["general"]
    return load_params(write_params(
        tmp, "quick", project={"domain": "general"}, base={"system_prompt": g["base"]["system_prompt"]},
        ingest={**g["ingest"], "n_episodes": 500}, validate=g["validate"],
        build={"val_size": 10, "test_size": {"single": 12, "parallel": 6, "irrelevance": 6}, "rl_prompts": 8},
        sft={"max_steps": 30}, evaluate={"models": ["base", "sft"], "compare_champion": False}, **more), profile="")


def test_general_domain_trains_and_evaluates_on_each_records_own_tools(tmp_path):
    params = general_quick(tmp_path)
    base.run(params)
    made = ingest.run(params).metrics
    assert made["episodes"] == 500 and made["heldout_episodes"] > 24
    validate.run(params)
    assert build.run(params).metrics["test_episodes"] == 24
    trained = sft.run(params).metrics
    assert trained["loss_last"] < trained["loss_first"]
    before, after = load_file(str(params.path("base") / "model.safetensors")), \
        load_file(str(params.path("sft_model") / "model.safetensors"))
    assert max((before[k] - after[k]).abs().max().item() for k in before if k in after) > 0

    result = evaluate.run(params)
    report = params.path("reports") / "evaluate.md"
    assert report.is_file() and single_step.NOTE.format(domain="general") in report.read_text()
    for model in ("base", "sft"):
        assert result.metrics[f"{model}.n"] == 24  # call-only episodes: one step each
        assert result.metrics[f"{model}.single_n"] == 12
    test = [json.loads(line) for line in (params.path("splits") / "test.jsonl").open()]
    rows = [json.loads(line) for line in (params.path("reports") / "evaluate" / "sft_rollouts.jsonl").open()]
    assert {r["episode"] for r in rows} == {e["id"] for e in test}
    assert all(e["id"].startswith("general-h-") for e in test)  # held-out functions and wording only
