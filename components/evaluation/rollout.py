"""Batched multi-turn rollouts of a model in a domain simulator (used by evaluation); greedy unless sampled.

All live episodes decode one assistant turn together (left padding, KV cache); each turn is parsed with
the shared parser; parsed calls run in that episode's own simulator, where a call that fails in any way (bad
arguments, or arguments that break the tool) becomes an error result the model reads and a count in
`Rollout.failed_calls`, never an exception out of the rollout. When the model answers without a call,
the episode's next user turn (multi_turn episodes) is fed and the loop goes on; it ends for an episode when
the last user turn is answered, on unparsable output, or when one user turn reaches the turn cap.
With a `Sampling`, every turn is sampled instead (k-sample evaluation, `evaluate.samples` > 1).
Greedy turns decode in a plain forward loop (`_greedy`), not `model.generate`: same tokens, less per-step
overhead, and rows that finish leave the batch (bench/bench_generate.py measures it against plain generate).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from tqdm import tqdm

from components import toolcalls
from components.domains import Domain
from components.data.episode import Episode


@dataclass
class Rollout:
    """What one model did in one episode."""

    episode_id: str
    messages: list[dict[str, Any]]
    steps: list[list[dict[str, Any]]] = field(default_factory=list)
    final: str | None = None
    unparsable: bool = False
    turns: int = 0
    goal_reached: bool = False
    failed_calls: int = 0  # calls the simulator answered with an error (see `sim.execute`)


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding: `temperature` and nucleus `top_p` (no top-k cut), torch seeded with `seed` per rollout run."""

    temperature: float
    top_p: float
    seed: int


class PrefixCache:
    """Key/value cache of the prompt prefix every conversation shares (system turn with the tool list).

    The system turn is about two thirds of a first-turn prompt and identical across a domain's episodes;
    its keys and values are computed once per distinct prefix and reused by every batch, so each
    generation call only encodes what differs (user turn, earlier turns, tool results).
    """

    def __init__(self, model: Any, tok: Any) -> None:
        self.model, self.tok = model, tok
        self._caches: dict[str, tuple[list[int], Any]] = {}

    def split(self, conversation: list[dict], tools: list[dict]) -> tuple[str, list[int]]:
        """(prefix text, token ids of the rest) of one conversation's generation prompt."""
        full = self.tok.apply_chat_template(conversation, tools=tools, add_generation_prompt=True, tokenize=False)
        head = conversation[:1] if conversation and conversation[0]["role"] == "system" else []
        prefix = self.tok.apply_chat_template(head, tools=tools, tokenize=False) if (head or tools) else ""
        if not full.startswith(prefix):  # a template that is not prefix-preserving: no sharing
            prefix = ""
        return prefix, self._ids(full[len(prefix):])

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []

    def expanded(self, prefix: str, batch: int) -> tuple[list[int], Any]:
        """Prefix token ids and a fresh copy of its cache, repeated for `batch` rows."""
        if prefix not in self._caches:
            ids = self._ids(prefix)
            cache = None
            if ids:
                cache = self.model(torch.tensor([ids], device=self.model.device), use_cache=True).past_key_values
            self._caches[prefix] = (ids, cache)
        ids, cache = self._caches[prefix]
        if cache is None:
            return ids, None
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(batch)
        return ids, cache


