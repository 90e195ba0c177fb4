"""`base.tools_format` (components/toolcalls/render.py): the two forms of the tool list render every schema feature
they promise, the json form gives back the schemas it was given, the compact default is byte for byte what it was,
`base` refuses json for a model keeping its own template, and one setting changes what SFT, RL, evaluation and
`tooltune bfcl` see together (the same prompt text for an episode)."""

from __future__ import annotations

import json
import re

import pytest

from components import base, build
from components.evaluation import bfcl, rollout, single_step
from components.toolcalls import render
from components.training import models
from tests import families

EVERY_FEATURE = {"type": "function", "function": {
    "name": "book_table", "description": "Book a restaurant table.",
    "parameters": {"type": "object", "required": ["city", "people", "when"], "properties": {
        "city": {"type": "string", "description": "City name."},
        "people": {"type": "integer", "minimum": 1, "maximum": 20},
        "budget": {"type": "number", "default": 40.5},
        "outdoor": {"type": "boolean", "default": False},
        "cuisine": {"type": "string", "enum": ["thai", "italian", "any"], "default": "any"},
        "when": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$", "description": "Time, HH:MM."},
        "diets": {"type": "array", "items": {"type": "string", "enum": ["vegan", "halal"]}},
        "contact": {"type": "object", "required": ["phone"], "properties": {
            "phone": {"type": "string"}, "email": {"type": ["string", "null"], "default": None}}},
        "note": {"description": "Free text, any type."}}}}}
BARE = {"name": "ping", "description": "Ping: no arguments.", "parameters": {"type": "object", "properties": {}}}
MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "A table for 2 at 19:30."}]
# What the compact form rendered before `tools_format` existed (main at 932bafc): the default must stay these bytes.
COMPACT = ("<|im_start|>system\nYou are helpful.\nTools:\n"
           "- book_table(city, people, budget, outdoor, cuisine, when, diets, contact, note): Book a restaurant table.\n"
           "- ping(): Ping: no arguments.\n"
           'To call tools reply with one <tool_call>{"name": ..., "arguments": {...}}</tool_call> per call.<|im_end|>\n'
           "<|im_start|>user\nA table for 2 at 19:30.<|im_end|>\n<|im_start|>assistant\n")


def tools_in_prompt(text: str) -> list[dict]:
    """The schemas a json-form prompt lists: each line of its first `<tools>` block, parsed."""
    found = re.search(r"<tools>\n(.*?)\n</tools>", text, re.DOTALL)
    assert found, "no <tools> block"
    return [json.loads(line) for line in found.group(1).split("\n")]


@pytest.fixture(scope="module")
def chatml():
    """A tokenizer with the project's ChatML template (as `base` gives SmolLM2 and the tiny model)."""
    tok = families.tokenizer("gemma")
    models.apply_tool_template(families.model("gemma", tok), tok)
    return tok


def with_format(tok, tools_format: str):
    tok.chat_template = render.chat_template(models.chat_template(), tools_format)
    return tok


def test_compact_default_is_the_template_unchanged_and_renders_the_same_bytes(chatml):
    assert render.chat_template(models.chat_template(), "compact") == models.chat_template()
    text = render.prompt(with_format(chatml, "compact"), MESSAGES, [EVERY_FEATURE, BARE])
    assert text == COMPACT
    # what the compact form drops: types, enums, required, defaults, nested fields
    for dropped in ('"integer"', "thai", "required", "40.5", "phone", "HH:MM"):
        assert dropped not in text


