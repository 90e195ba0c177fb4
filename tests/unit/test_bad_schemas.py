"""The hostile tool-schema corpus (tests/fixtures/bad_inputs/schemas/) through the real CLI, in process.

Each bad file must end its command (`tooltune ingest`, `tooltune score`, `tooltune stage validate`, or an ingest
in a project whose catalog file is the bad file) with exit code 2 and one short `error:` line naming the file,
the line (or catalog record) and the rule; no traceback; the earlier output byte-identical. Each case runs
under an alarm: an exponential regex or an unbounded recursion fails it instead of hanging the suite.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.toolcalls import schema_errors, score_episode, tool_index
from components.toolcalls.schema import parameters_problem, validator
from flows.cli import main as cli
from tests.conftest import write_params
from tests.unit.test_bad_inputs import _no_system_metrics, _params, _tree, good_run  # noqa: F401 (fixtures)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs" / "schemas"
CASES = json.loads((CORPUS / "cases.json").read_text())
FIXTURES = CORPUS.parents[1] / "importers"
GOOD_EPISODES = CORPUS.parent / "good.jsonl"
OLD = b'{"previous": "good output"}\n'


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """Fail a case that runs past 60 s (an exponential regex would run for ages) instead of hanging."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("the case ran past its 60 s deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def _predictions(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "result": "[]"}) + "\n" for i in ids))
    return path


def _argv(spec: dict, bad: Path, tmp_path: Path) -> list[str]:
    """The command line of a case; its output file (`out`) already holds an earlier good version."""
    out, params = str(tmp_path / "out"), write_params(tmp_path)
    command = spec["command"]
    if command == "ingest-bfcl":
        return ["ingest", "--source", "bfcl", "--path", str(bad), "--answers", str(FIXTURES / "bfcl_answers.jsonl"),
                "--out", out, "--params", str(params)]
    if command == "ingest-openai":
        return ["ingest", "--source", "openai", "--path", str(bad), "--out", out, "--params", str(params)]
    if command == "catalog":  # a bring-your-own project whose catalog file is the bad one
        good = tmp_path / "one.jsonl"
        good.write_text((FIXTURES / "openai.jsonl").read_text().splitlines()[0] + "\n")
        params = write_params(tmp_path, project={"domain": "desk", "catalog": str(bad)}, ingest={
            "source": "none", "imports": [{"source": "openai", "path": str(good), "domain": "desk"}]})
        return ["ingest", "--source", "openai", "--path", str(good), "--domain", "desk", "--out", out,
                "--params", str(params)]
    tasks = GOOD_EPISODES if command == "score-predictions" else bad
    preds = bad if command == "score-predictions" else _predictions(tmp_path / "preds.jsonl", _ids(tasks))
    answers = ["--answers", str(FIXTURES / "bfcl_answers.jsonl")] if command == "score-bfcl" else []
    return ["score", "--tasks", str(tasks), *answers, "--predictions", str(preds), "--out", out]


def _assert_one_error_line(err: str, spec: dict, where: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(lines) == 1, err[:2000]
    assert where in lines[0] and spec["detail"] in err, err[:2000]
    return lines[0]


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c]["command"] != "validate"))
def test_bad_schema_fails_with_file_line_and_rule(case, tmp_path, capsys):
    spec = CASES[case]
    bad = CORPUS / spec["file"]
    out = tmp_path / "out"
    out.write_bytes(OLD)
    argv = _argv(spec, bad, tmp_path)
    capsys.readouterr()

    assert cli(argv) == 2

    err = capsys.readouterr().err
    where = f"{bad} record {spec['line']}" if spec["command"] == "catalog" else f"{bad}:{spec['line']}"
    line = _assert_one_error_line(err, spec, f"{where}")
    assert f"rule '{spec['rule']}'" in line
    assert len(line) < 600  # a hostile value is quoted short, never whole
    assert out.read_bytes() == OLD  # the earlier output untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c]["command"] == "validate"))
def test_bad_schema_fails_validate(case, good_run, tmp_path, capsys):  # noqa: F811 (the imported fixture)
    spec = CASES[case]
    work = tmp_path / "work"
    shutil.copytree(good_run, work)
    bad = CORPUS / spec["file"]
    params = _params(work, bad, {})
    before = _tree(work)
    capsys.readouterr()

    assert cli(["stage", "validate", "--params", str(params)]) == 2

    err = capsys.readouterr().err
    rid = _ids(bad)[spec["line"] - 1]
    _assert_one_error_line(err, spec, "rule(s) failed")
    assert f"- {spec['rule']}: 1 record(s): {bad}:{spec['line']} (id {rid}): " in err, err
    assert _tree(work) == before


