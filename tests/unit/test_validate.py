"""The validate stage on real Great Expectations: good data passes, each broken rule is named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from components import validate
from components.config import load_params
from components.domains import travel_tasks
from components.episode import DataError, write_jsonl
from components.validate import ValidationFailed

REPO = Path(__file__).resolve().parents[2]
N = 60  # episodes; with the quick profile's shares every pattern and tool reaches its minimum share


@pytest.fixture(scope="module")
def good_rows() -> list[dict]:
    """Generated episodes as JSON records (generated once; tests mutate deep copies)."""
    p = load_params(REPO / "params.yaml", profile="quick")
    episodes = travel_tasks.generate(N, p.ingest.shares, p.ingest.heldout_fraction, p.project.seed)
    return [e.model_dump(mode="json", exclude_none=True) for e in episodes]


@pytest.fixture
def rows(good_rows) -> list[dict]:
    return copy.deepcopy(good_rows)


@pytest.fixture
def params(params_factory):
    return params_factory()


def _write(params, rows: list[dict]):
    path = params.path("raw")
    write_jsonl(path, rows)
    return path


def _first(rows: list[dict], tool: str) -> tuple[int, dict]:
    """(row index, first call to `tool` in the messages) of the first episode that calls it."""
    for i, row in enumerate(rows):
        for msg in row["messages"]:
            for tc in msg.get("tool_calls", []):
                if tc["function"]["name"] == tool:
                    return i, tc["function"]
    raise AssertionError(f"no episode calls {tool}")


def _fail(params) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        validate.run(params)
    return info.value


def _rules(err: ValidationFailed) -> dict[str, validate.RuleFailure]:
    return {f.rule: f for f in err.failures}


def test_good_file_passes_and_writes_the_report(params, rows):
    path = _write(params, rows)
    result = validate.run(params)
    report = params.path("reports") / "validation.md"
    assert result.stage == "validate" and result.reports == [str(report)] and result.outputs == {"report": str(report)}
    n_calls = sum(len(m.get("tool_calls", [])) for r in rows for m in r["messages"])
    assert result.metrics == {"n_episodes": N, "n_calls": n_calls, "rules_checked": 10, "rules_failed": 0}
    text = report.read_text()
    assert str(path) in text and "| rule | status | failing count | first failing records |" in text
    for rule in validate.RULES:
        if rule != "max_tokens":
            assert f"| {rule} | passed | 0 |" in text
    assert "| max_tokens | skipped | - | no tokenizer at" in text
    assert not [p for p in report.parent.iterdir() if p.name != "validation.md"]  # no temp files left


def test_unknown_tool_names_file_line_id_and_rule(params, rows):
    i, call = _first(rows, "search_hotels")
    call["name"] = "book_taxi"
    path = _write(params, rows)
    err = _fail(params)
    assert isinstance(err, DataError) and list(_rules(err)) == ["known_tool"]
    line = f"{path}:{i + 1} (id {rows[i]['id']}): tool 'book_taxi' is not in the catalog (messages step 0)"
    assert f"{path}: 1 rule(s) failed\n  - known_tool: 1 record(s): {line}" in str(err)


@pytest.mark.parametrize("tool, change, kind", [
    ("search_flights", lambda a: a.update(date=20260301), "wrong_type"),
    ("search_flights", lambda a: a.pop("date"), "missing_required_argument"),
    ("get_weather", lambda a: a.update(units="metric"), "unknown_argument"),
    ("plan_itinerary", lambda a: a.update(weather="foggy"), "wrong_value"),
])
def test_argument_schema_violations_name_the_error_class(params, rows, tool, change, kind):
    i, call = _first(rows, tool)
    change(call["arguments"])
    path = _write(params, rows)
    failure = _rules(_fail(params))["arguments_match_schema"]
    assert failure.count == 1 and failure.records == (f"{path}:{i + 1} (id {rows[i]['id']})",)
    assert failure.detail.startswith(f"{kind}: {tool}")


def test_record_rules_report_every_broken_line(params, rows):
    path = params.path("raw")
    lines = [json.dumps(r).encode() for r in rows[:6]]
    lines[1] = b'{"id": "x", '  # truncated JSON
    lines[3] = "caf\u00e9".encode("latin-1")  # not UTF-8
    del rows[4]["tools"]
    lines[4] = json.dumps(rows[4]).encode()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    err = _fail(params)
    found = _rules(err)
    assert list(found) == ["utf8", "json", "record_schema"]
    assert found["json"].records == (f"{path}:2",) and "invalid JSON" in found["json"].detail
    assert found["utf8"].records == (f"{path}:4",)
    assert found["record_schema"].records == (f"{path}:5 (id {rows[4]['id']})",)
    assert found["record_schema"].detail.startswith("tools: Field required")
    assert str(err).startswith(f"{path}: 3 rule(s) failed\n  - utf8: 1 record(s): {path}:4: not UTF-8")


@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file_fails_non_empty(params, content):
    path = params.path("raw")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert list(_rules(_fail(params))) == ["non_empty"]


def test_missing_file_is_a_data_error(params):
    with pytest.raises(DataError, match="file not found"):
        validate.run(params)


def test_duplicate_id_names_both_lines(params, rows):
    rows[9]["id"] = rows[2]["id"]
    path = _write(params, rows)
    failure = _rules(_fail(params))["unique_id"]
    assert failure.records == (f"{path}:3 (id {rows[2]['id']})", f"{path}:10 (id {rows[2]['id']})")


def _tool_after_user(msgs):
    msgs.insert(1, {"role": "tool", "content": "{}"})


def _unanswered_call_id(msgs):
    next(m for m in msgs if m["role"] == "tool")["tool_call_id"] = "call_9_9"


@pytest.mark.parametrize("change, detail", [
    (_tool_after_user, "message 1: tool message without a preceding assistant tool call"),
    (_unanswered_call_id, "tool_call_id 'call_9_9' answers no call"),
    (lambda msgs: msgs.pop(), "the last message is tool, not assistant"),
    (lambda msgs: msgs.pop(0), "the first non-system message is assistant, not user"),
])
def test_broken_message_order_fails_role_order(params, rows, change, detail):
    i, _ = _first(rows, "get_weather")
    change(rows[i]["messages"])
    _write(params, rows)
    failure = _rules(_fail(params))["role_order"]
    assert failure.count == 1 and failure.records[0].endswith(f":{i + 1} (id {rows[i]['id']})")
    assert detail in failure.detail


def test_missing_pattern_fails_pattern_share(params, rows):
    _write(params, [r for r in rows if r["pattern"] != "chain"])
    failure = _rules(_fail(params))["pattern_share"]
    assert failure.records == ("pattern 'chain'",) and "absent" in failure.detail


def test_rare_pattern_and_tool_fail_their_minimum_share(params_factory, rows):
    params = params_factory(validate={"min_pattern_share": 0.3, "min_tool_share": 0.1})
    _write(params, rows)
    found = _rules(_fail(params))
    assert "pattern 'chain'" in found["pattern_share"].records
    assert "tool 'plan_itinerary'" in found["tool_share"].records
    assert "< validate.min_tool_share=0.1" in found["tool_share"].detail


def test_failure_leaves_the_previous_report_intact(params, rows):
    _write(params, rows)
    report = validate.run(params).outputs["report"]
    before = open(report, "rb").read()
    rows[0]["id"] = rows[1]["id"]
    _write(params, rows)
    _fail(params)
    assert open(report, "rb").read() == before
    assert sorted(p.name for p in params.path("reports").iterdir()) == ["validation.md"]


def _save_tokenizer(folder) -> None:
    """A word-level tokenizer with a small chat template that renders tools and calls."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    tok.chat_template = ("{% for t in tools %}{{ t | tojson }}\n{% endfor %}{% for m in messages %}{{ m.role }}: "
                         "{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}\n{% endfor %}")
    tok.save_pretrained(folder)


def test_max_tokens_uses_the_base_tokenizer(params_factory, rows):
    params = params_factory(validate={"max_tokens": 100_000})  # the word-level toy tokenizer splits punctuation
    _save_tokenizer(params.path("base"))
    _write(params, rows)
    assert validate.run(params).metrics["rules_checked"] == 11
    assert "| max_tokens | passed | 0 |" in (params.path("reports") / "validation.md").read_text()
    params = params_factory(validate={"max_tokens": 20})
    failure = _rules(_fail(params))["max_tokens"]
    assert failure.count == N and "tokens > validate.max_tokens=20" in failure.detail


def test_crashing_expectation_is_a_bug_not_bad_data(params):
    import pandas as pd

    frames = {"episodes": pd.DataFrame({"record": ["f:1 (id a)"], "id": ["a"]})}  # no role_ok column
    checks = {k: v for k, v in validate.expectations(params.validate_, False).items() if k == "role_order"}
    with pytest.raises(RuntimeError, match="expectation role_order .* crashed \\(a bug in tooltune, not bad data\\)"):
        validate.run_suites(frames, checks)
