"""Continuous batching of assistant turns: the decoder behind `rollout.run_episodes`, `rollout.generate` and
`rollout.one_turn` (greedy, or sampled with a `Sampling`).

A *request* is one conversation that needs its next assistant turn. Its prompt splits into keys and values that
are already computed and tokens still to encode:
- a first turn reuses the shared system turn (instructions and tool list) from `PrefixCache`;
- a later turn reuses the conversation's own keys and values up to the first token where its re-rendered prompt
  differs from what was encoded and generated before (usually nothing: the template renders the model's own call
  back the way it was written), so only the tool results and the next user turn are encoded.
Requests are encoded ("prefilled") in groups of similar length and join the running batch, which decodes one token
per row per forward. A row whose turn ends hands its text to the caller's `on_turn`, which answers with that
conversation's next request (tool results, the user's next turn) or None; its keys and values are kept for it.
Once a share of the rows has ended (`PRUNE_SHARE`) the batch is rebuilt: ended rows leave, waiting requests join.
Rows of different conversations, catalogs and turns share the batch: each attends to its own keys only.
Keys and values live in preallocated buffers (`_Buffered`): a step writes one column where transformers'
`DynamicLayer` copies the whole cache.

With a call gate (components/training/gate.py) the engine forces the first token of a turn answering a first
request, and under constrained decoding runs the name check on that turn: when its first call names a tool the
model gives little probability among the offered ones, the turn is undone (its columns leave the attention mask)
and written as text. The value check does the same when a call of that turn closes with a string value the user
did not write and the model was unsure of.

A `trace` (components/training/engine_rollout.py, RL rollouts) is told every request's whole prompt ids and every
finished turn's token ids with their log-probabilities under the distribution sampled from (the grammar's and the
gate's masks applied) and without the masks, at the trace's `temperature`.

Exactness: positions follow the attention mask (padding may sit anywhere in a row), so each row decodes the tokens
it would decode alone, up to the float rounding of batched matrix products (tests compare with plain generate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

from components.toolcalls import response
from components.toolcalls.parse import OPEN
from components.training.gate import doubtful_value
from components.training.gate import name_state as gate_name_state

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each [rows, heads, tokens, head_dim]

# The batch is rebuilt once this share of its rows has ended: a rebuild copies every row's keys and values, so
# doing it for each single row would cost more than decoding a few idle rows.
PRUNE_SHARE = 0.25
# Padded tokens per prefill forward at most (memory of the attention scores), and the length spread in one group.
PREFILL_TOKENS = 8192
PREFILL_SPREAD = 1.5


@dataclass
class Request:
    """A conversation that needs its next assistant turn."""

    key: Any
    conversation: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


@dataclass
class _Row:
    key: Any
    fed: list[int]  # token ids whose keys and values are in the cache, in order
    new: list[int] = field(default_factory=list)  # ids to encode before this row decodes
    out: list[int] = field(default_factory=list)  # ids generated this turn
    matcher: Any = None  # the turn's grammar state under constrained decoding (components/evaluation/constrained.py)
    gated: bool = False  # the call gate decides this turn (it answers the conversation's first request)
    calls: bool | None = None  # the gate's decision, after the prefill (False also after a name refusal)
    start: torch.Tensor | None = None  # the logits of the turn's first token (a name refusal starts it again)
    text: str = ""  # the turn's text while the name check follows it (until its first call's name is closed)
    mass: float = 1.0  # the name mass of the turn's first call so far (the name check, components/training/gate.py)
    named: bool = False  # the turn's first call has its name (or was refused): nothing more to check
    logps: list[tuple[float, float]] = field(default_factory=list)  # with a trace: (sampled, unmasked) per token
    user: str = ""  # the value check: the user's turns (a value written there is not checked)
    pieces: list[str] = field(default_factory=list)  # the value check: the turn's tokens as text so far
    probs: list[float] = field(default_factory=list)  # ... and the model's own (unmasked) probability of each
    doubt: str | None = None  # the value check found a made-up value (`tool.argument`): undo the turn


class _Buffered(DynamicLayer):
    """A cache layer that writes into a preallocated buffer (grown by doubling when full)."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int) -> None:
        super().__init__()
        rows, heads, length, dim = keys.shape
        self._k = keys.new_zeros(rows, heads, max(capacity, length), dim)
        self._v = torch.zeros_like(self._k)
        self._k[:, :, :length], self._v[:, :, :length] = keys, values
        self._len = length
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        end = self._len + key_states.shape[-2]
        if end > self._k.shape[-2]:
            grown = torch.zeros(*self._k.shape[:2], max(end, 2 * self._k.shape[-2]), self._k.shape[-1],
                                dtype=self._k.dtype, device=self._k.device)
            self._k, self._v = (torch.cat([b[:, :, :self._len], grown[:, :, self._len:]], dim=2)
                                for b in (self._k, self._v))
        self._k[:, :, self._len:end], self._v[:, :, self._len:end] = key_states, value_states
        self._len = end
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        return self.keys, self.values


