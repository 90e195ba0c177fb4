"""Bring your own tools: a domain given only as a tool catalog file plus OpenAI-format trajectories runs through
the whole Prefect pipeline on the tiny model; with no simulator, RL and evaluation use single-step episodes.

The trajectories are the finance generator's episodes exported as OpenAI chat records without `tools` (each gets
the catalog), the catalog is the finance tool list written to a JSON file: the pipeline sees no simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from components.evaluation import single_step
from components.config import load_params
from components.domains import finance, generation
from flows.pipeline import pipeline
from tests.conftest import write_params

pytestmark = pytest.mark.flows


def openai_record(episode) -> dict:
    """An episode as an OpenAI chat record: arguments as JSON text, tool results paired by id, no tools."""
    messages, ids = [], []
    for m in episode.message_dicts():
        if m["role"] == "assistant" and m.get("tool_calls"):
            ids = [f"call_{len(messages)}_{k}" for k in range(len(m["tool_calls"]))]
            calls = [{"id": i, "type": "function", "function": {"name": c["function"]["name"],
                                                                 "arguments": json.dumps(c["function"]["arguments"])}}
                     for i, c in zip(ids, m["tool_calls"])]
            messages.append({"role": "assistant", "content": m.get("content") or None, "tool_calls": calls})
        elif m["role"] == "tool":
            messages.append({"role": "tool", "tool_call_id": ids.pop(0), "content": m["content"]})
        else:
            messages.append({"role": m["role"], "content": m["content"]})
    return {"id": f"desk-{episode.id}", "messages": messages}


def write_byo_data(folder: Path, n: int = 400) -> None:
    """catalog.json and trajectories.jsonl of a made-up `desk` domain (the finance tools, no simulator)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog.json").write_text(json.dumps(finance.catalog(), indent=1))
    episodes = generation.generate("finance", n, {"single": 0.45, "parallel": 0.15, "chain": 0.15, "irrelevance": 0.25},
                                      0.25, 0)
    (folder / "trajectories.jsonl").write_text("".join(json.dumps(openai_record(e)) + "\n" for e in episodes))


def test_catalog_domain_runs_the_whole_pipeline_with_single_step_fallback(tmp_path, monkeypatch):
    write_byo_data(tmp_path / "data" / "imports")
    path = write_params(
        tmp_path, "quick",
        project={"domain": "desk", "catalog": "data/imports/catalog.json"},
        base={"system_prompt": "You are a trading desk assistant. Call a tool when it helps."},
        ingest={"source": "none", "imports": [{"source": "openai", "path": "data/imports/trajectories.jsonl",
                                               "domain": "desk", "heldout_fraction": 0.3}]},
        build={"val_size": 6, "test_size": {"single": 6, "chain": 2, "irrelevance": 3}, "rl_prompts": 8},
        sft={"max_steps": 8}, reward_model={"max_steps": 2}, rl={"max_steps": 1, "batch_size": 4},
        register={"model_name": "tooltune-desk"})
    params = load_params(path, profile="")
    # mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI, which tracking reads first: set here, so it is undone
    monkeypatch.setenv("MLFLOW_TRACKING_URI", params.tracking.uri)

    results = pipeline(params_path=str(path))

    assert results["ingest"]["metrics"]["source_openai"] == 400
    assert results["ingest"]["metrics"]["heldout_episodes"] > 0
    assert results["sft"]["metrics"]["loss_last"] < results["sft"]["metrics"]["loss_first"]
    assert "single-step" in results["rl"]["details"]["episodes"]
    header = (params.path("reports") / "rl_reward.csv").read_text().splitlines()[0]
    assert "rewards/correctness/mean" in header and "completion" not in header  # no simulator: no completion layer

    evaluated = results["evaluate"]["metrics"]
    for model in ("base", "sft", "rl"):
        assert 0.0 <= evaluated[f"{model}.single_exact"] <= 1.0
        assert evaluated[f"{model}.single_n"] == 12  # 6 single episodes, 2 steps each: the call, then the answer
        assert not any(k.startswith(model) and k.endswith("_completion") for k in evaluated)
    report = (params.path("reports") / "evaluate.md").read_text()
    assert single_step.NOTE.format(domain="desk") in report
    rows = [json.loads(line) for line in (params.path("reports") / "evaluate" / "sft_rollouts.jsonl").open()]
    assert {r["id"].split("@")[0] for r in rows} == {json.loads(line)["id"] for line in
                                                      (params.path("splits") / "test.jsonl").open()}

    versions = mlflow.MlflowClient(params.tracking.uri).search_model_versions("name = 'tooltune-desk'")
    assert len(versions) == 1
