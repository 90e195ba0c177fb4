"""`tooltune score` through `flows.cli.main`: BFCL files and canonical episodes, the report, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.toolcalls import score
from components.domains import generation
from components.data.episode import write_episodes
from components.data.importers import bfcl
from flows import cli
from tests.unit.test_bfcl import DATA, QUESTIONS, answers_of, calls_of, render

needs_bfcl = pytest.mark.skipif(not QUESTIONS, reason=f"no BFCL sample in {DATA} (set BFCL_DATA)")
SHARES = {"single": 0.4, "parallel": 0.2, "chain": 0.2, "irrelevance": 0.2}


def write_predictions(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_cli(*args: str | Path) -> int:
    return cli.main(["score", *map(str, args)])


@needs_bfcl
def test_bfcl_files_score_through_the_cli(tmp_path, capsys):
    questions = DATA / "BFCL_v4_parallel_multiple.json"
    episodes = score.load_tasks(questions, answers_of(questions))
    rows = [{"id": e.id, "result": render(calls_of(e), "python" if i % 2 else "decoded")}
            for i, e in enumerate(episodes)]
    rows[0]["result"] = "Sorry, I cannot help."  # parallel_multiple_0: no call
    preds = write_predictions(tmp_path / "pred.jsonl", rows)
    out = tmp_path / "report.json"
    assert run_cli("--tasks", questions, "--answers", answers_of(questions), "--predictions", preds, "--out", out) == 0
    report = json.loads(out.read_text())
    assert report["n"] == 100 and report["accuracy"] == 0.97  # no_call + the two known-bad ground truths
    assert report["by_category"] == {"bfcl:parallel_multiple": {"n": 100, "accuracy": 0.97}}
    assert report["results"]["parallel_multiple_0"] == {"valid": False, "errors": ["no_call"]}
    assert report["results"]["parallel_multiple_12"] == {"valid": False, "errors": ["unknown_argument"]}
    assert report["errors"] == {"unknown_argument": 2, "no_call": 1}
    table = capsys.readouterr().out
    assert "| all | 100 | 97.00% |" in table and "| pattern parallel | 100 | 97.00% |" in table


@needs_bfcl
def test_irrelevance_is_no_call(tmp_path):
    questions = DATA / "BFCL_v4_irrelevance.json"
    episodes = score.load_tasks(questions)
    tool = episodes[1].tools[0].function.name
    results = ["No function fits.", [{tool: {}}], "[broken(call=", "[]"]
    rows = [{"id": e.id, "result": results[i] if i < len(results) else ""} for i, e in enumerate(episodes)]
    report = score.run(questions, write_predictions(tmp_path / "p.jsonl", rows), tmp_path / "r.json")
    verdicts = [report["results"][e.id] for e in episodes[:4]]
    assert verdicts == [{"valid": True, "errors": []}, {"valid": False, "errors": ["call_when_irrelevant"]},
                        {"valid": True, "errors": []}, {"valid": True, "errors": []}]  # BFCL: unparsable = no call


def fc_result(calls: list[dict[str, Any]]) -> Any:
    """The calls as BFCL's FC-mode result files hold them: one `{function: arguments as a JSON string}` per call."""
    return [{c["name"]: json.dumps(c["arguments"])} for c in calls]


@needs_bfcl
def test_bfcl_fc_mode_results_of_the_whole_sample(tmp_path):
    failed, n = {}, 0
    for questions in QUESTIONS:  # irrelevance: no call, BFCL's FC result is then the model's text
        episodes = score.load_tasks(questions, answers_of(questions))
        rows = [{"id": e.id, "result": fc_result(calls_of(e)) if e.expected.steps else "No function fits."}
                for e in episodes]
        out = tmp_path / f"{questions.stem}.report.json"
        assert run_cli("--tasks", questions, *(["--answers", answers_of(questions)] if answers_of(questions) else []),
                       "--predictions", write_predictions(tmp_path / f"{questions.stem}.jsonl", rows),
                       "--out", out) == 0
        results = json.loads(out.read_text())["results"]
        n += len(results)
        failed |= {rid: r["errors"] for rid, r in results.items() if not r["valid"]}
    assert n == 620 and failed == {rid: ["unknown_argument"] for rid in bfcl.KNOWN_BAD}


