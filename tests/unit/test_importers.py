"""Importers: each outside format's fixture becomes valid episodes; bad records are named; CLI and params wiring."""

from __future__ import annotations

import json
import typing
from collections import Counter
from pathlib import Path

import pytest

from components import ingest
from components.config import ConfigError, Import
from components.data.episode import DataError, Episode, read_episodes, write_episodes
from components.data.importers import SOURCES, import_file
from components.data.importers.xlam import TypeStringError, parameter_schema
from components.toolcalls import schema_errors, steps_of_messages, tool_index
from components.validate import episode_problems
from flows import cli
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "importers"
FILES = {"openai": "openai.jsonl", "sharegpt": "sharegpt.json", "hermes": "hermes.jsonl", "xlam": "xlam.json",
         "glaive": "glaive.jsonl"}
PATTERNS = {  # episode id -> pattern the importer must infer
    "openai": {"oa-weather-001": "single", "oa-weather-002": "parallel", "oa-travel-003": "chain",
               "openai-openai-4": "multi_turn", "oa-smalltalk-005": "irrelevance", "oa-orders-006": "recovery"},
    "sharegpt": {"sharegpt-sharegpt-1": "single", "sg-stocks-2": "parallel", "sg-movies-3": "chain",
                 "sg-chat-4": "irrelevance", "sg-multi-5": "multi_turn"},
    "hermes": {"0a4fd9e2-8d5c-4b0e-9a57-3c7f6f1d2b01": "single", "6f0e2c55-1b7a-4f3e-8e7e-2d4b9a0c6e12": "parallel",
               "c3d1e8b0-5f2a-4c9d-b6e4-7a8f0e1d3c23": "multi_turn",
               "9b8a7c6d-0e1f-4a2b-8c3d-4e5f6a7b8c94": "irrelevance"},
    "xlam": {"0": "parallel", "1": "single", "2": "single", "3": "single", "4": "single", "5": "irrelevance"},
    "glaive": {"glaive-glaive-1": "single", "gl-chat-2": "irrelevance", "gl-multi-3": "multi_turn",
               "gl-nearmiss-4": "irrelevance"},
}
def imported(source: str, domain: str = "demo") -> dict[str, Episode]:
    return {e.id: e for e in import_file(source, FIXTURES / FILES[source], domain)}


def assert_valid(episode: Episode) -> None:
    """What the validate stage checks per record: schema, role order, tool results, every call in the catalog and its schema."""
    Episode.model_validate(episode.model_dump(mode="json"))
    assert episode_problems(episode) == {}
    index = tool_index(episode.tool_dicts())
    made = steps_of_messages(episode.message_dicts())
    expected = [[c.model_dump(exclude_none=True) for c in step] for step in episode.expected.steps]
    assert made == expected
    for call in (c for step in expected for c in step):
        assert schema_errors(call, index) == [], (episode.id, call)


# ------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("source", sorted(FILES))
def test_fixture_round_trips_into_valid_episodes(source, tmp_path):
    episodes = imported(source)
    assert {i: e.pattern for i, e in episodes.items()} == PATTERNS[source]
    for episode in episodes.values():
        assert (episode.source, episode.domain, episode.split) == (source, "demo", None)
        assert_valid(episode)
    out = tmp_path / "episodes.jsonl"
    write_episodes(out, episodes.values())
    assert read_episodes(out) == list(episodes.values())


def test_glaive_system_prompt_and_quoted_arguments():
    episodes = imported("glaive")
    tip = episodes["glaive-glaive-1"]
    assert [t.function.name for t in tip.tools] == ["calculate_tip", "define_word"]  # both schemas of the system turn
    assert tip.tools[0].function.parameters["required"] == ["bill_amount", "tip_percentage"]
    assert tip.expected.steps[0][0].arguments == {"bill_amount": 48, "tip_percentage": 15}  # '{...}' in quotes
    assert [m["role"] for m in tip.message_dicts()] == ["user", "assistant", "tool", "assistant"]  # no system turn
    assert tip.message_dicts()[-1]["content"] == "A 15 percent tip on 48 dollars is 7.20 dollars."
    flight = episodes["gl-multi-3"].message_dicts()
    assert flight[3]["content"] == "Let me look that up." and flight[3]["tool_calls"][0]["function"]["arguments"][
        "date"] == "2026-05-12"  # text before the call is its content; plain JSON arguments read too
    assert episodes["gl-chat-2"].tools == []