def test_corpus_is_complete():
    files = {p.name for p in CORPUS.iterdir() if p.suffix in (".json", ".jsonl") and p.name != "cases.json"}
    assert files == {c["file"] for c in CASES.values()}
    assert {c["rule"] for c in CASES.values()} >= {"tool_schema", "schema_ref", "schema_pattern", "schema_depth",
                                                   "json_depth", "bfcl_type", "tool_schema"}
    assert {c["command"] for c in CASES.values()} == {"ingest-bfcl", "ingest-openai", "catalog", "score-tasks",
                                                      "score-bfcl", "score-predictions", "validate"}


# ------------------------------------------------------------------------------------- evil pattern

EVIL = {"type": "object", "properties": {"s": {"type": "string", "pattern": "(a+)+$"}}}


def test_exponential_pattern_is_checked_in_linear_time():
    """`(a+)+$` on "aaaa...!" takes Python's `re` about 2**n steps; RE2 answers at once."""
    call = {"name": "f", "arguments": {"s": "a" * 100_000 + "!"}}
    start = time.perf_counter()
    errors = schema_errors(call, {"f": EVIL})
    assert time.perf_counter() - start < 0.5
    assert [kind for kind, _ in errors] == ["wrong_value"] and "does not match" in errors[0][1]
    assert schema_errors({"name": "f", "arguments": {"s": "aaa"}}, {"f": EVIL}) == []