def _cache(blocks: list[tuple[KV, torch.Tensor]], capacity_extra: int) -> tuple[Cache, torch.Tensor]:
    """One batch cache from blocks of rows (their keys/values and attention masks), each left-padded to the longest
    block; returns the cache (room for `capacity_extra` more tokens) and the batch's attention mask."""
    width = max(mask.shape[1] for _, mask in blocks)
    rows = sum(mask.shape[0] for _, mask in blocks)
    layers = []
    for layer in range(len(blocks[0][0])):
        keys = blocks[0][0][layer][0]
        shape = (rows, keys.shape[1], width, keys.shape[3])
        k_all, v_all = keys.new_zeros(shape), keys.new_zeros(shape)
        start = 0
        for kv, mask in blocks:
            k, v = kv[layer]
            k_all[start:start + k.shape[0], :, width - k.shape[2]:] = k
            v_all[start:start + k.shape[0], :, width - k.shape[2]:] = v
            start += k.shape[0]
        layers.append(_Buffered(k_all, v_all, width + capacity_extra))
    mask = torch.cat([torch.nn.functional.pad(m, (width - m.shape[1], 0)) for _, m in blocks])
    return Cache(layers=layers), mask


def layers(cache: Cache) -> KV:
    """A cache's keys and values per layer."""
    return [(layer.keys, layer.values) for layer in cache.layers]


