"""The validate stage on real Great Expectations: good data passes, each broken rule is named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from components import validate
from components.validation import tokens as validate_tokens
from components.config import load_params
from components.domains import generation
from components.data.episode import DataError
from components.data.fileio import write_jsonl
from components.validate import ValidationFailed

REPO = Path(__file__).resolve().parents[2]
N = 60  # episodes; with the quick profile's shares every pattern and tool reaches its minimum share


@pytest.fixture(scope="module")
def good_rows() -> list[dict]:
    """Generated episodes as JSON records (generated once; tests mutate deep copies)."""
    p = load_params(REPO / "params.yaml", profile="quick")
    episodes = generation.generate("travel", N, p.ingest.shares, p.ingest.heldout_fraction, p.project.seed)
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
    docs = params.path("reports") / "validation_docs"
    assert result.stage == "validate" and result.reports == [str(report), str(docs)]
    assert result.outputs == {"report": str(report), "docs": str(docs / "index.html")}
    n_calls = sum(len(m.get("tool_calls", [])) for r in rows for m in r["messages"])
    assert result.metrics == {"n_episodes": N, "n_calls": n_calls, "rules_checked": 21, "rules_failed": 0,
                              "no_call_needed": 0}
    text = report.read_text()
    assert str(path) in text and "| rule | status | failing count | first failing records |" in text
    for rule in validate.RULES:
        if rule != "max_tokens" and not rule.startswith("split_"):
            assert f"| {rule} | passed | 0 |" in text
    assert "| max_tokens | skipped | - | no tokenizer at" in text
    assert sorted(p.name for p in report.parent.iterdir()) == ["validation.md", "validation_docs"]  # no temp files
    site = (docs / "index.html").read_text()
    assert "<html" in site.lower() and list(docs.glob("validations/**/*.html"))  # GX Data Docs, one page per suite run


def test_unknown_tool_names_file_line_id_and_rule(params, rows):
    i, call = _first(rows, "search_hotels")
    call["name"] = "book_taxi"
    result = next(m for m in rows[i]["messages"] if m["role"] == "tool" and m["name"] == "search_hotels")
    result["name"] = "book_taxi"  # the result of that (first) call carries its name too
    path = _write(params, rows)
    err = _fail(params)
    assert isinstance(err, DataError) and list(_rules(err)) == ["known_tool"]
    steps = [[tc["function"] for tc in m["tool_calls"]] for m in rows[i]["messages"] if m.get("tool_calls")]
    step = next(k for k, calls in enumerate(steps) if call in calls)  # a multi_turn episode may call it later
    line = f"{path}:{i + 1} (id {rows[i]['id']}): tool 'book_taxi' is not in the catalog (messages step {step})"
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


def test_calls_with_the_same_arguments_in_another_order_name_their_own_first_error(params, rows):
    first, call = _first(rows, "get_weather")
    call["arguments"].update(city=1, start_date=2)
    second = next(i for i, r in enumerate(rows) if i > first and r["messages"][1].get("tool_calls")
                  and r["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather")
    reordered = rows[second]["messages"][1]["tool_calls"][0]["function"]
    reordered["arguments"] = {"start_date": 2, "city": 1, "end_date": call["arguments"]["end_date"]}
    _write(params, rows)
    failure = _rules(_fail(params))["arguments_match_schema"]
    assert [d.split(":")[:2] for d in failure.details] == [["wrong_type", " get_weather.city"],
                                                            ["wrong_type", " get_weather.start_date"]]


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


def test_equal_catalogs_are_validated_once_and_shared(params, rows):
    """Equal raw catalogs, and raw catalogs that validate equal (a default left out), share one list."""
    from components.data.episode import parse_line

    rows = rows[:6]
    del rows[1]["tools"][0]["type"]  # "function" is the default: the same catalog once validated
    rows[2]["tools"][0]["function"]["description"] = "Another description."  # another catalog
    rows[3]["tools"][1]["function"]["name"] = ""  # a broken catalog fails its own record only
    path = _write(params, rows)
    with pytest.raises(ValidationFailed) as info:
        validate.read_records(path)
    assert list(_rules(info.value)) == ["record_schema"]
    failure = _rules(info.value)["record_schema"]
    assert failure.records == (f"{path}:4 (id {rows[3]['id']})",)
    assert failure.detail == "tools.1.function.name: String should have at least 1 character"
    del rows[3]
    episodes = [e for _, e in validate.read_records(_write(params, rows))]
    assert [e.model_dump() for e in episodes] == [parse_line(line, path, 1).model_dump()
                                                  for line in path.read_bytes().splitlines()]
    shared = episodes[0].tools
    assert [e.tools is shared for e in episodes] == [True, True, False, True, True]


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


def _answered_twice(msgs):
    k = next(i for i, m in enumerate(msgs) if m["role"] == "tool")
    msgs.insert(k, dict(msgs[k]))


def _result_dropped(msgs):
    msgs.remove(next(m for m in msgs if m["role"] == "tool"))


def _result_misnamed(msgs):
    next(m for m in msgs if m["role"] == "tool")["name"] = "search_hotels"


@pytest.mark.parametrize("rule, change, detail", [
    ("tool_result", _tool_after_user, "message 1: tool message without a preceding assistant tool call"),
    ("tool_result", _unanswered_call_id, "tool_call_id 'call_9_9' answers no call"),
    ("tool_result", _answered_twice, "tool_call_id 'call_0_0' is answered twice"),
    ("tool_result", _result_dropped, "call(s) 'call_0_0' got no tool result before this assistant message"),
    ("tool_result", _result_misnamed, "tool result named 'search_hotels' answers a call to 'get_weather'"),
    ("role_order", lambda msgs: msgs.pop(), "the last message is tool, not assistant"),
    ("role_order", lambda msgs: msgs.pop(0), "the first non-system message is assistant, not user"),
])
def test_broken_message_order_names_the_rule(params, rows, rule, change, detail):
    i = next(i for i, r in enumerate(rows)
             if r["pattern"] == "single" and r["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather")
    change(rows[i]["messages"])
    _write(params, rows)
    failure = _rules(_fail(params))[rule]
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
    assert sorted(p.name for p in params.path("reports").iterdir()) == ["validation.md", "validation_docs"]


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


def _chatml_tokenizer(folder):
    """The toy tokenizer with ChatML's special tokens and the project's template: a batch's shared system turn
    can be cut off before a special token."""
    from components.training.models import chat_template

    _save_tokenizer(folder)
    tok = validate_tokens.load_tokenizer(folder)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = chat_template()
    return tok


def _one_by_one(tok, episodes) -> list[int]:
    """Each episode's length as `apply_chat_template(..., tokenize=True)` gives it, one call per episode."""
    return [len(tok.apply_chat_template(e.message_dicts(), tools=e.tool_dicts(), tokenize=True,
                                        return_dict=True)["input_ids"]) for e in episodes]


