"""Model families with their own tool syntax: output parsed through the tokenizer's response template
(components/toolcalls/response.py), with the scorer's error classes unchanged; and the `base` stage's choice of
template (components/base.py): keep the model's own, give it the project's ChatML one, or refuse in one line.

Tokenizers and tiny models come from tests/families.py (offline, the families' real chat templates)."""

from __future__ import annotations

import pytest

from components import base, toolcalls
from components.toolcalls import response
from components.training import models
from tests import families

WEATHER = [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
           {"name": "get_weather", "arguments": {"city": "Rome", "days": 1}}]
INDEX = toolcalls.tool_index(families.TOOLS)


def _native(family: str):
    """The family's tokenizer with the response template TRL knows for it (what `base` keeps for a native model)."""
    from trl.chat_template_utils import add_response_schema

    return add_response_schema(families.tokenizer(family))


def _turn(tok, calls, content: str = "") -> str:
    """The assistant turn the family's template renders for `calls` (what a model trained on it generates)."""
    prompt = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    turn = {"role": "assistant", "content": content,
            "tool_calls": [{"type": "function", "function": c} for c in calls]}
    head = tok.apply_chat_template(prompt, tools=families.TOOLS, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(prompt + [turn], tools=families.TOOLS, tokenize=False)
    assert full.startswith(head)
    return full[len(head):]


def _errors(parsed: toolcalls.Parsed, gold=WEATHER) -> list[str]:
    return toolcalls.score_episode([parsed.calls] if parsed.calls else [], [gold], INDEX, parsed.unparsable).errors


def test_project_response_template_copy_is_the_same():
    assert response.CHATML_TEMPLATE == models.RESPONSE_TEMPLATE


def test_xml_calls_parse_with_the_tokenizer_and_types_from_the_tools():
    tok = _native("qwen_xml")
    text = _turn(tok, WEATHER)
    assert "<function=get_weather>" in text and '"city"' not in text  # the model's own syntax, not JSON
    assert toolcalls.parse_output(text).unparsable  # the ChatML parser alone cannot read it (the old behaviour)
    parsed = toolcalls.parse_output(text, tok=tok, tools=families.TOOLS)
    assert parsed.error is None and parsed.calls == WEATHER  # "3" in the XML became 3 by the tool's schema
    assert _errors(parsed) == []
    answer = toolcalls.parse_output("It is sunny.<|im_end|>\n", tok=tok, tools=families.TOOLS)
    assert (answer.content, answer.calls, answer.error) == ("It is sunny.", [], None)


def test_xml_error_classes_are_the_scorers():
    tok = _native("qwen_xml")

    def errors(calls) -> list[str]:
        return _errors(toolcalls.parse_output(_turn(tok, calls), tok=tok, tools=families.TOOLS), WEATHER[:1])

    assert "hallucinated_tool" in errors([{"name": "get_forecast", "arguments": {"city": "Paris", "days": 3}}])
    assert "unknown_argument" in errors([{"name": "get_weather", "arguments": {"city": "Paris", "days": 3,
                                                                              "units": "C"}}])
    assert "wrong_type" in errors([{"name": "get_weather", "arguments": {"city": "Paris", "days": "three"}}])
    assert "wrong_value" in errors([{"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}])


def test_broken_xml_is_unparsable_not_merged_or_text():
    tok = _native("qwen_xml")
    text = _turn(tok, WEATHER)
    unclosed = text.replace("</tool_call>", "", 1)  # transformers' parser would silently drop the Paris call
    assert "2 tool-call opening(s)" in toolcalls.parse_output(unclosed, tok=tok, tools=families.TOOLS).error
    garbage = toolcalls.parse_output("<tool_call>weather please</tool_call><|im_end|>", tok=tok)
    assert garbage.unparsable and _errors(garbage) == ["unparsable"]
    truncated = toolcalls.parse_output(text.split("<|im_end|>")[0], tok=tok)
    assert truncated.error == "no end-of-turn token (output truncated)"
    assert not toolcalls.parse_output(text.split("<|im_end|>")[0], require_end=False, tok=tok).unparsable


def test_gptoss_channel_calls_parse_and_keep_json_types():
    tok = _native("gptoss")
    text = _turn(tok, WEATHER[:1])
    assert "to=functions.get_weather" in text and text.endswith("<|call|>")
    parsed = toolcalls.parse_output(text, require_end=False, tok=tok, tools=families.TOOLS)
    assert parsed.error is None and parsed.calls == WEATHER[:1]
    as_string = _turn(tok, [{"name": "get_weather", "arguments": {"city": "Paris", "days": "3"}}])
    assert "wrong_type" in _errors(toolcalls.parse_output(as_string, require_end=False, tok=tok,
                                                          tools=families.TOOLS), WEATHER[:1])


def test_project_chatml_tokenizer_keeps_the_chatml_parser():
    tok = families.tokenizer("gemma")
    models.apply_tool_template(families.model("gemma", tok), tok)
    for text in ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>',
                 "<tool_call>{oops}</tool_call><|im_end|>", "<tool_call>{}<|im_end|>"):
        assert toolcalls.parse_output(text, tok=tok) == toolcalls.parse_output(text)


@pytest.mark.parametrize(("family", "template", "reason"), [
    ("llama", "tooltune-chatml", "no {% generation %} markers"),  # TRL has no training Llama 3.2 template
    ("gemma", "tooltune-chatml", "does not render tool calls"),  # Gemma 3 rejects tool roles
    ("qwen_xml", "native", None),
])
def test_base_keeps_or_replaces_the_template(family, template, reason):
    tok = families.tokenizer(family)
    model = families.model(family, tok)
    info = base.prepare_template(model, tok, f"/models/{family}")
    assert info["template"] == template
    assert (tok.response_template == models.RESPONSE_TEMPLATE) == (template == "tooltune-chatml")
    assert (reason is None and "native_refused" not in info) or reason in info["native_refused"]
    assert base.template_problem(tok) is None
    assert model.get_input_embeddings().num_embeddings >= len(tok)


def test_gptoss_own_template_is_set_aside_because_tool_calls_end_without_eos():
    """gpt-oss ends a tool-call turn with `<|call|>`, not its EOS `<|return|>`: the evaluation's decoder would not
    stop there, so `base` gives it the ChatML template rather than a native template that never ends a call."""
    tok = families.tokenizer("gptoss")
    assert "does not end with the end-of-turn token '<|return|>'" in base.native_problem(tok)


def test_base_refuses_in_one_line_naming_the_model_and_why():
    tok = families.tokenizer("uncased")
    with pytest.raises(base.UnsupportedBaseModel) as err:
        base.prepare_template(families.model("uncased", tok), tok, "/models/uncased")
    message = str(err.value)
    assert "\n" not in message and message.startswith("base.model '/models/uncased' cannot be trained")
    assert "no chat template" in message and "does not reproduce tool-call text" in message


def test_constrained_decoding_refuses_a_model_with_its_own_tool_syntax():
    """The grammar writes ChatML `<tool_call>` blocks: a tokenizer that parses its own syntax is refused up front."""
    from components.evaluation import constrained

    with pytest.raises(ValueError, match="own tool syntax"):
        constrained.engine(_native("qwen_xml"))


def test_engine_decodes_a_model_with_its_own_tool_syntax_plain_and_says_so(caplog):
    """`decoding.constrained` is on by default: such a model is decoded without the ChatML grammar, with a warning,
    instead of failing the evaluation."""
    from components.evaluation.engine import Engine

    engine = Engine(None, _native("qwen_xml"), 1, 8, None, lambda logits: logits.argmax(-1), constrained=True)
    assert engine.grammar is None
    assert "its own tool syntax" in caplog.text
