"""The call gate (components/training/gate.py): fit on generated travel requests it separates call from no-call, saves
and loads with the same decisions, and `models.load` attaches it; the decoding engine follows it on the turn
that answers a conversation's first request (a call starts with the tag's first token; a no-call turn has no `<`) and
leaves later turns alone."""

from __future__ import annotations

import copy

import pytest
import torch

from components import domains
from components.domains import generation
from components.evaluation import rollout
from components.training import gate, models
from tests.unit.test_constrained import WEATHER, model, tok  # noqa: F401  (fixtures)

USER = [{"role": "user", "content": "Weather in Oslo, please?"}]
AFTER_TOOL = USER + [{"role": "assistant", "content": "", "tool_calls": [
    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}}]},
    {"role": "tool", "content": '{"temp": 3}'}]
FOLLOW_UP = AFTER_TOOL + [{"role": "assistant", "content": "3 degrees in Oslo."},
                          {"role": "user", "content": "And in Bergen?"}]


def _fixed(model, decision: bool) -> gate.CallGate:  # noqa: F811
    hidden = model.config.hidden_size
    return gate.CallGate(1, torch.zeros(hidden), 5.0 if decision else -5.0, torch.zeros(hidden), torch.ones(hidden))


def _turns(model, tok, conversations, constrained: bool = False) -> dict[str, str]:  # noqa: F811
    padded = copy.copy(tok)
    padded.pad_token = padded.pad_token or "<|im_end|>"
    convs = {str(i): c for i, c in enumerate(conversations)}
    return rollout.one_turn(model, padded, convs, {k: [WEATHER] for k in convs}, batch_size=2, max_new_tokens=12,
                            constrained=constrained)


def test_what_the_gate_decided_reaches_the_verdicts_metrics_and_report(model, tok):  # noqa: F811
    """Each first request the gate answered in text carries `refused_by` into its verdict; the model's metrics count
    them (`refused.gate`, the irrelevance ones apart) and the report shows them; without a gate there are none."""
    from components import evaluate
    from components.evaluation import report, single_step

    padded = copy.copy(tok)
    padded.pad_token = padded.pad_token or "<|im_end|>"
    episodes = generation.generate("travel", 6, {"single": 0.5, "irrelevance": 0.5}, 0.0, seed=1)
    verdicts = {}
    for gated in (True, False):  # a gate that refuses every first request, then no gate
        model.call_gate = _fixed(model, decision=False) if gated else None
        try:
            verdicts[gated] = single_step.evaluate(model, padded, episodes, "You call tools.", 4, 6)
            rolled = rollout.run_episodes(model, padded, episodes, domains.get("travel"), "You call tools.",
                                          rollout.Decoding(batch_size=4, max_new_tokens=6, max_turns=1))
        finally:
            model.call_gate = None
        # the simulator's rollouts: the first request is the only gated turn of each
        assert [rollout.judge(ro, e).refused_by for ro, e in zip(rolled, episodes)] == ["gate" if gated else None] * 6
    irrelevant = sum(e.pattern == "irrelevance" for e in episodes)
    refused = [v for v in verdicts[True] if v.refused_by == "gate"]
    assert 0 < irrelevant < len(episodes) == len(refused) == len({v.episode for v in refused})  # each first request
    assert {v.refused_by for v in verdicts[True]} == {"gate", None}  # the turns after a tool result: not gated
    assert {v.refused_by for v in verdicts[False]} == {None}
    metrics = evaluate.summarize(verdicts[True])
    assert (metrics["refused.gate"], metrics["refused.gate.no_call_wanted"]) == (len(episodes), irrelevant)
    assert not [k for k in evaluate.summarize(verdicts[False]) if k.startswith("refused.")]
    (title, header, rows), = report.refusal_table({"gated": metrics, "free": evaluate.summarize(verdicts[False])})
    assert header == ["check", "gated", "free"] and rows == [["gate: no call decided", f"6 ({irrelevant})", "0 (0)"]]


