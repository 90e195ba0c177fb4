"""Layered RL rewards on hand-made rollouts, with a real simulator for task completion, bound to each domain and to
the policy's tokenizer (a model with its own tool syntax: tests/families.py)."""

import json
from functools import partial

from components import domains, rl, toolcalls
from components.training import rewards
from components.domains import finance, travel
from tests import families

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2026-05-01", "end_date": "2026-05-02"}}
TRAVEL = rewards.layers(domains.get("travel"))


def _turn(*calls):
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": c} for c in calls]}


def test_correctness_credit():
    exp = json.dumps([[WEATHER]])
    wrong_city = {"name": "get_weather", "arguments": {**WEATHER["arguments"], "city": "Rome"}}
    got = TRAVEL["correctness"]([[_turn(WEATHER)], [_turn(wrong_city)], [{"role": "assistant", "content": "hi"}]],
                                [exp] * 3)
    assert got == [1.0, 0.5, 0.0]
    no_call = [{"role": "assistant", "content": "Hi!"}]
    assert TRAVEL["correctness"]([no_call, [_turn(WEATHER)]], ["[]", "[]"]) == [1.0, 0.0]


def test_completion_reads_simulator_state():
    env = travel.TravelEnv()
    env.get_weather(**WEATHER["arguments"])
    done = [_turn(WEATHER), {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Sunny."}]
    stopped = [_turn(WEATHER), {"role": "tool", "content": "{}"}]
    exp = json.dumps([[WEATHER]])
    assert TRAVEL["completion"]([done, stopped], [exp, exp], ["{}", "{}"], environments=[env, env]) == [1.0, 0.0]
    assert TRAVEL["completion"]([done], [exp], ["{}"], environments=[travel.TravelEnv()]) == [0.0]
    facts = [json.dumps(["sunny", "21"]), json.dumps(["rain"])]  # the answer must state the expected outputs
    assert TRAVEL["completion"]([done, done], [exp, exp], ["{}", "{}"], environments=[env, env],
                                outputs=facts) == [0.0, 0.0]
    said = [*done[:2], {"role": "assistant", "content": "Sunny, highs 21 C."}]
    assert TRAVEL["completion"]([said], [exp], ["{}"], environments=[env], outputs=facts[:1]) == [1.0]
    # the engine's rollouts check the goal themselves (`reached`); an environment is then not read
    assert TRAVEL["completion"]([done, done, stopped], [exp] * 3, ["{}"] * 3, reached=[True, False, True]) == [
        1.0, 0.0, 0.0]


def test_efficiency_penalises_extra_calls():
    exp = json.dumps([[WEATHER]])
    assert TRAVEL["efficiency"]([[_turn(WEATHER)], [_turn(WEATHER), _turn(WEATHER)]], [exp, exp]) == [1.0, 0.5]


def test_layers_follow_the_domain():
    """Finance calls are scored against the finance catalog and completed in the finance simulator."""
    layers = rewards.layers(domains.get("finance"))
    order = {"name": "place_order", "arguments": {"account_id": "ACC-1001", "symbol": "AAPL", "side": "buy",
                                                  "quantity": 2}}
    exp, goal = json.dumps([[order]]), json.dumps({"orders": [{**order["arguments"]}]})
    env = finance.FinanceEnv()
    env.place_order(**order["arguments"])
    done = [_turn(order), {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "Bought."}]
    assert layers["correctness"]([done], [exp]) == [1.0]
    assert layers["completion"]([done], [exp], [goal], environments=[env]) == [1.0]
    assert layers["completion"]([done], [exp], [goal], environments=[finance.FinanceEnv()]) == [0.0]
    assert [getattr(fn, "func", fn).__name__ for fn in layers.values()] == list(layers)  # TRL's reward names


def test_a_native_syntax_models_text_completions_are_read_in_its_own_syntax(params_factory):
    """No simulator: TRL hands reward functions the generated ids decoded without special tokens, and no tokenizer.
    The layers rl.py builds read them through the policy's tokenizer (here a tiny Qwen3.5-XML family model's)."""
    from trl.chat_template_utils import add_response_schema

    tok = add_response_schema(families.tokenizer("qwen_xml"))  # what `base` keeps for a model of this family
    model = families.model("qwen_xml", tok)
    catalog = domains.get("travel").catalog()
    prompt = [{"role": "user", "content": "Weather in Paris on 1 and 2 May?"}]
    call = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": WEATHER}]}
    head = tok.apply_chat_template(prompt, tools=catalog, add_generation_prompt=True, tokenize=False)
    turn = tok.apply_chat_template(prompt + [call], tools=catalog, tokenize=False)[len(head):]
    ids = tok(turn, add_special_tokens=False).input_ids
    assert max(ids) < model.get_input_embeddings().num_embeddings  # ids the family's model can emit
    [text] = tok.batch_decode([ids], skip_special_tokens=True)  # as GRPOTrainer decodes a text prompt's completion
    assert "<function=get_weather>" in text and "<|im_end|>" not in text
    exp = json.dumps([[WEATHER]])

    params = params_factory()
    chosen = {name: fn for name, fn, _ in rl.reward_functions(params, domains.of(params), tok)}
    assert chosen["correctness"]([text], [exp]) == [1.0]
    assert chosen["efficiency"]([text, text.replace("</tool_call>", "</tool_call>\n" + text.strip())], [exp, exp]) == [
        1.0, 0.5]  # a second call in the same syntax counts as one too many
    assert TRAVEL["correctness"]([text], [exp]) == [0.0]  # read as ChatML (the old behaviour): unparsable
    project = rewards.layers(domains.get("travel"), tok=None)
    chatml = '<tool_call>{"name": "get_weather", "arguments": ' + json.dumps(WEATHER["arguments"]) + "}</tool_call>"
    assert project["correctness"]([chatml], [exp]) == [1.0]  # the project's ChatML model: unchanged


def test_open_catalog_calls_are_scored_against_each_rows_own_tools():
    """Two records offer a tool of one name with different schemas: each completion is judged by its own row's, not
    by the union catalog (which keeps one schema per name) or the domain's (where the name is absent)."""
    def tool(props):
        return {"type": "function", "function": {"name": "convert", "description": "Convert.", "parameters": {
            "type": "object", "properties": props, "required": ["value"]}}}

    with_unit = tool({"value": {"type": "string"}, "unit": {"type": "string"}})
    plain = tool({"value": {"type": "string"}})
    a = {"name": "convert", "arguments": {"value": "3", "unit": "km"}}
    b = {"name": "convert", "arguments": {"value": "3"}}
    gold = [json.dumps([[{**a, "accept": {"value": ["3"], "unit": ["km"]}}]]),
            json.dumps([[{**b, "accept": {"value": ["3"]}}]])]
    said = [f"<tool_call>\n{json.dumps(call)}\n</tool_call>" for call in (a, b)]  # single-step text completions
    tools = [json.dumps([with_unit]), json.dumps([plain])]
    union = partial(rewards.correctness, catalog_index=toolcalls.tool_index([with_unit, plain]),
                    catalog=[with_unit, plain])
    assert union(said, gold) == [0.5, 1.0]  # the union keeps the last `convert`, without `unit`: a fails it
    assert union(said, gold, tools=tools) == [1.0, 1.0]
    layer = TRAVEL["correctness"]  # as rl.reward_functions binds it; travel has no `convert`
    assert layer(said, gold, tools=tools) == [1.0, 1.0]
    assert layer(said[:1], gold[:1], tools=tools[1:]) == [0.5]  # a under the other record's schema
    assert TRAVEL["efficiency"]([said[0] + said[0]], gold[:1], tools=tools[:1]) == [0.5]
