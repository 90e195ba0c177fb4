"""Constrained decoding (`components.evaluation.constrained`) with the real SmolLM2 tokenizer and a small random
model whose lm_head is wider than the vocabulary: whatever the model picks inside the mask, the turn parses with
the project's parser and every call names an offered tool with schema-valid arguments; free text still ends."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LogitsProcessorList, Qwen2Config, Qwen2ForCausalLM

from components.evaluation import constrained
from components.toolcalls import check, parse_output
from components.training import models

PADDED = 128  # the model's vocabulary is rounded up to a multiple of this, as many checkpoints do


def _tool(name: str, properties: dict, required: list[str], **extra) -> dict:
    params = {"type": "object", "properties": properties, "required": required, **extra}
    return {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": params}}


WEATHER = _tool("get_weather", {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "kelvin"]},
                                "days": {"type": "integer"}}, ["city", "unit"])
# A schema that says extra keys are fine: the scorer still counts them as unknown_argument, so they are refused.
BOOK = _tool("book_table", {"guests": {"type": "integer"}, "outdoor": {"type": "boolean"},
                            "when": {"type": "string", "enum": ["lunch", "dinner"]}}, ["guests", "when"],
             additionalProperties=True)
QUOTE = _tool("stock_quote", {"symbol": {"type": "string"}}, ["symbol"])
ROW_TOOLS = [[WEATHER], [WEATHER, BOOK], [QUOTE, BOOK], []]


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    gguf = models.smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.chat_template = models.chat_template()
    return tok


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    vocab = -(-len(tok) // PADDED) * PADDED + PADDED  # strictly wider than the tokenizer
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1,
                                        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"))).eval()


def _prompts(tok, tools_per_row: list[list[dict]]) -> list[str]:
    conv = [{"role": "user", "content": "Weather in Oslo, please?"}]
    return [tok.apply_chat_template(conv, tools=tools or None, add_generation_prompt=True, tokenize=False)
            for tools in tools_per_row]


def _decode(model, tok, tools_per_row, steer, steps: int, seed: int | None) -> tuple[list[str], list]:
    """A plain batched decode loop (one KV cache per row): the model's logits plus `steer(row, text so far)`,
    masked, then sampled (seeded) or greedy. Returns each row's text and, per row, its (logits, token) steps."""
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in _prompts(tok, tools_per_row)]
    c = constrained.Constraint(tok, tools_per_row)
    out: list[list[int]] = [[] for _ in ids]
    seen: list[list[tuple[torch.Tensor, int]]] = [[] for _ in ids]
    caches: list = [None] * len(ids)
    gen = torch.Generator().manual_seed(seed or 0)
    for _ in range(steps):
        rows = [r for r in range(len(ids)) if not c.done(r)]
        if not rows:
            break
        logits = torch.stack([_next_logits(model, ids[r], out[r], caches, r) + steer(r, tok.decode(out[r]))
                              for r in rows])
        masked = c.mask(logits, rows)
        assert torch.isinf(masked[:, len(tok):]).all()  # the padded lm_head's ids are never allowed
        picked = (torch.multinomial(masked.softmax(-1), 1, generator=gen).squeeze(-1) if seed is not None
                  else masked.argmax(-1)).tolist()
        c.advance(rows, picked)
        for i, (r, t) in enumerate(zip(rows, picked)):
            out[r].append(t)
            seen[r].append((logits[i], t))
    return [tok.decode(o, skip_special_tokens=False) for o in out], seen


def _next_logits(model, prompt: list[int], out: list[int], caches: list, row: int) -> torch.Tensor:
    """The row's next-token logits: the whole prompt on the first step, then only the last token (KV cache)."""
    new = out[-1:] if out else prompt
    with torch.no_grad():
        res = model(torch.tensor([new]), past_key_values=caches[row], use_cache=True, logits_to_keep=1)
    caches[row] = res.past_key_values
    return res.logits[0, -1]