@torch.no_grad()
def generate(model: Any, tok: Any, conversations: list[list[dict]], tools: list[list[dict]],
             max_new_tokens: int, prefixes: PrefixCache | None = None, sampling: Sampling | None = None) -> list[str]:
    """Decode one assistant turn for each conversation (greedy, or sampled with `sampling`); returns text up to
    and incl. end-of-turn.

    All conversations of one call share one prompt prefix (see `PrefixCache`); rows are padded between
    the shared prefix and their own part, so positions (from the attention mask) stay exact.
    """
    prefixes = prefixes or PrefixCache(model, tok)
    splits = [prefixes.split(m, t) for m, t in zip(conversations, tools)]
    if len({p for p, _ in splits}) > 1:
        raise ValueError("generate: conversations of one batch must share their system turn and tools")
    head, cache = prefixes.expanded(splits[0][0], len(splits))
    width = max(len(ids) for _, ids in splits)
    pad = tok.pad_token_id
    input_ids = [head + [pad] * (width - len(ids)) + ids for _, ids in splits]
    mask = [[1] * len(head) + [0] * (width - len(ids)) + [1] * len(ids) for _, ids in splits]
    input_ids, mask = (torch.tensor(x, device=model.device) for x in (input_ids, mask))
    if sampling is None:
        rows = _greedy(model, input_ids, mask, cache, max_new_tokens, tok.eos_token_id)
    else:  # top_k=0: transformers would otherwise cut sampling to its default top 50 tokens
        out = model.generate(input_ids=input_ids, attention_mask=mask, past_key_values=cache,
                             max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=tok.eos_token_id,
                             do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        rows = out[:, input_ids.shape[1]:].tolist()
    texts = []
    for ids in rows:
        if tok.eos_token_id in ids:
            ids = ids[:ids.index(tok.eos_token_id) + 1]
        texts.append(tok.decode([i for i in ids if i != pad], skip_special_tokens=False))
    return texts


# A finished row is dropped from the batch once this share of the rows still decoding has finished: dropping copies
# every layer's keys and values, so doing it for each single row would cost more than decoding a few idle rows.
PRUNE_SHARE = 0.25


def _greedy(model: Any, input_ids: torch.Tensor, mask: torch.Tensor, cache: Any, max_new_tokens: int,
            eos: int) -> list[list[int]]:
    """Greedy decoding of a left-padded batch whose first `cache` tokens are already encoded; token ids per row,
    up to and incl. `eos`.

    The same arithmetic as `model.generate(do_sample=False)` (positions from the attention mask, the last
    position's logits only) without its per-step machinery, and rows leave the batch when they finish instead
    of decoding padding until the longest row ends.
    """
    from transformers import DynamicCache

    cache = cache if cache is not None else DynamicCache(config=model.config)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    done = cache.get_seq_length()
    out = model(input_ids=input_ids[:, done:], attention_mask=mask, position_ids=positions[:, done:],
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    alive = torch.arange(input_ids.shape[0])  # batch row -> caller's row
    finished = torch.zeros(len(rows), dtype=torch.bool)
    nxt_pos = positions[:, -1:] + 1
    for step in range(max_new_tokens):
        nxt = out.logits[:, -1].argmax(-1)
        for row, token, over in zip(alive.tolist(), nxt.tolist(), finished.tolist()):
            if not over:
                rows[row].append(token)
        finished |= nxt == eos
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if finished.sum() >= PRUNE_SHARE * len(alive):
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            alive, finished, nxt, mask, nxt_pos = (x[keep] for x in (alive, finished, nxt, mask, nxt_pos))
        mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=nxt_pos, past_key_values=cache,
                    use_cache=True)
        nxt_pos = nxt_pos + 1
    return rows


def _advance(ro: Rollout, text: str, env: Any, domain: Domain, followups: list[dict[str, Any]]) -> bool:
    """Apply one generated turn; an answer without calls gets the next of `followups` (the user's later
    turns, consumed) as the user's reply. Returns True while the episode goes on."""
    parsed = toolcalls.parse_output(text)
    ro.turns += 1
    if parsed.unparsable:
        ro.unparsable, ro.final = True, text
        return False
    if not parsed.calls:
        ro.messages.append({"role": "assistant", "content": parsed.content})
        if followups:
            ro.messages.append(followups.pop(0))
            return True
        ro.final = parsed.content
        return False
    ro.steps.append(parsed.calls)
    ro.messages.append({"role": "assistant", "content": parsed.content,
                        "tool_calls": [{"type": "function", "function": c} for c in parsed.calls]})
    for call in parsed.calls:
        content, ok = domain.execute(env, call)  # never raises: a failed call is an error result the model reads
        ro.failed_calls += not ok
        ro.messages.append({"role": "tool", "name": call["name"], "content": content})
    return True


def run_episodes(model: Any, tok: Any, episodes: list[Episode], domain: Domain, system_prompt: str,
                 batch_size: int, max_new_tokens: int, max_turns: int, desc: str = "rollout",
                 sampling: Sampling | None = None, decode: Callable[..., list[str]] | None = None) -> list[Rollout]:
    """Roll every episode out in the simulator, `batch_size` conversations per forward pass.

    `max_turns` caps the assistant turns per user turn, so a multi_turn episode gets the cap for each request.
    Episodes are keyed by id: to roll one out several times, pass copies with distinct ids. With `sampling`, torch's
    global RNG is seeded with `sampling.seed` first, so a rerun with the same episodes, batch size and hardware
    draws the same samples. `decode` replaces `generate` (same signature; bench/bench_generate.py passes plain
    `model.generate` through it).
    """
    model.eval()
    decode = decode or generate
    if sampling is not None:
        torch.manual_seed(sampling.seed)
    envs = {e.id: domain.env() for e in episodes}
    rollouts = {e.id: Rollout(e.id, [{"role": "system", "content": system_prompt}] + e.prompt_messages())
                for e in episodes}
    followups = {e.id: [m for m in e.message_dicts()[len(e.prompt_messages()):] if m["role"] == "user"]
                 for e in episodes}
    tools = {e.id: e.tool_dicts() for e in episodes}
    catalog = {e.id: json.dumps(tools[e.id], sort_keys=True) for e in episodes}
    prefixes = PrefixCache(model, tok)
    live = [e.id for e in episodes]
    with tqdm(total=len(episodes), desc=desc, unit="ep") as bar:
        while live:
            still = []
            for ids in _batches(live, catalog, {j: rollouts[j].messages for j in live}, batch_size):
                texts = decode(model, tok, [rollouts[j].messages for j in ids], [tools[j] for j in ids],
                               max_new_tokens, prefixes, sampling)
                still += [j for j, text in zip(ids, texts)
                          if _advance(rollouts[j], text, envs[j], domain, followups[j])
                          and _turns_since_user(rollouts[j]) < max_turns]
            bar.update(len(live) - len(still))
            live = still
    for e in episodes:
        steps = [[c.model_dump() for c in s] for s in e.expected.steps]
        rollouts[e.id].goal_reached = domain.goal_reached(envs[e.id], steps, e.expected.goal)
    return [rollouts[e.id] for e in episodes]


def _turns_since_user(ro: Rollout) -> int:
    """Assistant turns since the latest user message (the turn cap applies per user turn)."""
    last_user = max(i for i, m in enumerate(ro.messages) if m["role"] == "user")
    return sum(m["role"] == "assistant" for m in ro.messages[last_user:])


def one_turn(model: Any, tok: Any, conversations: dict[str, list[dict]], tools: dict[str, list[dict]],
             batch_size: int, max_new_tokens: int, desc: str = "generate") -> dict[str, str]:
    """One greedy assistant turn for each conversation (id -> messages, with its tools), batched like
    `run_episodes`; nothing is executed. Returns id -> generated text."""
    model.eval()
    catalog = {j: json.dumps(t, sort_keys=True) for j, t in tools.items()}
    prefixes = PrefixCache(model, tok)
    out: dict[str, str] = {}
    with tqdm(total=len(conversations), desc=desc, unit="turn") as bar:
        for ids in _batches(list(conversations), catalog, conversations, batch_size):
            texts = generate(model, tok, [conversations[j] for j in ids], [tools[j] for j in ids], max_new_tokens,
                             prefixes)
            out.update(zip(ids, texts))
            bar.update(len(ids))
    return out


def _batches(live: list[str], catalog: dict[str, str], messages: dict[str, list[dict]],
             batch_size: int) -> list[list[str]]:
    """Batches of conversations with the same tool catalog (one shared prefix), similar lengths together."""
    order = sorted(live, key=lambda j: (catalog[j], len(json.dumps(messages[j])), j))
    out: list[list[str]] = []
    for j in order:
        if out and len(out[-1]) < batch_size and catalog[out[-1][0]] == catalog[j]:
            out[-1].append(j)
        else:
            out.append([j])
    return out


def to_json(ro: Rollout) -> str:
    return json.dumps(ro.__dict__, ensure_ascii=False)
