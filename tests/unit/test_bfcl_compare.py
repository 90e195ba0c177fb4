"""`tooltune bfcl --model A --model B` (components/evaluation/bfcl_compare.py): McNemar and Wilson per category by
hand, questions that differ refused, and the command end to end on two tiny models over the BFCL fixture slice and
the shared BFCL sample (a few questions per category), every number checked against each model's own score files."""

from __future__ import annotations

import csv
import json

import pytest

from components.config import load_params
from components.evaluation import bfcl, bfcl_compare, stats
from components.training import models
from flows import cli
from tests.unit.test_bfcl import DATA, QUESTIONS
from tests.unit.test_bfcl_run import FIVE, FIXTURES, tiny_project  # noqa: F401  (fixture)
from tests.unit.test_evaluate import _tiny_chat_model


def category(name: str, right: list[bool]) -> bfcl.CategoryScore:
    results = {f"{name}_{k}": {"valid": ok} for k, ok in enumerate(right)}
    return bfcl.CategoryScore(name, len(right), sum(right), results)


def test_mcnemar_wilson_and_the_pooled_row_by_hand(tmp_path):
    scores = {"base": {"simple_python": category("simple_python", [True] * 2 + [False] * 8),
                       "irrelevance": category("irrelevance", [True] * 10)},
              "sft": {"simple_python": category("simple_python", [True] * 7 + [False] * 3),
                      "irrelevance": category("irrelevance", [True] * 4 + [False] * 6)}}
    simple, irrelevance, pooled = bfcl_compare.compare(scores, alpha=0.05)
    # simple: 5 questions only sft gets right, none only base: p = 2 * (1/2)^5 = 0.0625, not below 0.05
    assert (simple.n, simple.correct, simple.paired["sft"][1:3]) == (10, {"base": 2, "sft": 7}, (5, 0))
    assert simple.paired["sft"].p_value == pytest.approx(0.0625) and simple.paired["sft"].delta == pytest.approx(0.5)
    assert simple.verdicts["sft"] == "no significant difference"
    assert simple.interval("sft") == stats.wilson(7, 10)
    # irrelevance: 6 only base gets right: p = 2 * (1/2)^6 = 0.03125: worse
    assert irrelevance.paired["sft"].p_value == pytest.approx(0.03125) and irrelevance.verdicts["sft"] == "worse"
    # pooled: 5 vs 6 discordant of 20: p = 2 * sum(C(11, i), i <= 5) / 2^11 = 1
    assert (pooled.category, pooled.n, pooled.paired["sft"][1:3]) == (bfcl_compare.ALL, 20, (5, 6))
    assert pooled.paired["sft"].p_value == 1.0
    summaries = {m: bfcl.aggregate(s) for m, s in scores.items()}
    table = bfcl_compare.markdown([simple, irrelevance, pooled], summaries, 0.05)
    assert "| simple_python | 10 | 20.0% [5.7%, 51.0%] | 70.0% [39.7%, 89.2%] | +50.0 pts | 5 / 0 | 0.0625 |" in table
    assert "| irrelevance | 10 | 100.0% [72.2%, 100.0%] | 40.0% [16.8%, 68.7%] | -60.0 pts | 0 / 6 | 0.0312 | worse |" \
        in table
    bfcl_compare.write([simple, irrelevance, pooled], summaries, {"base": "base", "sft": "runs/x/sft"}, 0.05, tmp_path)
    rows = list(csv.DictReader((tmp_path / "compare.csv").open()))
    assert rows[1]["sft_vs_base_only_base"] == "6" and rows[1]["sft_vs_base_verdict"] == "worse"
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert saved["categories"]["simple_python"]["paired"]["sft_vs_base"]["p"] == pytest.approx(0.0625)
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_models_on_other_questions_are_not_paired_and_labels_are_unique():
    scores = {"base": {"multiple": category("multiple", [True, False])},
              "sft": {"multiple": category("multiple", [True, False, True])}}
    with pytest.raises(ValueError, match="different multiple questions"):
        bfcl_compare.compare(scores, 0.05)
    assert bfcl_compare.labels(["base", "runs/a/sft", "runs/b/sft", "x/rl"]) == ["base", "sft-2", "sft-3", "rl"]


@pytest.mark.parametrize("data", [FIXTURES, pytest.param(DATA, marks=pytest.mark.skipif(
    not QUESTIONS, reason=f"no BFCL sample in {DATA} (set BFCL_DATA)"))], ids=["fixture", "shared"])
def test_tooltune_bfcl_base_against_a_model_folder(tiny_project, tmp_path, capsys, data):  # noqa: F811
    params = load_params(tiny_project, profile="")
    model, tok = _tiny_chat_model(params, "find the area of a triangle; call a function", seed=1)
    models.save(model, tok, tmp_path / "trained", {"spec": "tiny"})
    out = tmp_path / "cmp"
    assert cli.main(["bfcl", "--model", "base", "--model", str(tmp_path / "trained"), "--data", str(data),
                     "--limit", "2", "--out", str(out), "--params", str(tiny_project)]) == 0
    printed = capsys.readouterr().out
    assert "| category | n | base | trained | trained - base | discordant (trained / base) | McNemar p |" in printed
    saved = json.loads((out / "compare.json").read_text())
    assert list(saved["categories"]) == [*FIVE, bfcl_compare.ALL] and saved["baseline"] == "base"
    right = {}
    for m in ("base", "trained"):  # every number is the model's own `tooltune bfcl` output's
        own = json.loads((out / m / "bfcl.json").read_text())
        for name in FIVE:
            verdicts = json.loads((out / m / f"{name}_score.json").read_text())["results"]
            right[m, name] = {qid: r["valid"] for qid, r in verdicts.items()}
            got = saved["categories"][name]["models"][m]
            assert got["correct"] == own["categories"][name]["correct"] == sum(right[m, name].values())
            assert (got["low"], got["high"]) == pytest.approx(stats.wilson(got["correct"], 2))
        assert saved["overall"][m] == own["overall"]
    for name in FIVE:
        pair = saved["categories"][name]["paired"]["trained_vs_base"]
        only_trained = sum(ok and not right["base", name][q] for q, ok in right["trained", name].items())
        only_base = sum(ok and not right["trained", name][q] for q, ok in right["base", name].items())
        assert (pair["only_trained"], pair["only_base"]) == (only_trained, only_base)
        assert pair["p"] == stats.mcnemar(only_trained, only_base)
        assert saved["categories"][name]["n"] == 2
    assert saved["categories"][bfcl_compare.ALL]["n"] == 10
    assert all((out / f"compare.{ext}").stat().st_size > 0 for ext in ("md", "csv", "json", "png"))


def test_a_mistyped_model_folder_fails_before_any_model_runs(tiny_project, tmp_path, capsys):  # noqa: F811
    params = load_params(tiny_project, profile="")
    model, tok = _tiny_chat_model(params, "find the area of a triangle; call a function", seed=1)
    models.save(model, tok, tmp_path / "trained", {"spec": "tiny"})
    out = tmp_path / "cmp"
    assert cli.main(["bfcl", "--model", str(tmp_path / "trained"), "--model", str(tmp_path / "sft_model"),
                     "--data", str(FIXTURES), "--out", str(out), "--params", str(tiny_project)]) != 0
    assert f"{tmp_path / 'sft_model'}: not a model folder" in capsys.readouterr().err
    assert not out.exists()  # the first model was not evaluated (it would write <out>/trained/)
