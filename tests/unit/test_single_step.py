"""Bring your own tools: the catalog file, fitting imported records to it, the config rules, the stable hold-out,
and the no-simulator fallback (single-step episodes, their scoring, rewards on generated text)."""

from __future__ import annotations

import json

import pytest

from components import domains
from components.training import rewards
from components.evaluation import single_step
from components.config import ConfigError
from components.domains import generation, travel
from components.data.episode import DataError
from components.data import imports
from components.data.importers import import_file
from components.toolcalls import END

ALL = {"single": 0.2, "parallel": 0.1, "chain": 0.2, "recovery": 0.2, "irrelevance": 0.1, "multi_turn": 0.2}


@pytest.fixture(scope="module")
def episodes():
    return generation.generate("travel", 60, ALL, 0.25, 3)


def _text(*calls, content: str = "") -> str:
    """A generated turn in the project's template."""
    return content + "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls) + END


# --- single-step episodes --------------------------------------------------------------------------------


def test_every_assistant_turn_is_a_step_with_its_gold(episodes):
    chain = next(e for e in episodes if e.pattern == "chain")
    steps = single_step.steps(chain)
    gold = [[c.model_dump(exclude_none=True) for c in s] for s in chain.expected.steps]
    assert [s.gold for s in steps] == gold + [[]]  # every call step, then the final answer
    assert [s.first for s in steps] == [True] + [False] * len(gold)
    for s in steps:
        assert s.history == chain.message_dicts()[:s.turn] and chain.message_dicts()[s.turn]["role"] == "assistant"


def test_a_rejected_call_is_no_gold_step(episodes):
    recovery = next(e for e in episodes if e.pattern == "recovery")
    steps = single_step.steps(recovery)
    wrong = [c.model_dump(exclude_none=True) for c in recovery.expected.steps[0]]
    assert wrong not in [s.gold for s in steps] and len(steps) == len(recovery.expected.steps)
    assert steps[0].first and "error" in steps[0].history[-1]["content"]  # it sees the error it must correct


def test_step_verdicts_use_the_shared_scorer(episodes):
    single = next(e for e in episodes if e.pattern == "single")
    call, answer = single_step.steps(single)
    right = call.gold[0]
    assert single_step.judge(call, _text(right)).exact
    other = next(t["function"]["name"] for t in single.tool_dicts() if t["function"]["name"] != right["name"])
    wrong = single_step.judge(call, _text({"name": other, "arguments": right["arguments"]}))
    assert not wrong.exact and "wrong_tool" in wrong.errors and wrong.first_exact is False
    assert single_step.judge(call, "<tool_call>{oops</tool_call>" + END).errors == ("unparsable",)
    assert single_step.judge(answer, _text(content="Here you go.")).exact
    redundant = single_step.judge(answer, _text(right))
    assert redundant.errors == ("call_when_irrelevant",) and redundant.first_exact is None
    assert redundant.completion is None  # not measured without a simulator
    assert (redundant.episode, redundant.step, redundant.turns) == (single.id, answer.turn, 1)
    assert set(redundant.row()) == {"id", "pattern", "exact", "first_exact", "tool_ok", "unparsable", "errors",
                                    "completion", "turns", "episode", "step", "output"}  # no rollout fields


def test_grpo_rows_render_each_prompt_with_its_tools():
    class Tok:
        def apply_chat_template(self, messages, tools, add_generation_prompt, tokenize):
            return json.dumps([messages, tools, add_generation_prompt, tokenize])

    row = {"prompt": [{"role": "user", "content": "hi"}], "pattern": "chain", "goal": "{}",
           "expected": json.dumps([[{"name": "a", "arguments": {}}], [{"name": "b", "arguments": {}}]]),
           "tools": json.dumps([{"type": "function", "function": {"name": "a"}}])}
    out, = single_step.grpo_rows([row], Tok())
    assert json.loads(out["prompt"]) == [row["prompt"], json.loads(row["tools"]), True, False]
    assert json.loads(out["expected"]) == [[{"name": "a", "arguments": {}}]]  # the first step only


def test_rewards_score_generated_text_without_a_simulator():
    layers = rewards.layers(domains.Domain("desk", travel.catalog))
    assert set(layers) == {"correctness", "efficiency"}  # no simulator: no completion layer
    call = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01",
                                                 "end_date": "2026-05-02"}}
    exp, none = json.dumps([[call]]), "[]"
    texts = [_text(call).removesuffix(END), "Sunny, I think.", "<tool_call>{broken</tool_call>", _text(call, call)]
    assert layers["correctness"](texts, [exp, exp, exp, exp]) == [1.0, 0.0, 0.0, 0.0]
    assert layers["correctness"](["Hello!", _text(call)], [none, none]) == [1.0, 0.0]
    assert layers["efficiency"](texts, [exp] * 4) == [1.0, 1.0, 0.0, 0.5]


