"""The evaluation's fast greedy decoder (`rollout.generate` without sampling) writes exactly what plain
`model.generate` writes for each conversation alone: batching, the shared prefix cache and dropping finished rows
change the cost, not the text."""

from __future__ import annotations

import pytest
import torch

from components.domains import generation
from components.evaluation import rollout
from tests.unit.test_evaluate import SHARES, _tiny_chat_model


def _lively_model(params, seed: int):
    """The tiny chat model with its matrices redrawn at std 0.3 (norms at 1): at its own small init every
    conversation decodes one token over and over, which would hide a row mix-up."""
    model, tok = _tiny_chat_model(params, "travel tools weather flights hotels", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 if p.dim() > 1 else torch.ones_like(p))
    return model, tok


def _plain(model, tok, conv, tools, max_new_tokens: int, eos: int) -> list[int]:
    """Plain greedy `model.generate` on one conversation's full prompt (batch 1, no cache given)."""
    prompt = tok.apply_chat_template(conv, tools=tools, add_generation_prompt=True, tokenize=False)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                             eos_token_id=eos)
    ids = out[0, enc["input_ids"].shape[1]:].tolist()
    return ids[:ids.index(eos) + 1] if eos in ids else ids


def _conversations(params, n: int, seed: int):
    episodes = generation.generate("travel", n, SHARES, 0.0, seed=seed)
    convs = [[{"role": "system", "content": params.base.system_prompt}] + e.prompt_messages() for e in episodes]
    return convs, [e.tool_dicts() for e in episodes]


def test_fast_greedy_generate_matches_plain_generate_per_conversation(params_factory):
    params = params_factory()
    model, tok = _lively_model(params, seed=1)
    convs, tools = _conversations(params, 8, seed=5)
    fast = rollout.generate(model, tok, convs, tools, 16, rollout.PrefixCache(model, tok))
    plain = [tok.decode(_plain(model, tok, c, t, 16, tok.eos_token_id), skip_special_tokens=False)
             for c, t in zip(convs, tools)]
    assert len(set(plain)) == len(plain)  # every conversation its own text: a row mix-up would show
    assert fast == plain


@pytest.mark.parametrize("share", [0.0, 0.25, 2.0])  # drop a row as soon as it ends, the default, never
def test_rows_that_finish_early_leave_the_batch_without_changing_the_others(params_factory, monkeypatch, share):
    """A random model seldom ends a turn, so a token it writes often stands in for end-of-turn: rows then stop
    at different steps, and whatever rows are dropped, each row's tokens are those of plain generate."""
    params = params_factory()
    model, tok = _lively_model(params, seed=2)
    convs, tools = _conversations(params, 8, seed=6)
    free = [_plain(model, tok, c, t, 20, -1) for c, t in zip(convs, tools)]
    ends = {t: {ids.index(t) if t in ids else len(ids) for ids in free} for ids in free for t in ids}
    eos = max(ends, key=lambda t: (len(ends[t]), -t))  # the stand-in that ends the rows at the most distinct steps
    plain = [_plain(model, tok, c, t, 20, eos) for c, t in zip(convs, tools)]
    assert len({len(ids) for ids in plain}) > 2  # rows really end at different steps
    monkeypatch.setattr(rollout, "PRUNE_SHARE", share)
    cache = rollout.PrefixCache(model, tok)
    splits = [cache.split(c, t) for c, t in zip(convs, tools)]
    with torch.no_grad():
        head, past = cache.expanded(splits[0][0], len(splits))
    width = max(len(ids) for _, ids in splits)
    pad = tok.pad_token_id
    input_ids = torch.tensor([head + [pad] * (width - len(ids)) + ids for _, ids in splits])
    mask = torch.tensor([[1] * len(head) + [0] * (width - len(ids)) + [1] * len(ids) for _, ids in splits])
    with torch.no_grad():
        assert rollout._greedy(model, input_ids, mask, past, 20, eos) == plain
