"""`tooltune bfcl` (components/evaluation/bfcl.py): the ground truth through the whole write-and-score path gives
100 % (but the known-bad entries), the leaderboard's aggregates by hand, and the command end to end on the tiny
random model over a slice of the real BFCL files (tests/fixtures/bfcl), rescored by `tooltune score`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from components import toolcalls
from components.config import load_params
from components.data.episode import Episode
from components.data.importers import bfcl as importer
from components.evaluation import bfcl
from components.training import models
from flows import cli
from tests.conftest import write_params
from tests.unit.test_bfcl import DATA, QUESTIONS, calls_of
from tests.unit.test_evaluate import _tiny_chat_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bfcl"
FIVE = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]


def gold_text(ep: Episode) -> str:
    """The ground truth as the model's template writes it: `<tool_call>` blocks (or a plain answer), end token."""
    if not ep.expected.steps:
        return "None of these functions fits the request." + toolcalls.END
    return "".join(f"{toolcalls.OPEN}\n{json.dumps(c)}\n{toolcalls.CLOSE}" for c in calls_of(ep)) + toolcalls.END


@pytest.mark.parametrize("data", [FIXTURES, pytest.param(DATA, marks=pytest.mark.skipif(
    not QUESTIONS, reason=f"no BFCL sample in {DATA} (set BFCL_DATA)"))], ids=["fixture", "shared"])
def test_ground_truth_through_write_and_score_is_100_percent(tmp_path, data):
    categories = bfcl.discover(data)
    assert [c.name for c in categories] == FIVE
    questions = {c.name: importer.import_episodes(c.questions, c.answers) for c in categories}
    texts = {e.id: gold_text(e) for eps in questions.values() for e in eps}
    scores, summary = bfcl.write_and_score(categories, questions, texts, tmp_path)
    failed = {rid for s in scores.values() for rid, r in s.results.items() if not r["valid"]}
    assert failed == set(importer.KNOWN_BAD) & set(texts)
    for s in scores.values():
        assert s.n == len(questions[s.name]) and s.correct == s.n - len(failed & set(s.results))
    pm = scores["parallel_multiple"]
    assert summary["non_live_ast"] == pytest.approx((1 + 1 + 1 + pm.correct / pm.n) / 4)
    lines = [json.loads(x) for x in (tmp_path / "BFCL_v4_parallel_multiple_result.json").read_text().splitlines()]
    first = questions["parallel_multiple"][0]
    assert lines[0]["id"] == first.id  # FC mode: {function: arguments as a JSON string}
    assert lines[0]["result"] == [{c["name"]: json.dumps(c["arguments"])} for c in calls_of(first)]


def score_of(name: str, n: int, correct: int) -> bfcl.CategoryScore:
    return bfcl.CategoryScore(name, n, correct, {})


def test_aggregates_match_the_leaderboard_formula_by_hand():
    scores = {s.name: s for s in [score_of("simple_python", 4, 3), score_of("simple_javascript", 2, 1),
                                  score_of("multiple", 5, 5), score_of("parallel", 2, 0),
                                  score_of("parallel_multiple", 4, 2), score_of("irrelevance", 10, 7)]}
    summary = bfcl.aggregate(scores)
    # simple = (3/4 + 1/2) / 2 = 0.625; non-live AST = (0.625 + 1 + 0 + 0.5) / 4 = 0.53125
    assert summary["simple"] == pytest.approx(0.625)
    assert summary["non_live_ast"] == pytest.approx(0.53125)
    assert summary["non_live"] == pytest.approx((0.625 + 1 + 0 + 0.5 + 0.7) / 5)
    assert summary["live_ast"] is None  # no live category
    live = {s.name: s for s in [score_of("live_simple", 10, 5), score_of("live_multiple", 30, 30),
                                score_of("live_parallel", 2, 0), score_of("live_parallel_multiple", 8, 4)]}
    assert bfcl.aggregate(live)["live_ast"] == pytest.approx(39 / 50)  # weighted by n, not the mean 0.5625
    del scores["parallel"]
    assert bfcl.aggregate(scores)["non_live_ast"] is None  # a part missing: no headline number


def test_discover_categories_and_bad_input(tmp_path):
    assert [c.name for c in bfcl.discover(FIXTURES, ["simple", "irrelevance"])] == ["simple_python", "irrelevance"]
    assert bfcl.discover(FIXTURES, ["irrelevance"])[0].answers is None
    with pytest.raises(Exception, match=r"unknown 'simpel'"):
        bfcl.discover(FIXTURES, ["simpel"])
    with pytest.raises(Exception, match=r"rule 'bfcl_category': no question file for 'live'"):
        bfcl.discover(FIXTURES, ["live"])
    with pytest.raises(Exception, match=r"rule 'bfcl_data'"):
        bfcl.discover(tmp_path / "nowhere")
    (tmp_path / "BFCL_v4_multiple.json").write_text((FIXTURES / "BFCL_v4_multiple.json").read_text())
    with pytest.raises(Exception, match=r"possible_answer/BFCL_v4_multiple.json: rule 'possible_answer'"):
        bfcl.discover(tmp_path)


@pytest.fixture
def tiny_project(tmp_path) -> Path:
    """params.yaml of the quick profile (the tiny model) rooted in tmp_path, the tiny model saved at paths.base."""
    params_path = write_params(tmp_path, "quick", bfcl={"max_new_tokens": 12, "batch_size": 4})
    params = load_params(params_path, profile="")
    model, tok = _tiny_chat_model(params, "find the area of a triangle; call a function", seed=0)
    models.save(model, tok, params.path("base"), {"spec": "tiny"})
    return params_path