# --- the catalog and the data fitted to it ----------------------------------------------------------------


def test_catalog_file_makes_a_domain_without_simulator(params_factory, tmp_path):
    (tmp_path / "tools.json").write_text(json.dumps({"tools": [t["function"] for t in travel.catalog()]}))
    params = params_factory(project={"domain": "trips", "catalog": "tools.json"},
                            ingest={"source": "none", "imports": [{"source": "openai", "path": "x.jsonl",
                                                                   "domain": "trips"}]})
    domain = domains.of(params)
    assert domain.name == "trips" and not domain.simulated and domain.generate is None
    assert domain.catalog() == travel.catalog()  # bare function objects normalised to OpenAI tool schemas


@pytest.mark.parametrize("content, message", [
    (None, "rule 'catalog': tool catalog file not found"),
    ("{not json", "rule 'catalog': not a JSON file"),
    ("[]", "rule 'catalog': expected a non-empty JSON array"),
    ('[{"name": "a"}, {"description": "no name"}]', "tools.json record 2: rule 'tool_schema'"),
    ('[{"name": "a"}, {"name": "a"}]', "tools.json record 2: rule 'catalog': tool name 'a' is used by an earlier"),
    ('[{"name": "a", "parameters": {"type": "nonsense"}}]', "record 1: rule 'tool_schema': tool 'a': parameters"),
])
def test_bad_catalog_files_are_named(tmp_path, content, message):
    path = tmp_path / "tools.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        domains.read_catalog(path)


def test_imported_records_are_fitted_to_the_catalog(tmp_path):
    catalog = travel.catalog()
    call = {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "start_date": "2026-05-01",
                                                            "end_date": "2026-05-02"})}
    records = [{"id": "bare", "messages": [{"role": "user", "content": "Weather in Paris?"},
                                           {"role": "assistant", "tool_calls": [{"function": call}]},
                                           {"role": "tool", "content": "{}"},
                                           {"role": "assistant", "content": "Sunny."}]},
               {"id": "own", "tools": [catalog[0]], "messages": [{"role": "user", "content": "Hi"},
                                                                 {"role": "assistant", "content": "Hello!"}]}]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    bare, own = import_file("openai", path, "trips", catalog=catalog)
    assert bare.tool_dicts() == catalog and own.tool_dicts() == [catalog[0]]

    foreign = {"type": "function", "function": {"name": "launch_rocket", "parameters": {"type": "object"}}}
    path.write_text(json.dumps({**records[1], "tools": [catalog[0], foreign]}) + "\n")
    with pytest.raises(DataError, match=r"data.jsonl:1 \(id own\): rule 'catalog': tool 'launch_rocket' is not"):
        import_file("openai", path, "trips", catalog=catalog)


@pytest.mark.parametrize("sections, message", [
    ({"project": {"catalog": "tools.json"}}, "'travel' is a built-in domain"),
    ({"project": {"domain": "trips", "catalog": "tools.json"}}, "set ingest.source to none"),
    ({"ingest": {"source": "none"}}, "list the datasets to use under ingest.imports"),
])
def test_config_rules_of_a_catalog_domain(params_factory, sections, message):
    with pytest.raises(ConfigError, match=message):
        params_factory(**sections)


def test_heldout_fraction_is_a_stable_choice_by_id(episodes):
    bare = [e.model_copy(update={"split": None}) for e in episodes]
    held = {e.id for e in bare if imports.hold_out(e, 0.3).split == "test"}
    assert 0.1 < len(held) / len(bare) < 0.5
    assert held == {e.id for e in reversed(bare) if imports.hold_out(e, 0.3).split == "test"}  # order-free
    assert held < {e.id for e in bare if imports.hold_out(e, 0.6).split == "test"}  # a larger share adds only
    assert imports.hold_out(episodes[0].model_copy(update={"split": "train"}), 0.99).split == "train"
    # 1: a test-only file (every hash, the largest included, falls under it); 0: nothing held out
    assert {imports.hold_out(e, 1.0).split for e in bare} == {"test"}
    assert {imports.hold_out(e, 0.0).split for e in bare} == {None}