class CallSteer:
    """Steer a random model into `n_calls` calls per row that has tools, then the end of turn: outside a call
    the pieces of `<tool_call>` are favoured in order (then `<|im_end|>` once enough calls are made); inside one,
    JSON punctuation and short values, so values end. The mask alone decides what is allowed: which tool, which
    keys, which values stay the model's (random) pick among the allowed ones."""

    def __init__(self, tok, model, tools_per_row, n_calls: int) -> None:
        self.vocab, self.tools, self.n_calls = model.config.vocab_size, tools_per_row, n_calls
        self.trigger = tok("<tool_call>", add_special_tokens=False)["input_ids"]
        self.end = tok.convert_tokens_to_ids("<|im_end|>")
        pieces = ['"', '"}', "}", ", ", "1", "true", "a"]
        self.json = sorted({i for p in pieces for i in tok(p, add_special_tokens=False)["input_ids"]})
        self.forced = [0] * len(tools_per_row)  # trigger pieces already favoured, per row

    def __call__(self, row: int, text: str) -> torch.Tensor:
        bias = torch.zeros(self.vocab)
        if text.count("<tool_call>") > text.count("</tool_call>"):
            self.forced[row] = 0
            bias[self.json] = 12.0
        elif self.tools[row] and text.count("</tool_call>") < self.n_calls:
            bias[self.trigger[self.forced[row]]] = 40.0
            self.forced[row] += 1
        else:
            bias[self.end] = 40.0
        return bias


def _assert_valid(text: str, tools: list[dict]) -> list[dict]:
    parsed = parse_output(text)
    assert not parsed.unparsable, (parsed.error, text)
    index = check.tool_index(tools)
    for call in parsed.calls:
        assert call["name"] in index, (call, text)
        assert check.schema_errors(call, index) == [], (call, text)
    return parsed.calls


def test_sampled_constrained_turns_always_parse_and_call_only_offered_tools_validly(tok, model):
    """Per-row tool lists in one batch, several sampled seeds: every turn ends, parses, and each call names a
    tool of its own row with arguments that pass the scorer's schema checks (types, enums, required, no extras)."""
    n_calls, names = 0, set()
    for seed in range(2):
        steer = CallSteer(tok, model, ROW_TOOLS, n_calls=1 + seed % 2)
        texts, _ = _decode(model, tok, ROW_TOOLS, steer, steps=200, seed=seed)
        for text, tools in zip(texts, ROW_TOOLS):
            assert text.endswith("<|im_end|>"), text
            calls = _assert_valid(text, tools)
            n_calls += len(calls)
            names |= {c["name"] for c in calls}
        assert "<tool_call>" not in texts[3]  # the row offered no tools
    assert n_calls >= 6 and names == {"get_weather", "book_table", "stock_quote"}, (n_calls, names)


def test_free_text_is_still_possible_and_ends_cleanly(tok, model):
    """A model steered to plain words and then the end of turn answers in text: no call, nothing unparsable."""
    words, end = tok(" Sorry, I cannot help with that.", add_special_tokens=False)["input_ids"], tok.eos_token_id

    def steer(row: int, text: str) -> torch.Tensor:  # favour the answer's next word, then the end of turn
        bias = torch.zeros(model.config.vocab_size)
        written = len(tok(text, add_special_tokens=False)["input_ids"]) if text else 0
        bias[words[written] if written < len(words) else end] = 40.0
        return bias

    texts, _ = _decode(model, tok, ROW_TOOLS, steer, steps=20, seed=None)
    for text in texts:
        parsed = parse_output(text)
        assert text.endswith("<|im_end|>") and not parsed.unparsable and parsed.calls == [], text
    assert [parse_output(text).content for text in texts] == ["Sorry, I cannot help with that."] * len(texts)


@pytest.mark.parametrize("bad", [
    '<tool_call>{"name": "delete_account", "arguments": {}}</tool_call>',  # not offered
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',  # required unit missing
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}}</tool_call>',  # enum
    '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin", "days": "two"}}</tool_call>',
    '<tool_call>{"name": "book_table", "arguments": {"guests": 2, "when": "lunch", "vip": true}}</tool_call>',
    '<tool_call>{"name": "get_weather", "arguments": {"city": "a</tool_call>", "unit": "kelvin"}}</tool_call>',
    "I will not call anything.</tool_call>",  # a stray closing tag: unbalanced for the parser
    "Sure.<|im_start|>",  # a turn marker spelled inside the answer
])
def test_the_grammar_refuses_what_the_scorer_would_count_as_an_error(tok, bad):
    c = constrained.Constraint(tok, [[WEATHER, BOOK]])
    with pytest.raises(ValueError, match="not allowed by its tool-call grammar"):
        for token in tok(bad + "<|im_end|>", add_special_tokens=False)["input_ids"]:
            c.advance([0], [token])


def test_the_template_s_own_turns_are_accepted(tok):
    """What the chat template writes for an assistant turn (text, then calls one per line) passes the grammar."""
    calls = [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "kelvin"}}},
             {"type": "function", "function": {"name": "book_table", "arguments": {"guests": 2, "when": "dinner"}}}]
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Checking.", "tool_calls": calls}]
    full = tok.apply_chat_template(conv, tools=[WEATHER, BOOK], tokenize=False)
    turn = full.split("<|im_start|>assistant\n", 1)[1].rstrip("\n")
    c = constrained.Constraint(tok, [[WEATHER, BOOK]])
    for token in tok(turn, add_special_tokens=False)["input_ids"]:
        c.advance([0], [token])
    assert c.done(0) and len(parse_output(turn).calls) == 2