def test_openai_arguments_decoded_and_results_paired_by_id():
    episodes = imported("openai")
    assert episodes["oa-weather-001"].expected.steps[0][0].arguments == {"location": "Lisbon, Portugal",
                                                                         "unit": "celsius"}
    parallel = episodes["oa-weather-002"].message_dicts()
    results = [m for m in parallel if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["call_a2", "call_a1"]  # answered out of order, paired by id
    assert "rain" in results[1]["content"] and {m["name"] for m in results} == {"get_current_weather"}
    assert episodes["openai-openai-4"].messages[0].content == "You are a support agent for an online shop."


def test_sharegpt_string_arguments_and_split_observation():
    episodes = imported("sharegpt")
    assert episodes["sg-movies-3"].expected.steps[0][0].arguments == {"keyword": "Inception", "year": 2010}
    tools = [m for m in episodes["sg-stocks-2"].message_dicts() if m["role"] == "tool"]
    assert [json.loads(m["content"])["symbol"] for m in tools] == ["AAPL", "MSFT"]
    assert [m["tool_call_id"] for m in tools] == ["call_0_0", "call_0_1"]


def test_hermes_literals_become_json_and_tools_prompt_is_dropped():
    episodes = imported("hermes")
    parallel = episodes["6f0e2c55-1b7a-4f3e-8e7e-2d4b9a0c6e12"]
    assert [c.arguments for c in parallel.expected.steps[0]] == [{"room": "kitchen", "on": False},
                                                                 {"room": "living room", "on": True, "brightness": 40}]
    result = next(m for m in parallel.messages if m.role == "tool")
    assert json.loads(result.content)["content"] == {"room": "kitchen", "on": False}
    assert all(m.role != "system" for e in episodes.values() for m in e.messages)
    assert [t.function.name for t in episodes["9b8a7c6d-0e1f-4a2b-8c3d-4e5f6a7b8c94"].tools] == [
        "get_camera_live_feed", "set_light_state"]
    one_per_line = episodes["c3d1e8b0-5f2a-4c9d-b6e4-7a8f0e1d3c23"]
    assert [t.function.name for t in one_per_line.tools] == ["track_shipment"]


def test_xlam_parameters_become_json_schema():
    episodes = imported("xlam")
    params = episodes["3"].tool_dicts()[0]["function"]["parameters"]
    assert params["required"] == ["present_value", "annual_interest_rate", "years"]
    assert params["properties"]["compounding"] == {"type": "number", "description": "Compounding periods per year.",
                                                   "default": 1.0}
    dice = episodes["2"].tool_dicts()[0]["function"]["parameters"]
    assert dice["required"] == [] and dice["properties"]["target_sum"]["default"] == 6
    assert episodes["5"].messages[-1].model_dump(exclude_none=True) == {"role": "assistant", "content": ""}


XLAM_TYPES = [  # type string, JSON Schema, required
    ("str", {"type": "string"}, True),
    ("int", {"type": "integer"}, True),
    ("float", {"type": "number"}, True),
    ("bool", {"type": "boolean"}, True),
    ("int, optional", {"type": "integer"}, False),
    ("str, optional", {"type": "string"}, False),
    ("float, default=1.0", {"type": "number", "default": 1.0}, False),
    ("str, default='en'", {"type": "string", "default": "en"}, False),
    ("List", {"type": "array"}, True),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}, True),
    ("List[str], optional", {"type": "array", "items": {"type": "string"}}, False),
    ("List[List[float]]", {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}, True),
    ("Tuple[int, int]", {"type": "array", "prefixItems": [{"type": "integer"}] * 2, "minItems": 2, "maxItems": 2},
     True),
    ("set", {"type": "array"}, True),
    ("Dict", {"type": "object"}, True),
    ("Dict[str, Any]", {"type": "object"}, True),
    ("Dict[str, int], optional", {"type": "object", "additionalProperties": {"type": "integer"}}, False),
    ("Optional[str]", {"type": "string"}, False),
    ("Union[int, float]", {"anyOf": [{"type": "integer"}, {"type": "number"}]}, True),
    ("Any", {}, True),
]