def test_max_tokens_uses_the_base_tokenizer(params_factory, rows):
    params = params_factory(validate={"max_tokens": 100_000})  # the word-level toy tokenizer splits punctuation
    _save_tokenizer(params.path("base"))
    tok = validate_tokens.load_tokenizer(params.path("base"))
    episodes = [r for _, r in validate.read_records(_write(params, rows))]
    one_by_one = _one_by_one(tok, episodes)
    assert validate_tokens.token_counts(tok, episodes) == one_by_one  # batching changes nothing
    _write(params, rows)
    assert validate.run(params).metrics["rules_checked"] == 22
    assert "| max_tokens | passed | 0 |" in (params.path("reports") / "validation.md").read_text()
    params = params_factory(validate={"max_tokens": 20})
    failure = _rules(_fail(params))["max_tokens"]
    assert failure.count == N and "tokens > validate.max_tokens=20" in failure.detail


def test_token_counts_with_a_shared_prefix_cut_are_exact(tmp_path, rows):
    """With ChatML special tokens the shared system turn (tools) is encoded once; counts stay exact."""
    from components.data.episode import Episode

    tok = _chatml_tokenizer(tmp_path)
    episodes = [Episode.model_validate(r) for r in rows]
    for ep in episodes[1:]:
        ep.tools = episodes[0].tools  # one shared catalog, as read_records makes it
    texts = tok.apply_chat_template([e.message_dicts() for e in episodes], tools=episodes[0].tool_dicts(),
                                    tokenize=False)
    assert texts[0][:validate_tokens._shared_prefix(tok, texts)].count("Tools:") == 1  # the cut is after the tool list
    one_by_one = _one_by_one(tok, episodes)
    assert validate_tokens.token_counts(tok, episodes) == one_by_one


