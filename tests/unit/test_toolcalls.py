"""The shared parser/scorer: parsing verdicts and error classes."""

import json

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


# ------------------------------------------------------------------------------------------- other syntaxes

BFCL_STYLE = [{"name": "math.factorial", "arguments": {"number": 5}},
              {"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}]


def test_hermes_text_without_end_token():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert toolcalls.parse_any(text).calls == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert toolcalls.parse_output(text).unparsable  # the project template still demands the end token


def test_openai_message_dict():
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
    parsed = toolcalls.parse_any(message)
    assert parsed.calls == [{"name": "get_weather", "arguments": {"city": "Paris"}}] and not parsed.unparsable
    broken = {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather", "arguments": "{oops"}}]}
    assert toolcalls.parse_any(broken).unparsable


def test_python_call_syntax_keeps_dotted_names_and_literals():
    text = "[math.factorial(number=5), spotify.play(artist='Taylor Swift', duration=20)]"
    assert toolcalls.parse_any(text).calls == BFCL_STYLE
    assert toolcalls.parse_python_calls("math.factorial(number=5)").calls == BFCL_STYLE[:1]  # brackets optional
    values = toolcalls.parse_any("[f(a=-2.5, b=(1, 2), c={'k': [True, None]}, d=unquoted)]").calls[0]["arguments"]
    assert values == {"a": -2.5, "b": [1, 2], "c": {"k": [True, None]}, "d": "unquoted"}  # bare name = BFCL "variable"
    assert toolcalls.parse_any("```python\n[f(a=1)]\n```").calls == [{"name": "f", "arguments": {"a": 1}}]


def test_plain_json_forms():
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert toolcalls.parse_any('{"name": "get_weather", "arguments": {"city": "Paris"}}').calls == [call]
    assert toolcalls.parse_any('[{"name": "get_weather", "parameters": {"city": "Paris"}}]').calls == [call]
    assert toolcalls.parse_any('[{"get_weather": {"city": "Paris"}}]').calls == [call]  # BFCL's decoded form
    assert toolcalls.parse_any([{"get_weather": {"city": "Paris"}}]).calls == [call]
    message = json.dumps({"role": "assistant", "tool_calls": [{"function": call}]})
    assert toolcalls.parse_any(message).calls == [call]
    assert toolcalls.parse_any("[]").calls == [] and not toolcalls.parse_any("[]").unparsable


def test_prose_is_an_answer_and_broken_calls_are_unparsable():
    answer = toolcalls.parse_any("I cannot help with that (no suitable function).")
    assert answer.calls == [] and not answer.unparsable
    for broken in ("[f(a=1), g(b=", 'Sure: {"name": "f", "arguments": {}}', "Here you go: [f(a=1)]",
                   "[f(1, 2)]", "[f(a=1 + 2)]", "[f(a=g(b=1))]", "{oops}", '[{"f": 3}]', "[f(**kw)]",
                   "<tool_call>{\"name\": \"f\"", "[f(a=" + "[" * 500 + "]" * 500 + ")]", "[" * 10**5 + "]" * 10**5,
                   "[" + "9" * 5000 + "]", '<tool_call>{"name": "f", "arguments": "[' + "9" * 5000 + ']"}</tool_call>'):
        parsed = toolcalls.parse_any(broken)
        assert parsed.unparsable and parsed.calls == [], broken


def test_malicious_python_is_unparsable_and_never_executed(tmp_path, monkeypatch):
    import os

    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd))
    target = tmp_path / "pwned"
    for payload in ("[__import__('os').system('x')]", f"[f(a=__import__('pathlib').Path('{target}').touch())]",
                    "[(lambda: __import__('os').system('x'))()]", "[f(a=open('/etc/passwd').read())]",
                    "[os.system(command='x')][0]"):
        assert toolcalls.parse_any(payload).unparsable, payload
    # a dotted call with keyword literals is *parsed* as a call named `os.system`, never run
    parsed = toolcalls.parse_any("[os.system(command='x')]")
    assert parsed.calls == [{"name": "os.system", "arguments": {"command": "x"}}]
    assert ran == [] and not target.exists()


def test_parsers_never_raise_on_garbage():
    import random

    rng = random.Random(0)
    alphabet = '[](){}<>"\',.=:_ abcxyz0129\\\n' + "<tool_call></tool_call><|im_end|>"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        toolcalls.parse_any(text)
    for obj in (None, 3, {"x": 1}, [1, 2], [{"f": None}], {"role": "assistant", "tool_calls": [{}]}):
        assert toolcalls.parse_any(obj).unparsable


# ------------------------------------------------------------------------------ trajectories and `accept`


def test_missing_step_step_limit_and_final_state():
    gold = [[WEATHER], [HOTELS], [{"name": "plan_itinerary", "arguments": {"city": "Paris"}}]]
    plan = gold[2]
    assert toolcalls.score_episode([[WEATHER], plan], gold, TOOLS).errors == ["missing_step"]
    capped = toolcalls.score_episode([[WEATHER], [WEATHER], [WEATHER]], gold, TOOLS, hit_step_limit=True)
    assert "step_limit" in capped.errors and "premature_stop" not in capped.errors
    assert "premature_stop" in toolcalls.score_episode([[WEATHER]], gold, TOOLS).errors
    done = toolcalls.score_episode([[WEATHER], [HOTELS], plan], gold, TOOLS, final_state_ok=False)
    assert done.errors == ["wrong_final_state"] and done.steps_correct == 3
    assert toolcalls.score_episode([[WEATHER], [HOTELS], plan], gold, TOOLS, final_state_ok=True).exact


def test_redundant_call_within_a_step():
    assert toolcalls.score_step([WEATHER, WEATHER], [WEATHER], TOOLS).errors == ["redundant_call", "wrong_call_count"]


def test_expected_call_with_acceptable_values():
    from components.data.episode import Call

    accept = {"city": ["Paris", "paris, fr"], "start_date": ["2026-05-01"], "end_date": ["2026-05-03", ""]}
    gold = [[Call(name="get_weather", arguments=WEATHER["arguments"], accept=accept).model_dump()]]
    short = {"name": "get_weather", "arguments": {"city": "Paris, FR", "start_date": "2026-05-01"}}
    assert toolcalls.score_episode([[short]], gold, TOOLS).errors == ["missing_required_argument"]  # the schema's
    ok = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": "PARIS FR"}}  # BFCL string rules
    assert toolcalls.score_episode([[ok]], gold, TOOLS).exact
    typed = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": 7}}
    assert toolcalls.score_episode([[typed]], gold, TOOLS).errors == ["wrong_type"]
    assert Call(name="f", arguments={}).model_dump(exclude_none=True) == {"name": "f", "arguments": {}}


def test_states_outputs_reads_answers_as_tau_bench_does():
    answers = ["Booked Ana on TT716, confirmation C56082.", "Total: 1,234.5 USD"]
    assert toolcalls.states_outputs(answers, ["c56082", "tt716", "1234.5"])  # case and commas do not matter
    assert not toolcalls.states_outputs(answers, ["c56082", "tt717"])
    assert toolcalls.states_outputs([], [])