@needs_bfcl
@pytest.mark.parametrize(("arguments", "rule"), [
    ('{"base": 10, "height": 5', "json"),  # cut off
    ('{"base": 10, "base": 5}', "duplicate_key"),
    ('{"base": ' + "[" * 150 + "]" * 150 + "}", "json_depth"),
    ('{"base": ' + "9" * 5000 + "}", "number_size"),
    ('{"base": NaN}', "json_number"),
    ('{"base": "\\ud800"}', "unicode"),
    ("[10, 5]", "fc_arguments"),
])
def test_malformed_fc_arguments_are_unparsable_not_a_crash(tmp_path, arguments, rule):
    questions = DATA / "BFCL_v4_simple_python.json"
    episodes = score.load_tasks(questions, answers_of(questions))
    rows = [{"id": e.id, "result": fc_result(calls_of(e))} for e in episodes]
    name = next(iter(rows[0]["result"][0]))
    rows[0]["result"] = [{name: arguments}]
    rows[1]["result"] = [{k: json.loads(v)} for k, v in rows[1]["result"][0].items()]  # FC with decoded arguments
    report = score.run(questions, write_predictions(tmp_path / "p.jsonl", rows), tmp_path / "r.json",
                       answers_of(questions))
    verdict = report["results"][episodes[0].id]
    assert verdict["valid"] is False and verdict["errors"] == ["unparsable"]
    assert verdict["detail"].startswith(f"arguments of {name!r}: rule '{rule}'")
    assert report["results"][episodes[1].id] == {"valid": True, "errors": []}
    assert report["n"] == 200 and report["accuracy"] == 0.995


def test_canonical_episodes_with_outputs_and_trajectories(tmp_path):
    episodes = generation.generate("travel", 20, SHARES, 0.0, seed=5)
    tasks = tmp_path / "episodes.jsonl"
    write_episodes(tasks, episodes)
    rows = []
    for ep in episodes:
        turns = ep.message_dicts()[1:]
        if len(ep.expected.steps) > 1:  # multi-step: the whole trajectory
            rows.append({"id": ep.id, "result": turns})
        else:  # one turn: the raw text in the project's template
            calls = [c.model_dump(exclude_none=True) for s in ep.expected.steps for c in s]
            rows.append({"id": ep.id, "result": render(calls, "hermes") + "<|im_end|>" if calls else "No tool fits."})
    chain = next(ep for ep in episodes if len(ep.expected.steps) > 1)
    stopped = next(r for r in rows if r["id"] == chain.id)
    stopped["result"] = stopped["result"][:1]  # only the first call, then nothing
    report = score.run(tasks, write_predictions(tmp_path / "p.jsonl", rows), tmp_path / "r.json")
    assert report["n"] == 20 and report["accuracy"] == 0.95
    assert report["results"][chain.id] == {"valid": False, "errors": ["premature_stop"]}
    assert set(report["by_pattern"]) == {e.pattern for e in episodes}


@pytest.mark.parametrize("lines, message", [
    (['{"id": "x", "result": 1}'], r"p.jsonl:1: rule 'known_id': no task has id x"),
    (['{"id": "E", "result": 1}', "{oops"], r"p.jsonl:2: rule 'json'"),
    (['{"result": 1}'], r"p.jsonl:1: rule 'prediction_schema'"),
    (['{"id": "E", "result": 1}', '{"id": "E", "result": 2}'], r"p.jsonl:2: rule 'unique_id'"),
    (["[1, 2]"], r"p.jsonl:1: rule 'json_object'"),
])
def test_bad_predictions_exit_2_naming_file_line_and_rule(tmp_path, capsys, lines, message):
    episodes = generation.generate("travel", 2, {"single": 1.0}, 0.0, seed=1)
    tasks = tmp_path / "episodes.jsonl"
    write_episodes(tasks, episodes)
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(line.replace('"E"', json.dumps(episodes[0].id)) for line in lines) + "\n")
    assert run_cli("--tasks", tasks, "--predictions", preds, "--out", tmp_path / "r.json") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "r.json").exists()


def test_missing_files_and_unpredicted_tasks(tmp_path, capsys):
    episodes = generation.generate("travel", 2, {"single": 1.0}, 0.0, seed=1)
    tasks = tmp_path / "episodes.jsonl"
    write_episodes(tasks, episodes)
    preds = write_predictions(tmp_path / "p.jsonl", [{"id": episodes[0].id, "result": ""}])
    assert run_cli("--tasks", tmp_path / "nope.jsonl", "--predictions", preds, "--out", tmp_path / "r.json") == 2
    assert "nope.jsonl: file not found" in capsys.readouterr().err
    assert run_cli("--tasks", tasks, "--predictions", preds, "--out", tmp_path / "r.json") == 2
    assert "p.jsonl: rule 'all_predicted': 1 task(s) have no prediction" in capsys.readouterr().err
    assert run_cli("--tasks", tasks, "--answers", preds, "--predictions", preds, "--out", tmp_path / "r.json") == 2
    assert "rule 'answers_for_bfcl'" in capsys.readouterr().err