@pytest.mark.parametrize(("text", "schema", "required"), XLAM_TYPES)
def test_xlam_type_mapping(text, schema, required):
    assert parameter_schema({"type": text}) == (schema, required)


def test_xlam_default_field_makes_a_parameter_optional():
    assert parameter_schema({"type": "str", "description": "Kind.", "default": "game"}) == (
        {"type": "string", "description": "Kind.", "default": "game"}, False)


@pytest.mark.parametrize("text", ["Callable", "List[int", "int, mandatory", "Dict[str, int]]", "Frobnicator[int]"])
def test_xlam_unknown_types_are_refused(text):
    with pytest.raises(TypeStringError):
        parameter_schema({"type": text})


def test_mapped_types_are_json_schemas():
    import jsonschema

    for text, _, _ in XLAM_TYPES:
        jsonschema.Draft202012Validator.check_schema(parameter_schema({"type": text})[0])


# ---------------------------------------------------------------------------------- bad records


def _first(source: str) -> dict:
    path = FIXTURES / FILES[source]
    text = path.read_text(encoding="utf-8")
    return json.loads(text)[0] if path.suffix == ".json" else json.loads(text.splitlines()[0])


def _openai(mutate):
    rec = _first("openai")
    mutate(rec)
    return rec


def _conv(source: str, k: int, value: str | None = None, drop_from: int | None = None) -> dict:
    rec = _first(source)
    if value is not None:
        rec["conversations"][k]["value"] = value
    if drop_from is not None:
        del rec["conversations"][drop_from:]
    return rec


def _xlam(**fields) -> dict:
    return {**_first("xlam"), **fields}


def _glaive(old: str, new: str) -> dict:
    rec = _first("glaive")
    return rec | {"chat": rec["chat"].replace(old, new)}