def test_token_counts_over_many_batches_and_catalogs_stay_in_episode_order(tmp_path, rows, monkeypatch):
    """Batches of 4 (15 batches, more than the encoder thread's queue) over two interleaved catalogs."""
    from components.data.episode import Episode

    tok = _chatml_tokenizer(tmp_path)
    episodes = [Episode.model_validate(r) for r in rows]
    catalogs = episodes[0].tools, episodes[0].tools[:3]  # the second catalog lists fewer tools
    for k, ep in enumerate(episodes):
        ep.tools = catalogs[k % 3 == 0]
    one_by_one = _one_by_one(tok, episodes)
    monkeypatch.setattr(validate_tokens, "TOKEN_BATCH", 4)
    monkeypatch.setattr(validate_tokens, "CUT_CHECKS", 2)
    assert validate_tokens.token_counts(tok, episodes) == one_by_one


def test_token_counts_raise_what_the_encoder_thread_raised(tmp_path, rows, monkeypatch):
    from components.data.episode import Episode

    _save_tokenizer(tmp_path)
    tok = validate_tokens.load_tokenizer(tmp_path)

    def broken(tokenizer, texts):
        raise ValueError("encoder failed")

    monkeypatch.setattr(validate_tokens, "_lengths", broken)
    with pytest.raises(ValueError, match="encoder failed"):
        validate_tokens.token_counts(tok, [Episode.model_validate(r) for r in rows])


def test_a_broken_tokenizer_folder_fails_as_a_bug_and_writes_nothing(params, rows):
    """Token counts come from a child process: its failure is an error naming the file, not a rule failure."""
    _write(params, rows)
    params.path("base").mkdir(parents=True)
    (params.path("base") / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"counting the tokens of .*episodes.jsonl failed \(exit 1\): .+"):
        validate.run(params)
    assert not (params.path("reports") / "validation.md").exists()


def test_crashing_expectation_is_a_bug_not_bad_data(params):
    import pandas as pd

    frames = {"episodes": pd.DataFrame({"record": ["f:1 (id a)"], "id": ["a"]})}  # no role_order_error column
    checks = {k: v for k, v in validate.expectations(params.validate_, False).items() if k == "role_order"}
    with pytest.raises(RuntimeError, match="expectation role_order .* crashed \\(a bug in tooltune, not bad data\\)"):
        validate.run_suites(frames, checks)


@pytest.mark.parametrize("arguments", ['{"city": "Paris"}', '{"city": "Par'])
def test_arguments_as_a_string_fail_arguments_json(params, rows, arguments):
    i, call = _first(rows, "get_weather")
    call["arguments"] = arguments
    m, k = next((m, k) for m, msg in enumerate(rows[i]["messages"]) for k, tc in enumerate(msg.get("tool_calls", []))
                if tc["function"] is call)
    path = _write(params, rows)
    err = _fail(params)
    failure = _rules(err)["arguments_json"]
    assert list(_rules(err)) == ["arguments_json"] and failure.records == (f"{path}:{i + 1} (id {rows[i]['id']})",)
    assert failure.detail.startswith(f"messages.{m}.tool_calls.{k}.function.arguments: Input should be a valid "
                                     "dictionary")


def _chain(rows: list[dict]) -> dict:
    return next(r for r in rows if r["pattern"] == "chain")