def _pushed_to(model, tok, text: str):  # noqa: F811
    """A hook that makes the model prefer the first token of `text` everywhere."""
    bias = torch.zeros(model.config.vocab_size)
    bias[tok(text, add_special_tokens=False)["input_ids"][0]] = 1e3
    return model.lm_head.register_forward_hook(lambda module, args, out: out + bias)


def test_the_engine_follows_the_gate_on_user_turns_only(model, tok):  # noqa: F811
    handle = _pushed_to(model, tok, "<")
    try:
        model.call_gate = None
        free = _turns(model, tok, [USER, AFTER_TOOL, FOLLOW_UP])
        model.call_gate = _fixed(model, decision=False)
        refused = _turns(model, tok, [USER, USER, AFTER_TOOL, FOLLOW_UP])
    finally:
        handle.remove()
        model.call_gate = None
    assert all(text.startswith("<") for text in free.values())  # the model alone would start a call
    for text in (refused["0"], refused["1"]):  # gated no-call: no `<` in the whole turn but its end-of-turn token
        assert "<" not in text.replace("<|im_end|>", "")
    assert refused["2"] == free["1"] and refused["3"] == free["2"]  # after a tool result or on a follow-up request
    # the model decides alone (the gate is fit on first requests)


def test_a_calling_gate_starts_the_turn_with_the_tag_under_constraints_too(model, tok):  # noqa: F811
    handle = _pushed_to(model, tok, "Hello")
    try:
        model.call_gate = None
        free = _turns(model, tok, [USER], constrained=True)
        model.call_gate = _fixed(model, decision=True)
        called = _turns(model, tok, [USER, AFTER_TOOL], constrained=True)
    finally:
        handle.remove()
        model.call_gate = None
    assert not free["0"].startswith("<")
    assert called["0"].startswith("<") and called["1"] == free["0"]


def test_fit_separates_generated_requests_and_round_trips(model, tok, tmp_path):  # noqa: F811
    episodes = generation.generate("travel", 60, {"single": 0.5, "irrelevance": 0.5}, 0.0, seed=0)
    # 20 requests in the random model's 32 dimensions can always be told apart: with a weak penalty the probe must
    # fit them all (at the default l2 = 1.0, fit for 600+ real examples, it may give up a few of 20). Its
    # out-of-fold AUC on a random model is chance, so only its range is checked.
    fitted, metrics = gate.fit(model, tok, episodes, "You are a travel assistant.", n=20, seed=0, l2=1e-3)
    assert metrics["call_gate_examples"] == 20 and metrics["call_gate_no_call_examples"] == 10
    assert metrics["call_gate_train_call"] == metrics["call_gate_train_no_call"] == 1.0
    assert 0.0 <= metrics["call_gate_cv_auc"] <= 1.0 and metrics["call_gate_threshold_shift"] == 0.0
    strict, moved = gate.fit(model, tok, episodes, "You are a travel assistant.", n=20, seed=0, l2=1e-3,
                             no_call_recall=0.99)
    assert moved["call_gate_threshold_shift"] >= 0.0 and moved["call_gate_cv_no_call"] >= metrics["call_gate_cv_no_call"]
    assert strict.bias == pytest.approx(fitted.bias - moved["call_gate_threshold_shift"])
    assert moved["call_gate_cv_call"] <= metrics["call_gate_cv_call"]  # refusing more costs calls, never adds them
    prompts, calls = gate.requests(episodes, "You are a travel assistant.", tok, 20, seed=0)
    said = fitted.calls(gate.features(model, tok, prompts, fitted.layer))
    assert said.tolist() == calls
    fitted.save(tmp_path)
    loaded = gate.load(tmp_path)
    assert loaded.layer == fitted.layer and torch.equal(loaded.calls(gate.features(model, tok, prompts, 1)), said)
    assert gate.load(tmp_path / "none") is None
    models.save(model, tok, tmp_path / "saved", {"spec": "tiny"})
    fitted.save(tmp_path / "saved")
    assert models.load(tmp_path / "saved")[0].call_gate.layer == fitted.layer