class Engine:
    """Decodes requests with continuous batching (see the module docstring).

    Args:
        model, tok: The model and its tokenizer (pad and end-of-turn tokens set).
        batch_size: Rows decoded together at most.
        max_new_tokens: Tokens per assistant turn at most (a turn cut there has no end-of-turn token).
        prefixes: The shared-prefix cache (`rollout.PrefixCache`), kept across calls by the caller.
        choose: Picks each row's next token from its logits [rows, vocab] (greedy: argmax).
        constrained: Mask each row's logits to its tool-call grammar first (tools offered in its prompt, their
            argument schemas; free text allowed), see components/evaluation/constrained.py.
        gated: Let the model's call gate decide first requests (False: the model's own first token decides, as in
            RL rollouts).
        trace: Told each request's prompt ids (`request(key, ids)`) and each finished turn (`turn(key, ids,
            logps)`), see the module docstring.
    """

    def __init__(self, model: Any, tok: Any, batch_size: int, max_new_tokens: int, prefixes: Any,
                 choose: Callable[[torch.Tensor], torch.Tensor], constrained: bool = False, gated: bool = True,
                 trace: Any = None) -> None:
        self.model, self.tok, self.prefixes, self.choose = model, tok, prefixes, choose
        self.grammar = None
        if constrained and response.grammar_fits(tok):
            from components.evaluation import constrained as grammar

            self.grammar = grammar
        self.gate = getattr(model, "call_gate", None) if gated and response.grammar_fits(tok) else None
        self.trace = trace
        if self.gate is not None:  # components/training/gate.py
            from components.training import gate

            self.open_token = gate.open_token(tok)
            self.no_lt = gate.no_lt_tokens(tok, model.get_output_embeddings().weight.shape[0]).to(model.device)
        # The name check needs the grammar (it knows which tokens continue an offered name) and a gate (its floor).
        self.name_floor = self.gate.name_floor if self.gate is not None and self.grammar is not None else 0.0
        self.value_floor = self.gate.value_floor if self.gate is not None and self.grammar is not None else 0.0
        self.doubts: list[tuple[Any, str]] = []  # (row key, tool.argument) of each turn the value check undid
        self.names: list[tuple[Any, float]] = []  # (row key, name mass) of each turn's first call, when checked
        self.refused: dict[Any, str] = {}  # row key -> the check that made its gated turn text: gate | name | value
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self._kept: dict[Any, tuple[list[int], KV]] = {}  # between turns: fed ids and their keys/values
        self.stats = {"prefill_tokens": 0, "padded_prefill_tokens": 0, "reused_tokens": 0, "steps": 0,
                      "rebuilds": 0}

    @torch.no_grad()
    def run(self, requests: Iterable[Request], on_turn: Callable[[Any, str], Request | None]) -> None:
        """Decode every request; `on_turn(key, text)` gets each finished turn (text up to and incl. end-of-turn) and
        returns that conversation's next request or None."""
        fresh, later = deque(requests), deque()
        batch: _Batch | None = None
        while fresh or later or batch is not None:
            if batch is None or batch.all_ended() or batch.ended_share() >= PRUNE_SHARE:
                batch = self._rebuild(batch, later, fresh)
                if batch is None:
                    continue
            for i, row in batch.choose(self):
                if self.trace is not None:
                    self.trace.turn(row.key, row.out, row.logps)
                nxt = on_turn(row.key, self._text(row.out))
                if nxt is not None:
                    self._kept[row.key] = (row.fed, batch.row_kv(i))
                    later.append(nxt)
            batch.forward(self)
            if batch.all_ended() and not (fresh or later):
                batch = None

    def _text(self, ids: list[int]) -> str:
        """A turn's text: every token the model wrote, the padding token too when it wrote one (a row's `out` holds
        no padding of the batch's)."""
        return self.tok.decode(ids, skip_special_tokens=False)

    def _rebuild(self, batch: _Batch | None, later: deque, fresh: deque) -> _Batch | None:
        """The next running batch: the rows of `batch` still decoding, and waiting requests (later turns first: their
        keys and values are held in memory) up to `batch_size`, encoded in groups of similar length."""
        blocks, rows, logits = [], [], []
        if batch is not None:
            kept = batch.kept()
            if kept is not None:
                blocks.append(kept[0])
                rows += kept[1]
                logits.append(kept[2])
        joining = []
        while (later or fresh) and len(rows) + len(joining) < self.batch_size:
            joining.append(self._prepare(later.popleft() if later else fresh.popleft()))
        for group in _groups(joining):
            block, group_logits = self._prefill(group)
            blocks.append(block)
            rows += [row for row, _ in group]
            logits.append(group_logits)
        if not rows:
            return None
        self.stats["rebuilds"] += 1
        cache, mask = _cache(blocks, self.max_new_tokens + 1)
        return _Batch(rows, cache, mask, torch.cat(logits), self.max_new_tokens, self.tok.eos_token_id)

    def _prepare(self, request: Request) -> tuple[_Row, KV | None]:
        """The row of a request and the keys/values it starts from (None: nothing encoded yet)."""
        prefix, rest = self.prefixes.split(request.conversation, request.tools)
        head, head_kv = self.prefixes.kv(prefix)
        ids = head + rest
        if self.trace is not None:
            self.trace.request(request.key, ids)
        fed, kv = self._kept.pop(request.key, (head, head_kv))
        same = 0
        for a, b in zip(fed, ids[:-1]):  # at least the last prompt token is encoded: its logits start the turn
            if a != b:
                break
            same += 1
        self.stats["reused_tokens"] += same
        kv = None if kv is None or same == 0 else [(k[:, :, :same], v[:, :, :same]) for k, v in kv]
        matcher = self.grammar.matcher(self.tok, request.tools) if self.grammar else None
        gated = self.gate is not None and _opening(request.conversation)
        user = " ".join(str(m.get("content") or "") for m in request.conversation
                        if m["role"] == "user") if gated and self.value_floor > 0 else ""
        return _Row(request.key, ids[:same], ids[same:], matcher=matcher, gated=gated, user=user), kv

    def _prefill(self, group: list[tuple[_Row, KV | None]]) -> tuple[tuple[KV, torch.Tensor], torch.Tensor]:
        """Encode a group's new tokens on top of their reused keys/values: (the group's block, last logits)."""
        past = max(len(row.fed) for row, _ in group)
        width = max(len(row.new) for row, _ in group)
        pad = self.tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r.new)) + r.new for r, _ in group], device=self.model.device)
        mask = torch.tensor([[0] * (past - len(r.fed)) + [1] * len(r.fed) + [0] * (width - len(r.new))
                             + [1] * len(r.new) for r, _ in group], device=self.model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
        cache = None
        if past:
            device = self.model.device
            blocks = [(kv, torch.ones(1, len(r.fed), dtype=torch.long, device=device)) if kv is not None else
                      (self._empty_kv(), torch.zeros(1, 0, dtype=torch.long, device=device)) for r, kv in group]
            cache, _ = _cache(blocks, width)
        hidden: list[torch.Tensor] = []
        gated = any(r.gated for r, _ in group)
        if gated:
            from components.training import gate

            handle = gate.hook(self.model, self.gate.layer, hidden)
        try:
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                             use_cache=True, logits_to_keep=1)
        finally:
            if gated:
                handle.remove()
        if gated:  # left padding: the last position is every row's last prompt token
            for (row, _), calls in zip(group, self.gate.calls(hidden[0]).tolist()):
                row.calls = calls if row.gated else None
                if row.gated and not calls:
                    self.refused[row.key] = "gate"
        self.stats["prefill_tokens"] += sum(len(r.new) for r, _ in group)
        self.stats["padded_prefill_tokens"] += len(group) * width
        for row, _ in group:
            row.fed, row.new = row.fed + row.new, []
        return (layers(out.past_key_values), mask), out.logits[:, -1]

    def _empty_kv(self) -> KV:
        cfg = self.model.config.get_text_config(decoder=True)
        dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        empty = torch.zeros(1, cfg.num_key_value_heads, 0, dim, device=self.model.device, dtype=self.model.dtype)
        return [(empty, empty)] * cfg.num_hidden_layers


