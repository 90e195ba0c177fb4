"""The evaluation's continuous-batching decoder (components/evaluation/engine.py) writes exactly what plain
`model.generate` writes for each conversation alone: batching, the shared prefix cache, rows joining and leaving
the running batch and keys/values reused across turns change the cost, not the text."""

from __future__ import annotations

import copy

import pytest
import torch

from components.domains import generation
from components.evaluation import engine, rollout
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


def _with_eos(tok, eos: int):
    """A copy of `tok` whose end-of-turn token is `eos` (a stand-in the random model writes)."""
    other = copy.copy(tok)
    other.eos_token = tok.convert_ids_to_tokens(eos)
    assert other.eos_token_id == eos
    return other


def _stand_in_eos(model, tok, convs, tools, n: int) -> int:
    """A token the random model writes that, taken as end-of-turn, ends the rows at the most distinct steps."""
    free = [_plain(model, tok, c, t, n, -1) for c, t in zip(convs, tools)]
    ends = {t: {ids.index(t) if t in ids else len(ids) for ids in free} for ids in free for t in ids}
    return max(ends, key=lambda t: (len(ends[t]), -t))


@pytest.mark.parametrize("share", [0.0, 0.25, 2.0])  # rebuild as soon as a row ends, the default, only when all did
@pytest.mark.parametrize("batch_size", [3, 8])  # rows join a running batch as others end / all start together
def test_rows_that_end_early_leave_the_batch_without_changing_the_others(params_factory, monkeypatch, share,
                                                                         batch_size):
    """A random model seldom ends a turn, so a token it writes often stands in for end-of-turn: rows then end at
    different steps, rows join and leave the running batch, and each row's tokens are those of plain generate."""
    params = params_factory()
    model, tok = _lively_model(params, seed=2)
    convs, tools = _conversations(params, 8, seed=6)
    eos = _stand_in_eos(model, tok, convs, tools, 20)
    plain = [_plain(model, tok, c, t, 20, eos) for c, t in zip(convs, tools)]
    assert len({len(ids) for ids in plain}) > 2  # rows really end at different steps
    monkeypatch.setattr(engine, "PRUNE_SHARE", share)
    texts = {}
    run = engine.Engine(model, _with_eos(tok, eos), batch_size, 20, rollout.PrefixCache(model, tok),
                        rollout.chooser(None))
    run.run([engine.Request(i, c, t) for i, (c, t) in enumerate(zip(convs, tools))],
            lambda key, text: texts.__setitem__(key, text))
    assert [texts[i] for i in range(len(convs))] == [tok.decode(ids, skip_special_tokens=False) for ids in plain]
    assert run.stats["rebuilds"] > 1


def test_later_turns_reuse_their_keys_and_values_and_decode_what_plain_generate_decodes(params_factory):
    """Three turns per conversation, each answered by a user turn: a later turn starts from the conversation's own
    keys and values (up to where the re-rendered prompt differs from the tokens decoded) and encodes only the rest,
    and every turn's text is plain generate's on the whole conversation."""
    params = params_factory()
    model, tok = _lively_model(params, seed=3)
    convs, tools = _conversations(params, 6, seed=7)
    eos = _stand_in_eos(model, tok, convs, tools, 12)
    short = _with_eos(tok, eos)
    turns: dict[int, list[str]] = {i: [] for i in range(len(convs))}
    history = {i: list(c) for i, c in enumerate(convs)}

    def on_turn(key, text):
        turns[key].append(text)
        history[key] += [{"role": "assistant", "content": text.removesuffix(short.eos_token)},
                         {"role": "user", "content": f"and then {len(turns[key])}?"}]
        return engine.Request(key, history[key], tools[key]) if len(turns[key]) < 3 else None

    run = engine.Engine(model, short, 4, 12, rollout.PrefixCache(model, tok), rollout.chooser(None))
    run.run([engine.Request(i, c, t) for i, (c, t) in enumerate(zip(convs, tools))], on_turn)
    for i, conv in enumerate(convs):
        expected, conversation = [], list(conv)
        for turn in range(3):
            text = tok.decode(_plain(model, tok, conversation, tools[i], 12, eos), skip_special_tokens=False)
            expected.append(text)
            conversation += [{"role": "assistant", "content": text.removesuffix(short.eos_token)},
                             {"role": "user", "content": f"and then {turn + 1}?"}]
        assert turns[i] == expected
    prompt_tokens = sum(len(tok(tok.apply_chat_template(h[:k], tools=tools[i], add_generation_prompt=True,
                                                        tokenize=False), add_special_tokens=False)["input_ids"])
                        for i, h in history.items() for k in (len(convs[i]), len(convs[i]) + 2, len(convs[i]) + 4))
    assert run.stats["reused_tokens"] > prompt_tokens / 2  # the system turns and the earlier turns were not re-encoded
    assert run.stats["prefill_tokens"] + run.stats["reused_tokens"] == prompt_tokens


def test_sampling_draws_from_the_top_p_set_only():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0]] * 2000)
    torch.manual_seed(0)
    picks = rollout.chooser(rollout.Sampling(temperature=1.0, top_p=0.9, seed=0))(logits)
    probs = torch.softmax(logits[0], -1)
    assert probs[0] < 0.9 <= probs[0] + probs[1]  # the top-0.9 set is the first two tokens
    assert set(picks.tolist()) == {0, 1}
    share = (picks == 0).float().mean().item()
    assert abs(share - probs[0] / (probs[0] + probs[1])) < 0.04  # renormalised within the set