def _swap_turns(row: dict) -> None:
    """Make the dependent step's call first: both assistant turns (and their results) change places."""
    msgs = row["messages"]
    turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant" and m.get("tool_calls")]
    blocks = [msgs[turns[0]:turns[1]], msgs[turns[1]:-1]]
    row["messages"] = msgs[:turns[0]] + blocks[1] + blocks[0] + msgs[-1:]


@pytest.mark.parametrize("change, detail", [
    (_swap_turns, "step 1 depends on step 0, but the conversation makes its call in turn 0, not after turn 1"),
    (lambda r: r["expected"].update(depends_on=[[0, 1]]), "depends_on (0, 1) needs 0 <= earlier < later < 2"),
    (lambda r: r["expected"].update(depends_on=[[5, 0]]), "depends_on (5, 0) needs"),
])
def test_dependency_order(params, rows, change, detail):
    row = _chain(rows)
    change(row)
    _write(params, rows)
    failure = _rules(_fail(params))["dependency_order"]
    assert failure.count == 1 and row["id"] in failure.records[0] and detail in failure.detail


def _splits(params, rows: list[dict]) -> "Path":
    folder = params.path("splits")
    for k, name in enumerate(validate.SPLITS):
        write_jsonl(folder / f"{name}.jsonl", [dict(r, split=name) for r in rows[k::3]])
    return folder


def test_clean_splits_pass(params, rows):
    outcomes = validate.validate_splits(_splits(params, [r for r in rows if r["pattern"] != "irrelevance"]), params)
    assert [(o.rule, o.status) for o in outcomes] == [("split_unique_id", "passed"), ("split_leakage", "passed")]


def test_leaked_user_text_fails_split_leakage(params, rows):
    rows = [r for r in rows if r["pattern"] != "irrelevance"]
    clone = copy.deepcopy(rows[0])  # rows[0] goes to train, rows[1] to val
    clone["id"] = "near-duplicate"
    clone["messages"][0]["content"] = "  " + clone["messages"][0]["content"].upper().replace("?", " ?!") + " "
    rows[1] = clone
    folder = _splits(params, rows)
    with pytest.raises(ValidationFailed) as info:
        validate.validate_splits(folder, params)
    found = _rules(info.value)
    assert list(found) == ["split_leakage"] and found["split_leakage"].count == 2
    assert found["split_leakage"].records[0] == f"{folder / 'train.jsonl'}:1 (id {rows[0]['id']})"
    assert "is also in split(s) val" in found["split_leakage"].detail


def test_an_exempt_episode_does_not_make_its_twin_a_leak(params_factory, rows):
    """A removed-tool twin (irrelevance, exempt) in train shares its single request's text in val."""
    single = next(r for r in rows if r["pattern"] == "single")
    twin = {**copy.deepcopy(single), "id": single["id"] + "-removed", "pattern": "irrelevance",
            "expected": {"steps": []}}
    twin["messages"] = [twin["messages"][0], {"role": "assistant", "content": "I can't do that here."}]
    folder = params_factory().path("splits")
    for name, part in (("train", [twin]), ("val", [single]), ("test", [])):
        write_jsonl(folder / f"{name}.jsonl", [dict(r, split=name) for r in part])
    exempt, strict = (params_factory(validate={"leakage_exempt_patterns": p}) for p in (["irrelevance"], []))
    assert validate.validate_splits(folder, exempt)
    with pytest.raises(ValidationFailed, match="split_leakage"):
        validate.validate_splits(folder, strict)


def test_exempt_patterns_may_repeat_and_ids_may_not(params_factory, rows):
    small_talk = [r for r in rows if r["pattern"] == "irrelevance"][:3]
    params = params_factory(validate={"leakage_exempt_patterns": ["irrelevance"]})
    for k, r in enumerate(small_talk):
        r["messages"][0]["content"] = "Hi there!"
    assert validate.validate_splits(_splits(params, small_talk), params)
    params = params_factory(validate={"leakage_exempt_patterns": []})
    small_talk[1]["id"] = small_talk[0]["id"]
    with pytest.raises(ValidationFailed) as info:
        validate.validate_splits(_splits(params, small_talk), params)
    assert list(_rules(info.value)) == ["split_unique_id", "split_leakage"]
