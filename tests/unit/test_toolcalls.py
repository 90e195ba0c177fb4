"""The shared parser/scorer: parsing verdicts and error classes."""

from components import toolcalls
from components.domains import travel

TOOLS = toolcalls.tool_index(travel.catalog())
WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", "end_date": "2026-05-03"}}
HOTELS = {"name": "search_hotels", "arguments": {"city": "Paris", "check_in": "2026-05-01", "check_out": "2026-05-03"}}


def test_parse_calls_and_text():
    text = ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", '
            '"end_date": "2026-05-03"}}</tool_call>\n<tool_call>{"name": "search_hotels", "arguments": '
            '"{\\"city\\": \\"Paris\\"}"}</tool_call><|im_end|>')
    parsed = toolcalls.parse_output(text)
    assert parsed.error is None
    assert parsed.calls[0] == WEATHER
    assert parsed.calls[1] == {"name": "search_hotels", "arguments": {"city": "Paris"}}  # JSON-string args decoded


def test_parse_plain_answer():
    parsed = toolcalls.parse_output("Hello there!<|im_end|>")
    assert parsed.calls == [] and parsed.content == "Hello there!" and not parsed.unparsable


def test_unparsable_verdicts_never_raise():
    assert toolcalls.parse_output("<tool_call>{\"name\": \"x\"").error == "no end-of-turn token (output truncated)"
    assert "unbalanced" in toolcalls.parse_output("<tool_call>{}<|im_end|>").error
    assert "not valid JSON" in toolcalls.parse_output("<tool_call>{oops}</tool_call><|im_end|>").error
    assert "name" in toolcalls.parse_output("<tool_call>[1, 2]</tool_call><|im_end|>").error
    assert "not a JSON object" in toolcalls.parse_output('<tool_call>{"name": "a", "arguments": 3}</tool_call><|im_end|>').error


def test_parallel_calls_match_in_any_order():
    score = toolcalls.score_step([HOTELS, WEATHER], [WEATHER, HOTELS], TOOLS)
    assert score.exact and score.names_ok and score.errors == []


def test_error_classes_for_single_steps():
    def errors(pred, gold=(WEATHER,)):
        return toolcalls.score_step(list(pred), list(gold), TOOLS).errors

    assert errors([]) == ["no_call"]
    assert errors([WEATHER], gold=[]) == ["call_when_irrelevant"]
    assert "hallucinated_tool" in errors([{"name": "book_taxi", "arguments": {}}])
    assert errors([dict(HOTELS)]) == ["wrong_tool"]
    missing = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01"}}
    assert "missing_required_argument" in errors([missing])
    extra = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "units": "C"}}
    assert "unknown_argument" in errors([extra])
    typed = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": 3}}
    assert "wrong_type" in errors([typed])
    value = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": "Lyon"}}
    assert errors([value]) == ["wrong_value"]
    assert "wrong_call_count" in errors([WEATHER, WEATHER])


def test_string_values_compare_case_insensitively():
    pred = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": " paris "}}
    assert toolcalls.score_step([pred], [WEATHER], TOOLS).exact


def test_episode_level_classes():
    plan = {"name": "plan_itinerary", "arguments": {"city": "Paris", "flight_id": "TT101", "weather": "rain"}}
    gold = [[WEATHER], [plan]]
    assert toolcalls.score_episode([[WEATHER], [plan]], gold, TOOLS).exact
    assert "premature_stop" in toolcalls.score_episode([[WEATHER]], gold, TOOLS).errors
    assert "wrong_order" in toolcalls.score_episode([[plan], [WEATHER]], gold, TOOLS).errors
    assert "redundant_call" in toolcalls.score_episode([[WEATHER], [plan], [WEATHER]], gold, TOOLS).errors
    assert toolcalls.score_episode([], gold, TOOLS, unparsable=True).errors == ["unparsable"]
    assert toolcalls.score_episode([], [], TOOLS).exact


def test_schema_errors_enum_and_pattern():
    bad = {"name": "plan_itinerary", "arguments": {"city": "Paris", "flight_id": "TT1", "weather": "foggy"}}
    assert [k for k, _ in toolcalls.schema_errors(bad, TOOLS)] == ["wrong_value"]
    date = {"name": "search_flights", "arguments": {"origin": "Paris", "destination": "Rome", "date": "May 3"}}
    assert [k for k, _ in toolcalls.schema_errors(date, TOOLS)] == ["wrong_value"]