BAD = [  # source, bad record, rule, a piece of the detail
    ("openai", _openai(lambda r: r["messages"][2]["tool_calls"][0]["function"].update(arguments='{"location": "Lis')),
     "arguments_json", "arguments is not JSON"),
    ("openai", _openai(lambda r: r["messages"][2]["tool_calls"][0]["function"].update(name="get_forecast")),
     "known_tool", "'get_forecast' is not in the catalog"),
    ("openai", _openai(lambda r: r["messages"][3].update(tool_call_id="call_zzz")), "role_order", "call_zzz"),
    ("openai", _openai(lambda r: r["messages"][3].update(role="function")), "role", "unknown role 'function'"),
    ("openai", _openai(lambda r: r["tools"][0]["function"]["parameters"].update(type="dict")), "tool_schema",
     "not a JSON Schema"),
    ("sharegpt", _conv("sharegpt", 1, '{"name": "convert_currency", "arguments": {"amount": 5'), "function_call_json",
     "function_call is not JSON"),
    ("sharegpt", _conv("sharegpt", 1, json.dumps({"name": "convert_currency", "arguments": {"amount": "500"}})),
     "arguments_match_schema", "missing 'from_currency'"),
    ("sharegpt", _conv("sharegpt", 0, drop_from=3), "role_order", "last message is tool"),
    ("sharegpt", {**_first("sharegpt"), "tools": "[{'name': 'convert_currency'}]"}, "json_field",
     "'tools' is not JSON"),
    ("hermes", _conv("hermes", 2, "<tool_call>\n{'arguments': {'camera_id': 'cam_front_01'}, 'name': \n</tool_call>"),
     "tool_call_json", "neither JSON nor a Python literal"),
    ("hermes", _conv("hermes", 2, "<tool_call>\n{'arguments': {'camera_id': 'c1'}, 'name': 'get_camera_live_feed'}"),
     "unbalanced_tags", "1 <tool_call> but 0 </tool_call>"),
    ("hermes", _conv("hermes", 3, "<tool_response>{}</tool_response><tool_response>{}</tool_response>"),
     "tool_response", "2 tool result(s) for 1 pending call(s)"),
    ("hermes", _conv("hermes", 2, "<tool_call>{'arguments': {'stream_quality': '8k'}, 'name': 'get_camera_live_feed'}"
                                  "</tool_call>"), "arguments_match_schema", "missing 'camera_id'"),
    ("xlam", _xlam(tools=json.dumps([{"name": "live_giveaways_by_type",
                                      "parameters": {"type": {"type": "Callable"}}}])),
     "xlam_type", "unknown type 'Callable'"),
    ("xlam", _xlam(answers="[{'name': 'live_giveaways_by_type'}]"), "json_field", "'answers' is not JSON"),
    ("xlam", {k: v for k, v in _first("xlam").items() if k != "query"}, "field", "missing field 'query'"),
    ("glaive", _glaive("USER: What", "Hi.\nUSER: What"), "glaive_turn", "chat must start with a USER:"),
    ("glaive", _glaive("'} <|endoftext|>", "} <|endoftext|>"), "tool_call_json", "neither JSON nor a Python literal"),
    ("glaive", _glaive('"tip_percentage": 15', '"tip_percent": 15'), "arguments_match_schema", "tip_percentage"),
    ("glaive", _glaive("ASSISTANT: <functioncall>", "ASSISTANT: Let me see."), "role_order", "answers no pending"),
    ("glaive", {**_first("glaive"), "system": "SYSTEM: Use these -\n{\"name\": \"calculate_tip\","}, "tool_schema",
     "system is not JSON"),
]