def test_the_gate_follows_the_hidden_states_device():
    """A model on a GPU hands the gate hidden states there: the probe's tensors follow them (here to PyTorch's meta
    device, which every machine has; bench/gpu_check.py runs the gated engine on a real GPU)."""
    gen = torch.Generator().manual_seed(0)
    probe = gate.CallGate(1, torch.randn(8, generator=gen), 0.5, torch.randn(8, generator=gen), torch.ones(8))
    hidden = torch.randn(3, 8, generator=gen)
    assert probe.score(hidden).shape == (3,) and probe.weight.device.type == "cpu"
    out = probe.score(hidden.to("meta"))
    assert out.device.type == "meta" and out.shape == (3,)
    assert {t.device.type for t in (probe.weight, probe.mean, probe.std)} == {"meta"}


def test_a_gate_of_another_model_is_refused_at_load(model, tok, tmp_path):  # noqa: F811
    models.save(model, tok, tmp_path, {"spec": "tiny"})
    hidden = model.config.hidden_size
    wide = gate.CallGate(1, torch.zeros(hidden + 8), 0.0, torch.zeros(hidden + 8), torch.ones(hidden + 8))
    wide.save(tmp_path)
    with pytest.raises(ValueError, match=rf"call_gate.safetensors: .* model has hidden size {hidden}"):
        models.load(tmp_path)
    deep = gate.CallGate(model.config.num_hidden_layers + 1, torch.zeros(hidden), 0.0, torch.zeros(hidden),
                         torch.ones(hidden))
    deep.save(tmp_path)
    with pytest.raises(ValueError, match="at layer"):
        models.load(tmp_path)