def _opening(conversation: list[dict[str, Any]]) -> bool:
    """Whether the next turn answers the conversation's first request (a user turn, no assistant turn before): the
    turns the call gate was fit on and decides."""
    return bool(conversation) and conversation[-1]["role"] == "user" and all(
        m["role"] != "assistant" for m in conversation)


def _name_state(text: str) -> str | None:
    """`gate.name_state` of the text after a turn's first call tag; None before the tag."""
    return gate_name_state(text.split(OPEN, 1)[1]) if OPEN in text else None


def _groups(joining: list[tuple[_Row, KV | None]]) -> list[list[tuple[_Row, KV | None]]]:
    """Requests to encode, in groups of similar new-token counts (padding costs compute) within the token budget."""
    groups: list[list[tuple[_Row, KV | None]]] = []
    for item in sorted(joining, key=lambda x: len(x[0].new)):
        n = len(item[0].new)
        if groups and n <= PREFILL_SPREAD * len(groups[-1][0][0].new) and n * (len(groups[-1]) + 1) <= PREFILL_TOKENS:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


class _Batch:
    """The running rows: their cache, attention mask, next positions and the logits of their last position."""

    def __init__(self, rows: list[_Row], cache: Cache, mask: torch.Tensor, logits: torch.Tensor,
                 max_new_tokens: int, eos: int) -> None:
        self.rows, self.cache, self.mask, self.logits = rows, cache, mask, logits
        self.positions = mask.sum(-1, keepdim=True)
        self.ended = [False] * len(rows)
        self.max_new_tokens, self.eos = max_new_tokens, eos

    def ended_share(self) -> float:
        return sum(self.ended) / len(self.rows)

    def all_ended(self) -> bool:
        return all(self.ended)

    def choose(self, engine: Engine) -> list[tuple[int, _Row]]:
        """Choose each live row's next token; returns the rows whose turn ended with it (end-of-turn or the cap)."""
        logits = self.logits
        if engine.grammar is not None:
            matchers = [None if ended else row.matcher for row, ended in zip(self.rows, self.ended)]
            logits = engine.grammar.masked(engine.grammar.engine(engine.tok), matchers, logits)
            if engine.gate is not None:
                logits = self.check_names(engine, logits)
        if engine.gate is not None:
            logits = self.gated(engine, logits)
        self.tokens = engine.choose(logits)
        if engine.trace is not None:
            self.record(engine, logits)
        if engine.value_floor > 0:
            self.check_values(engine)
        done = []
        for i, (row, token) in enumerate(zip(self.rows, self.tokens.tolist())):
            if self.ended[i]:
                continue
            row.out.append(token)
            if row.matcher is not None and not row.matcher.accept_token(token):
                raise ValueError(f"{row.key}: token {token} is not allowed by its tool-call grammar")
            if row.gated and row.matcher is not None and not row.named:
                self.track(engine, row, token)
            if token == self.eos or len(row.out) >= self.max_new_tokens:
                self.ended[i] = True
                done.append((i, row))
            else:
                row.fed.append(token)
        return done

    def check_names(self, engine: Engine, logits: torch.Tensor) -> torch.Tensor:
        """The name check (components/training/gate.py): for each gated row writing its turn's first tool name,
        multiply its name mass by the share of the model's probability on the tokens the grammar allows (`logits`
        masked, `self.logits` not); a row whose mass falls below the gate's `name_floor` starts its turn again as a
        text answer (`refuse`). Also keeps each row's first-token logits for that."""
        refused = []
        for i, row in enumerate(self.rows):
            if self.ended[i] or row.matcher is None or not row.gated:
                continue
            if row.doubt is not None:
                refused.append(i)
            elif not row.out:
                row.start, row.text, row.mass, row.named = self.logits[i].clone(), "", 1.0, False
            elif not row.named and _name_state(row.text) == "name":
                row.mass *= float(torch.exp(logits[i].logsumexp(-1) - self.logits[i].logsumexp(-1)))
                if row.mass < engine.name_floor:
                    refused.append(i)
        if not refused:
            return logits
        logits = logits.clone()
        for i in refused:
            logits[i] = self.refuse(engine, i)
        return logits

    def refuse(self, engine: Engine, i: int) -> torch.Tensor:
        """Undo row `i`'s turn so far (its tokens leave the attention mask, its grammar starts again) and make it a
        text turn; returns its first token's logits, masked by the fresh grammar state."""
        row = self.rows[i]
        k = len(row.out)  # all fed: a token is fed by the `forward` after the `choose` that picked it
        self.mask[i, self.mask[i].nonzero().squeeze(1)[-k:]] = 0
        self.positions[i] = self.mask[i].sum()
        if row.doubt is not None:
            engine.doubts.append((row.key, row.doubt))
        else:
            engine.names.append((row.key, row.mass))
        engine.refused[row.key] = "name" if row.doubt is None else "value"
        row.fed, row.out, row.calls, row.named, row.logps = row.fed[:-k], [], False, True, []
        row.pieces, row.probs, row.doubt = [], [], None
        row.matcher.reset()
        return engine.grammar.masked(engine.grammar.engine(engine.tok), [row.matcher], row.start[None])[0]

    def check_values(self, engine: Engine) -> None:
        """The value check (components/training/gate.py) on each gated, calling row: follow its turn's tokens with
        the model's own probability of each (`self.logits`, before the grammar's mask) and, when a token closes a
        call, look for a made-up value; a row with one is undone by the next `check_names` (its token is fed first,
        as every chosen token is)."""
        live = [i for i, row in enumerate(self.rows)
                if not self.ended[i] and row.gated and row.calls and row.matcher is not None and row.doubt is None]
        if not live:
            return
        index = torch.tensor(live, device=self.tokens.device)
        probs = torch.softmax(self.logits[index].float(), -1).gather(-1, self.tokens[index, None])[:, 0].tolist()
        for i, p in zip(live, probs):
            row, piece = self.rows[i], engine.tok.decode([int(self.tokens[i])])
            row.pieces.append(piece)
            row.probs.append(p)
            if ">" in piece:  # perhaps a call's closing tag: check the turn's closed calls
                row.doubt = doubtful_value(row.pieces, row.probs, row.user, engine.value_floor)

    def record(self, engine: Engine, logits: torch.Tensor) -> None:
        """Record each live row's chosen token's log-probability at the trace's temperature, under the masked
        `logits` it was sampled from and under the model's own (`self.logits`)."""
        index = self.tokens[:, None]
        sampled, free = (torch.log_softmax(x.float() / engine.trace.temperature, -1).gather(-1, index)[:, 0].tolist()
                         for x in (logits, self.logits))
        for i, row in enumerate(self.rows):
            if not self.ended[i]:
                row.logps.append((sampled[i], free[i]))

    @staticmethod
    def track(engine: Engine, row: _Row, token: int) -> None:
        """Follow the text of row's turn up to its first call's closed tool name (then record its name mass)."""
        row.text += engine.tok.decode([token])
        if _name_state(row.text) == "named":
            row.named = True
            engine.names.append((row.key, row.mass))

    def gated(self, engine: Engine, logits: torch.Tensor) -> torch.Tensor:
        """The call gate's decisions applied: a calling turn starts with the call tag's first token (where its
        grammar allows it), a no-call turn never emits a token with `<` in it (so no call can start)."""
        rows = [(i, row.calls) for i, row in enumerate(self.rows) if not self.ended[i] and row.calls is not None
                and not (row.calls and row.out)]  # a calling turn is free after its first token
        if not rows:
            return logits
        logits = logits.clone()
        for i, calls in rows:
            if not calls:
                logits[i, engine.no_lt] = float("-inf")
            elif torch.isfinite(logits[i, engine.open_token]):
                keep = logits[i, engine.open_token].clone()
                logits[i] = float("-inf")
                logits[i, engine.open_token] = keep
        return logits

    def row_kv(self, i: int) -> KV:
        """Row `i`'s keys and values without padding (before the next `forward`): those of `row.fed`, in order."""
        columns = self.mask[i].nonzero().squeeze(1)
        return [(k[i:i + 1, :, columns], v[i:i + 1, :, columns]) for k, v in layers(self.cache)]

    def forward(self, engine: Engine) -> None:
        """Feed the chosen tokens (ended rows feed theirs too, unused until the rebuild drops them)."""
        engine.stats["steps"] += 1
        if self.all_ended():
            return
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        out = engine.model(input_ids=self.tokens[:, None], attention_mask=self.mask, position_ids=self.positions,
                           past_key_values=self.cache, use_cache=True)
        self.logits, self.positions = out.logits[:, -1], self.positions + 1

    def kept(self) -> tuple[tuple[KV, torch.Tensor], list[_Row], torch.Tensor] | None:
        """The rows still decoding as a block (keys/values, mask without all-padding columns), and their logits."""
        live = [i for i, e in enumerate(self.ended) if not e]
        if not live:
            return None
        index = torch.tensor(live, device=self.mask.device)
        mask = self.mask[index]
        first = int(mask.any(0).nonzero()[0])
        kv = [(k[index, :, first:], v[index, :, first:]) for k, v in layers(self.cache)]
        return (kv, mask[:, first:]), [self.rows[i] for i in live], self.logits[index]