@pytest.mark.parametrize(("source", "record", "rule", "detail"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_record_is_named_by_file_line_and_rule(tmp_path, source, record, rule, detail):
    path = tmp_path / f"{source}.jsonl"
    good = {**_first(source), "id": "good-1"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        import_file(source, path, "demo")
    message = str(err.value)
    assert message.startswith(f"{path}:2") and f"rule '{rule}'" in message and detail in message, message


def test_file_rules(tmp_path):
    bad_json, empty, dupes = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.json"
    bad_json.write_text(json.dumps(_first("openai")) + "\n{not json\n")
    empty.write_text("\n")
    dupes.write_text(json.dumps([_first("xlam"), _first("xlam")]))
    for path, needle in [(bad_json, f"{bad_json}:2: rule 'json'"), (empty, "rule 'non_empty'"),
                         (dupes, f"{dupes} record 2 (id 0): rule 'unique_id'"),
                         (tmp_path / "absent.jsonl", "file not found")]:
        with pytest.raises(DataError) as err:
            import_file("xlam" if path == dupes else "openai", path, "demo")
        assert needle in str(err.value)


def test_unknown_source_and_stray_answers_are_refused():
    with pytest.raises(DataError, match="unknown import source 'toolbench'"):
        import_file("toolbench", FIXTURES / "openai.jsonl", "demo")
    with pytest.raises(DataError, match="bfcl source only, not openai"):
        import_file("openai", FIXTURES / "openai.jsonl", "demo", answers=FIXTURES / "bfcl_answers.jsonl")


def test_params_sources_are_the_registry():
    assert set(typing.get_args(Import.model_fields["source"].annotation)) == set(SOURCES)


def test_bfcl_entry_tags_the_domain():
    episodes = import_file("bfcl", FIXTURES / "bfcl_questions.jsonl", "math",
                           answers=FIXTURES / "bfcl_answers.jsonl")
    assert [e.id for e in episodes] == ["simple_python_0", "simple_python_2"]
    assert {(e.source, e.domain) for e in episodes} == {("bfcl:simple_python", "math")}  # bfcl tags its category
    for episode in episodes:
        index = tool_index(episode.tool_dicts())
        calls = [c.model_dump(exclude_none=True) for step in episode.expected.steps for c in step]
        assert calls and all(schema_errors(c, index) == [] for c in calls)


# ---------------------------------------------------------------------------------- CLI, params


@pytest.fixture
def params_path(params_factory, tmp_path) -> Path:
    params_factory(ingest={"n_episodes": 40})
    return tmp_path / "params.yaml"


def test_cli_ingest_writes_the_episodes(tmp_path, params_path, capsys):
    out = tmp_path / "out" / "episodes.jsonl"
    argv = ["ingest", "--source", "hermes", "--path", str(FIXTURES / "hermes.jsonl"), "--out", str(out),
            "--domain", "home", "--params", str(params_path)]
    assert cli.main(argv) == 0
    episodes = read_episodes(out)
    assert len(episodes) == 4 and {e.domain for e in episodes} == {"home"}
    assert capsys.readouterr().out.startswith(f"ingest: 4 episodes from hermes -> {out}")


def test_cli_synthetic_uses_the_stage_generator(tmp_path, params_path):
    out = tmp_path / "synthetic.jsonl"
    assert cli.main(["ingest", "--source", "synthetic", "--out", str(out), "--params", str(params_path)]) == 0
    episodes = read_episodes(out)
    assert len(episodes) == 40 and {e.source for e in episodes} == {"synthetic"}


@pytest.mark.parametrize(("argv", "needle"), [
    (["--source", "openai", "--path", "BAD"], "bad.jsonl:1 (id oa-weather-001): rule 'arguments_json'"),
    (["--source", "openai"], "source openai needs an input path"),
    (["--source", "synthetic", "--path", "x.jsonl"], "the synthetic source reads no input file"),
])
def test_cli_failed_ingest_leaves_the_old_file(tmp_path, params_path, capsys, argv, needle):
    bad = tmp_path / "bad.jsonl"
    rec = _first("openai")
    rec["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{oops"
    bad.write_text(json.dumps(rec) + "\n")
    out = tmp_path / "episodes.jsonl"
    out.write_bytes(b'{"previous": "good file"}\n')
    argv = [str(bad) if a == "BAD" else a for a in argv]
    assert cli.main(["ingest", *argv, "--out", str(out), "--params", str(params_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err
    assert out.read_bytes() == b'{"previous": "good file"}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".episodes")] == []


def test_params_mix_synthetic_and_imported(params_factory, tmp_path):
    imports = tmp_path / "data" / "imports"
    imports.mkdir(parents=True)
    (imports / "shop.jsonl").write_bytes((FIXTURES / "openai.jsonl").read_bytes())
    params = params_factory(ingest={"n_episodes": 40, "imports": [
        {"source": "openai", "path": "data/imports/shop.jsonl", "domain": "shop"},  # under project.workdir
        {"source": "xlam", "path": str(FIXTURES / "xlam.json"), "domain": "apis"}]})
    result = ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    assert Counter((e.source, e.domain) for e in episodes) == {("synthetic", "travel"): 40, ("openai", "shop"): 6,
                                                               ("xlam", "apis"): 6}
    assert result.metrics["source_openai"] == 6 and result.metrics["episodes"] == 52  # no pool for built-in travel
    imported = Counter(e.pattern for e in episodes if e.source != "synthetic")
    assert imported["recovery"] == 1
    assert result.metrics["pattern_recovery"] == imported["recovery"] + sum(
        e.pattern == "recovery" for e in episodes if e.source == "synthetic")


def test_params_import_entries_are_checked(params_factory):
    with pytest.raises(ConfigError, match="answers"):
        params_factory(ingest={"imports": [{"source": "openai", "path": "x.jsonl", "domain": "d", "answers": "a"}]})
    with pytest.raises(ConfigError, match="ingest.imports.0.source"):
        params_factory(ingest={"imports": [{"source": "toolbench", "path": "x.jsonl", "domain": "d"}]})