def test_features_are_the_layers_hidden_state_at_each_prompts_last_token(tok):  # noqa: F811
    """The shared start (a catalog's system turn) runs once and the rests are right-padded: the same numbers as one
    whole forward pass per prompt, for prompts that share their tools and for prompts that do not; the forward stops
    at the gate layer (the layer above it never runs)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok) + 64, hidden_size=32, intermediate_size=64,  # noqa: F811
                                         num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1)).eval()
    above = []
    model.model.layers[2].register_forward_hook(lambda *args: above.append(1))
    padded = copy.copy(tok)
    padded.pad_token = padded.pad_token or "<|im_end|>"
    catalog = generation.generate("travel", 12, {"single": 0.5, "irrelevance": 0.5}, 0.0, seed=1)
    prompts, _ = gate.requests(catalog, "You are a travel assistant.", padded, 12, seed=0)
    mixed = prompts[:3] + ["Hi", "<|im_start|>user\nWeather in Oslo?<|im_end|>\n<|im_start|>assistant\n"]
    for chosen in (prompts, mixed):
        fast = gate.features(model, padded, chosen, 2, batch_size=4)
        assert not above
        with torch.no_grad():
            whole = torch.stack([model(input_ids=torch.tensor([padded(p, add_special_tokens=False)["input_ids"]]),
                                       output_hidden_states=True).hidden_states[2][0, -1] for p in chosen])
        above.clear()
        assert fast.shape == whole.shape and torch.allclose(fast, whole, atol=1e-4)


def test_requests_of_one_kind_fit_no_gate(model, tok):  # noqa: F811
    episodes = generation.generate("travel", 10, {"single": 1.0}, 0.0, seed=0)
    assert gate.fit(model, tok, episodes, "", n=10)[0] is None


def _first_turns(model, tok, conversations, max_new_tokens: int = 24):  # noqa: F811
    """Constrained first turns of `conversations` (all offered WEATHER) in one batch, and the engine."""
    from components.evaluation.engine import Engine, Request

    padded = copy.copy(tok)
    padded.pad_token = padded.pad_token or "<|im_end|>"
    texts: dict[int, str] = {}
    engine = Engine(model, padded, len(conversations), max_new_tokens, rollout.PrefixCache(model, padded),
                    rollout.chooser(None), constrained=True)
    engine.run([Request(i, c, [WEATHER]) for i, c in enumerate(conversations)], texts.__setitem__)
    return [texts[i] for i in range(len(conversations))], engine


def _writes_call_head(model, tok):  # noqa: F811
    """Hooks that make the model continue `<` as `<tool_call>{"name":` (each token pushed after the one before it);
    where the name goes, the random model is left alone. Returns the hook handles."""
    ids = tok('<tool_call>{"name":', add_special_tokens=False)["input_ids"]
    follows = dict(zip(ids, ids[1:]))
    seen = []

    def bias(module, args, out):
        push = torch.zeros_like(out)
        for row, last in enumerate(seen[-1][:, -1].tolist()):
            if last in follows:
                push[row, -1, follows[last]] = 1e3
        return out + push

    return [model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"]),
                                            with_kwargs=True),
            model.lm_head.register_forward_hook(bias)]


@pytest.mark.parametrize("floor", [0.0, 0.5])
def test_a_call_whose_name_the_model_does_not_give_an_offered_tool_is_answered_in_text(model, tok, floor):  # noqa: F811
    """The random model puts almost no probability on `get_weather` where the name goes (its name mass is tiny): with
    a floor the gated call is undone and the turn starts again as text, token for token the turn a refusing gate
    would have written (the undone tokens leave the keys and values it attends to); the later turn batched beside it
    is unchanged."""
    handles = _writes_call_head(model, tok)
    try:
        model.call_gate = _fixed(model, decision=True)
        model.call_gate.name_floor = floor
        texts, engine = _first_turns(model, tok, [USER, AFTER_TOOL])
        model.call_gate = _fixed(model, decision=False)
        refusing, gated_out = _first_turns(model, tok, [USER, AFTER_TOOL])
    finally:
        model.call_gate = None
        for handle in handles:
            handle.remove()
    (key, mass), = engine.names  # the first request's call: its mass recorded once
    assert key == 0 and 0.0 <= mass < 0.01
    assert texts[1] == refusing[1]  # after a tool result the gate does not decide; the refusal did not touch it
    assert gated_out.refused == {0: "gate"}  # the refusing gate's first request; the later turn is not gated
    if floor:
        assert texts[0] == refusing[0] and "<" not in texts[0][:-10]
        assert engine.refused == {0: "name"}
    else:
        assert texts[0].startswith('<tool_call>{"name": "get_weather"')
        assert engine.refused == {}


def test_name_state_follows_the_call_text_to_the_closed_name():
    assert gate.name_state('{"na') is None
    assert [gate.name_state(t) for t in ('{"name":', '{"name": ', '{"name": "', '{"name": "get_w')] == ["name"] * 4
    assert gate.name_state('{"name": "get_weather"') == gate.name_state('{"name": "x", "arguments": {') == "named"


def test_the_floors_round_trip_and_an_older_gate_file_has_none(model, tmp_path):  # noqa: F811
    from safetensors.torch import load_file, save_file

    fixed = _fixed(model, decision=True)
    fixed.name_floor, fixed.value_floor = 0.25, 0.4
    fixed.save(tmp_path)
    loaded = gate.load(tmp_path, model)
    assert (loaded.name_floor, loaded.value_floor) == (0.25, pytest.approx(0.4))
    tensors = load_file(str(tmp_path / gate.FILE))
    del tensors["name_floor"], tensors["value_floor"]
    save_file(tensors, str(tmp_path / gate.FILE))
    loaded = gate.load(tmp_path, model)
    assert (loaded.name_floor, loaded.value_floor) == (0.0, 0.0)


def _writes(model, tok, head: str, value: str, tail: str, value_push: float):  # noqa: F811
    """Hooks that make a lone row write `head + value + tail`, token by token while it follows it: the tokens of
    `head` and `tail` pushed far ahead (probability ~1), those of `value` by `value_push` logits only (chosen, but
    with a small share of the model's probability). Returns the hook handles."""
    parts = [tok(t, add_special_tokens=False)["input_ids"] for t in (head, value, tail)]
    target = [(i, 1e3) for i in parts[0]] + [(i, value_push) for i in parts[1]] + [(i, 1e3) for i in parts[2]]
    written: list[int] = []

    def seen(module, args, kwargs):
        ids = kwargs["input_ids"]
        if ids.shape[1] == 1:  # a decode step feeds the token written before it
            written.append(int(ids[0, 0]))
        else:
            written.clear()

    def bias(module, args, out):
        n = len(written)
        if n < len(target) and written == [i for i, _ in target[:n]]:
            push = torch.zeros_like(out)
            push[0, -1, target[n][0]] = target[n][1]
            return out + push
        return out

    return [model.register_forward_pre_hook(seen, with_kwargs=True), model.lm_head.register_forward_hook(bias)]


@pytest.mark.parametrize("user, refused", [("Weather, please?", True), ("Weather in Zqvx, please?", False)])
def test_a_call_with_a_made_up_value_the_model_is_unsure_of_is_answered_in_text(model, tok, user, refused):  # noqa: F811
    """The value check: the gated call closes with a city the model gave little probability to; when the user never
    wrote it the turn is undone and written as text (no call in it), when the user did the call stands. The enum
    value, pushed to probability ~1, is never the doubtful one."""
    head = '<tool_call>{"name": "get_weather", "arguments": {"city": "'
    tail = '", "unit": "celsius"}}</tool_call>'
    handles = _writes(model, tok, head, "Zqvx", tail, value_push=4.0)
    try:
        model.call_gate = _fixed(model, decision=True)
        model.call_gate.value_floor = 0.5
        (text,), engine = _first_turns(model, tok, [[{"role": "user", "content": user}]], max_new_tokens=80)
    finally:
        model.call_gate = None
        for handle in handles:
            handle.remove()
    if refused:
        assert engine.doubts == [(0, "get_weather.city")]
        assert engine.refused == {0: "value"}
        assert "<tool_call>" not in text and "<" not in text.replace("<|im_end|>", "")
    else:
        assert engine.doubts == [] and engine.refused == {}
        assert text.startswith(head + "Zqvx" + tail)


def test_the_value_check_finds_made_up_string_values_only():
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 3}}</tool_call>'
    pieces = [call[i:i + 4] for i in range(0, len(call), 4)]

    def unsure_of(word):  # a small probability on the pieces that hold part of `word`'s first occurrence
        start = call.index(word)
        return [0.1 if 4 * i < start + len(word) and 4 * i + 4 > start else 0.99 for i in range(len(pieces))]

    assert gate.doubtful_value(pieces, unsure_of("Pari"), "the weather for 3 days", 0.4) == "get_weather.city"
    assert gate.doubtful_value(pieces, unsure_of("Pari"), "the weather in PARIS for 3 days", 0.4) is None  # written
    assert gate.doubtful_value(pieces, unsure_of("Pari"), "the weather", 0.05) is None  # sure enough
    assert gate.doubtful_value(pieces, unsure_of(" 3}"), "the weather", 0.4) is None  # numbers are not checked
    assert gate.doubtful_value(pieces, unsure_of("cels"), "the weather in Paris", 0.4) == "get_weather.unit"
    assert gate.doubtful_value(pieces[:-3], unsure_of("Pari"), "the weather", 0.4) is None  # the call is not closed
    bad = ['<tool_call>{"name": "x", "arguments": ', '{"city": "Pa}</tool_call>']  # not JSON: nothing to check
    assert gate.doubtful_value(bad, [0.1, 0.1], "", 0.4) is None
    found = {a: (v, p) for _, a, v, p in gate.value_probabilities(pieces, unsure_of(" 3}"))}  # every value, as read
    assert found == {"city": ("Paris", 0.99), "unit": ("celsius", 0.99), "days": (3, 0.1)}