def test_logits_processor_in_generate_matches_the_batched_loop(tok, model):
    """`model.generate` with the processor writes, row by row, what the greedy mask/advance loop writes."""
    tools = [[WEATHER], [QUOTE, BOOK]]
    loop_texts, _ = _decode(model, tok, tools, CallSteer(tok, model, tools, n_calls=1), steps=40, seed=None)

    class Steer:  # the same steering inside generate, before the constraint
        def __init__(self, row: int) -> None:
            self.row, self.steer, self.start = row, CallSteer(tok, model, tools, n_calls=1), None

        def __call__(self, input_ids, scores):
            self.start = input_ids.shape[1] if self.start is None else self.start
            return scores + self.steer(self.row, tok.decode(input_ids[0, self.start:]))

    for row, row_tools in enumerate(tools):
        enc = tok(_prompts(tok, [row_tools]), return_tensors="pt", add_special_tokens=False)
        procs = LogitsProcessorList([Steer(row), constrained.ConstrainedLogitsProcessor(tok, [row_tools])])
        out = model.generate(**enc, max_new_tokens=40, do_sample=False, logits_processor=procs,
                             pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"))
        assert tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=False) == loop_texts[row]
    for text, row_tools in zip(loop_texts, tools):
        if text.endswith("<|im_end|>"):
            _assert_valid(text, row_tools)


def test_constrained_logprobs_are_the_masked_distribution_s_and_carry_gradients(tok, model):
    """`constrained_logprobs` replays the mask over a finished sequence: it equals the loop's
    log_softmax(mask(logits)) at each picked token, is >= the unconstrained log-probability (renormalised over
    fewer tokens), and is differentiable in the logits."""
    _, seen = _decode(model, tok, [[WEATHER]], CallSteer(tok, model, [[WEATHER]], 1), steps=60, seed=3)
    logits = torch.stack([lg for lg, _ in seen[0]]).unsqueeze(0).requires_grad_(True)
    tokens = torch.tensor([[t for _, t in seen[0]]])
    lp = constrained.constrained_logprobs(tok, [[WEATHER]], logits, tokens)
    plain = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    assert torch.isfinite(lp).all() and (lp >= plain - 1e-5).all() and (lp > plain + 1e-3).any()
    c = constrained.Constraint(tok, [[WEATHER]])
    for t in range(tokens.shape[1]):
        step = c.mask(logits[:, t].detach(), [0]).log_softmax(-1)[0, tokens[0, t]]
        assert torch.isclose(step, lp[0, t].detach(), atol=1e-5)
        c.advance([0], [int(tokens[0, t])])
    lp.sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_the_evaluation_engine_decodes_under_constraints_what_the_reference_loop_decodes(model, tok):
    """`rollout.one_turn(..., constrained=True)` (the continuous-batching engine: rows of four tool lists in one
    batch) masks each row by its own tools: greedy, it writes the reference loop's tokens. The model is pushed
    toward `<|im_start|>`, which the grammar bans: unconstrained it writes nothing else."""
    from components.evaluation import rollout

    start = tok.convert_tokens_to_ids("<|im_start|>")
    bias = torch.zeros(model.config.vocab_size)
    bias[start] = 1e3
    hook = model.lm_head.register_forward_hook(lambda module, args, out: out + bias)
    try:
        expected, _ = _decode(model, tok, ROW_TOOLS, lambda row, text: torch.zeros_like(bias), 24, None)
        padded = copy.copy(tok)
        padded.pad_token = padded.pad_token or "<|im_end|>"
        conv = [{"role": "user", "content": "Weather in Oslo, please?"}]
        convs = {str(i): conv for i in range(len(ROW_TOOLS))}
        tools = {str(i): t or None for i, t in enumerate(ROW_TOOLS)}
        out = rollout.one_turn(model, padded, convs, tools, batch_size=3, max_new_tokens=24, constrained=True)
        free = rollout.one_turn(model, padded, convs, tools, batch_size=3, max_new_tokens=24)
    finally:
        hook.remove()
    assert [out[str(i)] for i in range(len(ROW_TOOLS))] == expected
    assert all("<|im_start|>" not in text for text in expected)
    assert all(text == "<|im_start|>" * 24 for text in free.values())
