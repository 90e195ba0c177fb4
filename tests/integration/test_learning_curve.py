"""bench/learning_curve.py on the tiny model, through its command line: a time limit ends the SFT run after its
first step and the stage records the steps it really trained (not `sft.max_steps`); a snapshot reached (full
weights with their tokenizer, LoRA off) is evaluated like the evaluate stage, and so is the stage's output when the
limit stops training between snapshots; the curve's table and plot are written.

Marked `integration` and `slow` (real SFT and evaluation twice, ~1 min on 2 cores).
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import re
import sys

import pytest

from components import base, build, ingest
from components.config import load_params
from tests.conftest import REPO, write_params

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: the default run is at its ~15-minute budget


def run_bench(monkeypatch, capsys, workdir, steps: str) -> dict:
    """bench/learning_curve.py's main() with a zero time limit; returns the SFT stage's printed metrics."""
    spec = importlib.util.spec_from_file_location("learning_curve", REPO / "bench" / "learning_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["learning_curve.py", "--workdir", str(workdir), "--profile", "", "--steps", steps,
                                      "--no-base", "--max-train-seconds", "0", "--largest-first"])
    module.main()
    printed = capsys.readouterr().out
    return ast.literal_eval(re.search(r"^sft: (\{.*\})$", printed, re.M).group(1))


def curve(params) -> list[dict]:
    with open(params.path("reports") / "learning_curve.csv") as f:
        return list(csv.DictReader(f))


def test_time_limit_stops_sft_and_the_points_reached_are_evaluated(tmp_path, monkeypatch, capsys):
    params = load_params(write_params(tmp_path, "quick", ingest={"n_episodes": 300}, sft={"save_steps": 0}), profile="")
    for stage in (base, ingest, build):
        stage.run(params)
    n_test = sum(1 for _ in open(params.path("splits") / "test.jsonl"))
    rollouts = params.path("reports") / "learning_curve" / "sft_step1_rollouts.jsonl"

    # a zero limit ends training after its first step: the stage says one step (8 episodes), not max_steps (4)
    metrics = run_bench(monkeypatch, capsys, tmp_path, "1,4")
    assert metrics["episodes_seen"] == params.sft.batch_size * params.sft.grad_accum
    assert json.loads((params.path("sft_model") / "tooltune.json").read_text())["steps"] == 1
    snapshots = tmp_path / "learning_curve"
    assert (snapshots / "step-1" / "model.safetensors").is_file() and not (snapshots / "step-4").exists()
    assert (snapshots / "step-1" / "tokenizer_config.json").is_file()  # full weights keep their tokenizer
    assert [int(r["step"]) for r in curve(params)] == [1]
    assert sum(1 for _ in open(rollouts)) == n_test  # every test episode rolled out
    table = (params.path("reports") / "learning_curve.md").read_text()
    assert table.splitlines()[2].startswith("| 1 | ") and (params.path("reports") / "learning_curve.png").stat().st_size

    # stopped before the first snapshot (step 2): the stage's output at step 1 is the point, with its seconds
    rollouts.unlink()
    run_bench(monkeypatch, capsys, tmp_path, "2,4")
    assert not (snapshots / "step-2").exists()
    assert json.loads((params.path("sft_model") / "seconds.json").read_text())["seconds"] >= 0
    assert [int(r["step"]) for r in curve(params)] == [1] and sum(1 for _ in open(rollouts)) == n_test