def test_json_form_renders_every_schema_feature_and_round_trips(chatml):
    tok = with_format(chatml, "json")
    text = render.prompt(tok, MESSAGES, [EVERY_FEATURE, BARE])
    assert tools_in_prompt(text) == [EVERY_FEATURE, {"type": "function", "function": BARE}]  # bare ones wrapped
    for kept in ('"type": "integer"', '"enum": ["thai", "italian", "any"]', '"required": ["city", "people", "when"]',
                 '"default": 40.5', '"default": false', '"default": null', '"minimum": 1', '"pattern": "^[0-9]{2}',
                 '"items": {"type": "string", "enum": ["vegan", "halal"]}', '"phone": {"type": "string"}'):
        assert kept in text, kept
    assert text.startswith("<|im_start|>system\nYou are helpful.\n\n# Tools\n")
    assert text.endswith("<|im_start|>user\nA table for 2 at 19:30.<|im_end|>\n<|im_start|>assistant\n")
    assert '<tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call>' in text
    assert render.prompt(tok, MESSAGES, None) == render.prompt(tok, MESSAGES, []) and "<tools>" not in \
        render.prompt(tok, MESSAGES, [])
    assert base.template_problem(tok) is None  # still trains (loss mask, end token) and parses back


def test_unknown_format_and_a_template_without_the_block_are_refused():
    with pytest.raises(ValueError, match="expected one of"):
        render.chat_template(models.chat_template(), "yaml")
    with pytest.raises(ValueError, match="0 tools blocks"):
        render.chat_template("{{ messages }}", "json")


def test_base_gives_the_chatml_template_its_format_and_refuses_json_for_a_native_one():
    tok = families.tokenizer("gemma")  # set aside: gets the project's template
    info = base.prepare_template(families.model("gemma", tok), tok, "/models/gemma", "json")
    assert info["tools_format"] == "json" and "<tools>" in render.prompt(tok, MESSAGES, [BARE])
    tok = families.tokenizer("qwen_xml")  # kept: renders tools its own way
    with pytest.raises(base.ConfigError, match=r"base.tools_format 'json': base.model '/models/qwen_xml' keeps"):
        base.prepare_template(families.model("qwen_xml", tok), tok, "/models/qwen_xml", "json")
    assert base.prepare_template(families.model("qwen_xml", tok), tok, "/models/qwen_xml") == {"template": "native"}


@pytest.mark.parametrize("tools_format", ["compact", "json"])
def test_sft_rl_evaluation_and_bfcl_see_the_same_prompt(params_factory, tools_format):
    """The base stage's tokenizer (tiny model, general domain) renders one episode the same way for TRL's SFT rows,
    the single-step RL prompts, the evaluation engine and `tooltune bfcl`; the setting changes all of them."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from components import domains

    params = params_factory(project={"domain": "general"}, base={"tools_format": tools_format},
                            ingest={"shares": {"single": 0.5, "parallel": 0.3, "irrelevance": 0.2}})
    assert base.run(params).details["tools_format"] == tools_format
    model, tok = models.load(params.path("base"))
    draw = domains.of(params).generate(40, {"single": 1.0}, 0.0, 3)
    episode = max(draw, key=lambda e: len(json.dumps(e.tool_dicts())))  # the richest schemas of the draw
    system = params.base.system_prompt
    conversation = [{"role": "system", "content": system}, *episode.prompt_messages()]
    prefix, rest = rollout.PrefixCache(model, tok).split(conversation, episode.tool_dicts())
    seen_by_evaluation = prefix + tok.decode(rest)
    assert seen_by_evaluation == render.prompt(tok, conversation, episode.tool_dicts())

    rows = build.sft_rows([episode], system)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=Dataset.from_list(rows),
                         args=SFTConfig(output_dir=str(params.path("reports") / "scratch"), report_to="none",
                                        assistant_only_loss=True, max_length=None, use_cpu=True))
    seen_by_sft = tok.decode(trainer.train_dataset[0]["input_ids"])
    assert seen_by_sft.startswith(seen_by_evaluation)
    seen_by_rl = single_step.grpo_rows(build.rl_prompts([episode], 1, system, 0), tok)[0]["prompt"]
    assert seen_by_rl == seen_by_evaluation
    assert render.prompt(tok, bfcl.conversation(episode, system), episode.tool_dicts()) == seen_by_evaluation

    if tools_format == "json":
        assert tools_in_prompt(seen_by_sft) == episode.tool_dicts() and "\nTools:\n- " not in seen_by_sft
    else:
        assert "<tools>" not in seen_by_sft
        assert all(f"\n- {t['function']['name']}(" in seen_by_sft for t in episode.tool_dicts())