def test_tooltune_bfcl_end_to_end_on_the_tiny_model(tiny_project, tmp_path, capsys):
    out = tmp_path / "bfcl_out"
    code = cli.main(["bfcl", "--model", "base", "--data", str(FIXTURES), "--out", str(out),
                     "--params", str(tiny_project)])
    assert code == 0
    printed = capsys.readouterr().out
    for name in FIVE:
        assert f"| {name} | 3 |" in printed
        assert (out / f"BFCL_v4_{name}_result.json").is_file() and (out / f"{name}_score.json").is_file()
    assert "| **overall non_live_ast** |" in printed
    assert all((out / f"bfcl.{ext}").stat().st_size > 0 for ext in ("md", "csv", "json", "png"))
    rows = list(csv.DictReader((out / "bfcl.csv").open()))
    assert [r["category"] for r in rows[:5]] == FIVE and {r["n"] for r in rows[:5]} == {"3"}
    table = json.loads((out / "bfcl.json").read_text())
    assert sum(c["n"] for c in table["categories"].values()) == 15
    for name in FIVE:  # the result file rescored by `tooltune score` gives the same verdicts
        answers = FIXTURES / "possible_answer" / f"BFCL_v4_{name}.json"
        rescored = tmp_path / f"{name}_rescored.json"
        assert cli.main(["score", "--tasks", str(FIXTURES / f"BFCL_v4_{name}.json"),
                         *(["--answers", str(answers)] if answers.exists() else []),
                         "--predictions", str(out / f"BFCL_v4_{name}_result.json"), "--out", str(rescored)]) == 0
        ours = json.loads((out / f"{name}_score.json").read_text())["results"]
        assert json.loads(rescored.read_text())["results"] == ours and len(ours) == 3
        assert table["categories"][name]["correct"] == sum(r["valid"] for r in ours.values())


def test_tooltune_bfcl_categories_limit_and_bad_input(tiny_project, tmp_path, capsys):
    out = tmp_path / "some"
    assert cli.main(["bfcl", "--model", "base", "--data", str(FIXTURES), "--categories", "simple,irrelevance",
                     "--limit", "2", "--out", str(out), "--params", str(tiny_project)]) == 0
    table = json.loads((out / "bfcl.json").read_text())
    assert {k: v["n"] for k, v in table["categories"].items()} == {"simple_python": 2, "irrelevance": 2}
    assert table["overall"]["non_live_ast"] is None and "n/a" in capsys.readouterr().out
    assert cli.main(["bfcl", "--model", "base", "--data", str(FIXTURES), "--categories", "simpel",
                     "--params", str(tiny_project)]) == 2
    assert "error: --categories: unknown 'simpel'" in capsys.readouterr().err
    assert cli.main(["bfcl", "--model", str(tmp_path / "no_model"), "--data", str(FIXTURES),
                     "--params", str(tiny_project)]) == 2
    assert "not a model folder" in capsys.readouterr().err
    assert cli.main(["bfcl", "--model", "base", "--params", str(tiny_project)]) == 2  # no --data, bfcl.data null
    assert "give --data DIR" in capsys.readouterr().err


def test_evaluate_stage_bfcl_column(params_factory):
    """bfcl.data set: the evaluate stage runs each model on it too: metrics `<model>.bfcl.*`, tables, a note."""
    from components import evaluate
    from components.data.fileio import write_jsonl
    from components.domains import generation

    params = params_factory(evaluate={"models": ["sft"], "batch_size": 4, "max_new_tokens": 4, "max_turns": 1,
                                      "compare_champion": False, "reuse": False},
                            bfcl={"data": str(FIXTURES), "limit": 1, "max_new_tokens": 8})
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    models.save(model, tok, params.path("sft_model"), {"spec": "tiny"})
    write_jsonl(params.path("splits") / "test.jsonl", [e.model_dump(mode="json") for e in
                                                       generation.generate("travel", 4, {"single": 1.0}, 0.0, seed=6)])
    metrics = evaluate.run(params).metrics
    assert {metrics[f"sft.bfcl.{c}_n"] for c in FIVE} == {1.0}
    parts = [metrics["sft.bfcl.simple_python"], *(metrics[f"sft.bfcl.{c}"] for c in FIVE[1:4])]
    assert metrics["sft.bfcl.non_live_ast"] == pytest.approx(sum(parts) / 4, abs=1e-4)
    assert (params.path("reports") / "evaluate" / "bfcl" / "sft" / "bfcl.md").is_file()
    assert "BFCL (" in (params.path("reports") / "evaluate.md").read_text()


def test_gated_scores_count_a_refused_question_as_text():
    """A refused question is right on irrelevance categories (live ones too) and wrong elsewhere; a passed one keeps
    its verdict."""
    results = {"simple_python": {"s0": True, "s1": True, "s2": False},
               "irrelevance": {"i0": True, "i1": False, "i2": False},
               "live_irrelevance": {"l0": False}}
    passes = {"s0": True, "s1": False, "s2": False, "i0": True, "i1": False, "i2": True, "l0": False}
    scores = bfcl.gated(results, passes)
    assert [(s.n, s.correct) for s in scores.values()] == [(3, 1), (3, 2), (1, 1)]
    assert bfcl.gated(results, dict.fromkeys(passes, True))["irrelevance"].correct == 1  # nothing refused: as scored