def test_pattern_properties_and_additional_properties_use_re2():
    inner = {"type": "object", "patternProperties": {"(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    schema = {"type": "object", "properties": {"o": inner}}
    start = time.perf_counter()
    errors = [e.message for e in validator(schema).iter_errors({"o": {"a" * 50_000 + "!": 1, "aa": "x"}})]
    assert time.perf_counter() - start < 0.5
    assert any("is not of type 'integer'" in e for e in errors) and any("not allowed" in e for e in errors), errors
    assert parameters_problem({"patternProperties": {"a": {}}, "unevaluatedProperties": False})[0] == "schema_pattern"


def test_evil_pattern_scores_through_the_cli_quickly(tmp_path, capsys):
    tasks, preds = tmp_path / "tasks.jsonl", tmp_path / "preds.jsonl"
    row = json.loads(GOOD_EPISODES.read_text().splitlines()[0])  # a single get_weather call
    row["tools"][0]["function"]["parameters"]["properties"]["city"]["pattern"] = "(a+)+$"
    tasks.write_text(json.dumps(row) + "\n")
    call = row["expected"]["steps"][0][0]
    bad = {**call, "arguments": {**call["arguments"], "city": "a" * 20_000 + "!"}}
    preds.write_text(json.dumps({"id": row["id"], "result": [{"name": bad["name"], "arguments": bad["arguments"]}]})
                     + "\n")
    start = time.perf_counter()
    assert cli(["score", "--tasks", str(tasks), "--predictions", str(preds), "--out", str(tmp_path / "r.json")]) == 0
    assert time.perf_counter() - start < 5  # the CLI's own imports included; the regex itself takes microseconds
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy"] == 0.0 and report["errors"] == {"wrong_value": 1}


# ------------------------------------------------------------------------------------------ $defs / $ref

UNIT_DEFS = {"type": "object", "$defs": {"Unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                                         "Place": {"type": "object", "properties": {"city": {"type": "string"}},
                                                   "required": ["city"]},
                                         "Temp": {"type": "number"}},
             "properties": {"unit": {"$ref": "#/$defs/Unit"}, "where": {"$ref": "#/$defs/Place"},
                            "temp": {"$ref": "#/$defs/Temp"},
                            "units": {"type": "array", "items": {"$ref": "#/$defs/Unit"}}},
             "required": ["unit"]}


@pytest.mark.parametrize("arguments, errors", [
    ({"unit": "celsius"}, []),
    ({"unit": "kelvin"}, ["wrong_value"]),
    ({"unit": "celsius", "temp": "hot"}, ["wrong_type"]),
    ({"unit": "celsius", "where": {"city": "Lisbon"}}, []),
    ({"unit": "celsius", "where": {}}, ["wrong_value"]),  # Place requires city
    ({"unit": "celsius", "units": ["celsius", "kelvin"]}, ["wrong_value"]),
    ({"where": {"city": "Lisbon"}}, ["missing_required_argument"]),
])
def test_local_defs_refs_validate(arguments, errors):
    assert parameters_problem(UNIT_DEFS) is None
    assert [kind for kind, _ in schema_errors({"name": "w", "arguments": arguments}, {"w": UNIT_DEFS})] == errors


def test_defs_enum_scores_with_bfcl_rules_and_exact_rules():
    tools = tool_index([{"type": "function", "function": {"name": "w", "parameters": UNIT_DEFS}}])
    gold = {"name": "w", "arguments": {"unit": "celsius"}}
    assert score_episode([[{"name": "w", "arguments": {"unit": "Celsius"}}]], [[gold]], tools).exact
    assert score_episode([[{"name": "w", "arguments": {"unit": "kelvin"}}]], [[gold]], tools).errors == ["wrong_value"]
    # BFCL's rules read the referenced type: an int is accepted where the $ref'd type is a number
    accept = {**gold, "accept": {"unit": ["celsius"], "temp": [20.0], "units": [["celsius", "fahrenheit"], ""]}}
    ok = {"name": "w", "arguments": {"unit": "celsius", "temp": 20, "units": ["Celsius", "fahrenheit"]}}
    assert score_episode([[ok]], [[accept]], tools).exact
    wrong = {"name": "w", "arguments": {"unit": "celsius", "temp": "20"}}
    assert score_episode([[wrong]], [[accept]], tools).errors == ["wrong_type"]


def test_defs_enum_ingests_and_scores_through_the_cli(tmp_path, capsys):
    """An OpenAI record whose tool uses a `$defs` enum (what pydantic emits): ingest, then score both ways."""
    rec = json.loads((FIXTURES / "openai.jsonl").read_text().splitlines()[0])
    params = rec["tools"][0]["function"]["parameters"]
    params["$defs"] = {"Unit": params["properties"]["unit"]}
    params["properties"]["unit"] = {"$ref": "#/$defs/Unit"}
    source, raw = tmp_path / "in.jsonl", tmp_path / "episodes.jsonl"
    source.write_text(json.dumps(rec) + "\n")
    assert cli(["ingest", "--source", "openai", "--path", str(source), "--out", str(raw),
                "--params", str(write_params(tmp_path))]) == 0
    episode = json.loads(raw.read_text())
    call = episode["expected"]["steps"][0][0]
    for unit, valid in (("celsius", True), ("kelvin", False)):
        preds = _predictions(tmp_path / "p.jsonl", [])
        preds.write_text(json.dumps({"id": episode["id"], "result": [
            {"name": call["name"], "arguments": {**call["arguments"], "unit": unit}}]}) + "\n")
        assert cli(["score", "--tasks", str(raw), "--predictions", str(preds), "--out", str(tmp_path / "r.json")]) == 0
        report = json.loads((tmp_path / "r.json").read_text())
        assert report["accuracy"] == float(valid) and report["errors"] == ({} if valid else {"wrong_value": 1})


def test_recursive_schema_and_deep_arguments_are_a_verdict_not_a_crash():
    """A tree schema recurses once per level of the arguments: too deep a value is wrong, never a RecursionError."""
    tree = {"$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            "properties": {"t": {"$ref": "#/$defs/node"}}}
    assert parameters_problem(tree) is None
    deep: list = []
    for _ in range(2000):
        deep = [deep]
    assert schema_errors({"name": "f", "arguments": {"t": [[[]]]}}, {"f": tree}) == []
    assert [kind for kind, _ in schema_errors({"name": "f", "arguments": {"t": deep}}, {"f": tree})] == ["wrong_value"]


def test_unchecked_remote_ref_is_never_fetched():
    """A schema that skipped the entry checks still never reaches the network: the registry refuses."""
    from components.data.episode import DataError

    tools = {"f": {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/x.json"}}}}
    with pytest.raises(DataError, match="rule 'schema_ref'"):
        schema_errors({"name": "f", "arguments": {"x": 1}}, tools)
