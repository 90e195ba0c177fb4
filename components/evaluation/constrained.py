"""Constrained decoding of tool calls: each generated turn is free text or the project's `<tool_call>` blocks,
where every call names a tool offered in that row's prompt and its arguments follow that tool's JSON Schema.

The engine is xgrammar (https://github.com/mlc-ai/xgrammar, the one vLLM and SGLang use); this module only
writes the structural tag for a tool list and drives xgrammar's matchers. The grammar of one turn:

    turn  := text (call text)* <|im_end|>
    call  := '<tool_call>{"name": "' NAME '", "arguments": ' ARGS '}</tool_call>'

- `text` is any text without `<tool_call>` (which starts a call), `</tool_call>` (a stray one makes the parser's
  tag count unbalanced), `<|im_end|>`/`<|im_start|>` spelled in plain tokens, or the tokenizer's special tokens
  other than the end of turn. Text before a call is allowed because the template writes it (`content`, a
  newline, then the calls) and `parse_output` reads it; text after a call is allowed because the parser reads
  it too (into `content`) and forbidding it would only cost a longer grammar.
- `NAME` is one of the row's tools; `ARGS` follows its `parameters` schema in declared property order, required
  keys present, no keys beyond `properties` (the scorer's `unknown_argument` rule, whatever the schema's
  `additionalProperties` says), types and enums kept; string values may not hold the tags or `<|im_end|>`.
  At most one whitespace character in a row inside the JSON: a random or weak model would otherwise pad forever.
- The call separators are those of `templates/chatml_tools.jinja` and HF's `tojson` (`", "`, `": "`).

A turn cut off by `max_new_tokens` inside a call is still unparsable: the grammar cannot make a turn shorter.

Log-probabilities: the constrained policy is `softmax(mask(logits))`, i.e. the model's distribution renormalised
over the allowed tokens, so its log-probability of a token is `log_softmax(mask(logits))[token]`
(`constrained_logprobs` computes it for whole sequences, differentiably). A trainer that scores completions
with plain `log_softmax(logits)` sees the unconstrained policy instead; the two differ by `log Z`, the log of
the probability mass the model put on allowed tokens (0 where the model already followed the grammar).
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import xgrammar as xgr
from transformers import LogitsProcessor

from components.toolcalls import response
from components.toolcalls.parse import CLOSE, END, OPEN

START = "<|im_start|>"
# Never in free text. OPEN is not listed: it is the trigger, so free text cannot hold it anyway (it starts a call),
# and listing it would also forbid the trigger itself (xgrammar 0.2.8 then refuses the `>` of `<tool_call>`).
_TEXT_EXCLUDES = [CLOSE, END, START]
_STRING_EXCLUDES = [OPEN, CLOSE, END, START]  # never inside a JSON string value


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    """The function part of an OpenAI tool dict (a bare function dict is accepted too, as the template does)."""
    fn = tool.get("function", tool)
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"tool {json.dumps(tool)[:120]}: no string function name (rule: OpenAI tool dict)")
    return fn


def _arguments_schema(fn: dict[str, Any]) -> dict[str, Any]:
    """The tool's `parameters`, closed at the top: the scorer counts any key outside `properties` as unknown."""
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return {**params, "additionalProperties": False}


def structural_tag(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The xgrammar structural tag (JSON form) of one turn offering `tools` (see the module docstring)."""
    if not tools:
        return {"type": "structural_tag", "format": {"type": "any_text", "excludes": _TEXT_EXCLUDES}}
    tags = []
    for fn in map(_function, tools):
        tags.append({
            "type": "tag",
            "begin": f'{OPEN}{{"name": {json.dumps(fn["name"])}, "arguments": ',
            "content": {"type": "json_schema", "json_schema": _arguments_schema(fn), "max_whitespace_cnt": 1,
                        "excludes": _STRING_EXCLUDES},
            "end": f"}}{CLOSE}",
        })
    return {"type": "structural_tag", "format": {"type": "triggered_tags", "triggers": [OPEN], "tags": tags,
                                                 "excludes": _TEXT_EXCLUDES}}


@dataclass
class _Engine:
    """xgrammar's view of one tokenizer, and the grammars compiled for it (one per distinct tool list)."""

    info: xgr.TokenizerInfo
    compiler: xgr.GrammarCompiler
    stop_id: int
    keep: torch.Tensor  # word mask clearing the special tokens other than the stop token: never generated
    only_stop: torch.Tensor  # bitmask row allowing just the stop token (a finished row)
    grammars: dict[str, xgr.CompiledGrammar] = field(default_factory=dict)

    @property
    def n_vocab(self) -> int:
        return self.info.vocab_size

    def grammar(self, tools: list[dict[str, Any]]) -> xgr.CompiledGrammar:
        # Keyed on the JSON as given, not sorted: property order is part of the grammar.
        key = json.dumps(tools, ensure_ascii=False)
        if key not in self.grammars:
            try:
                tag = xgr.StructuralTag.from_json(structural_tag(tools))
                self.grammars[key] = self.compiler.compile_structural_tag(tag)
            except (RuntimeError, ValueError) as err:
                names = [_function(t)["name"] for t in tools]
                raise ValueError(f"tools {names}: xgrammar cannot compile their schemas: {err}") from err
        return self.grammars[key]


_ENGINES: weakref.WeakKeyDictionary[Any, _Engine] = weakref.WeakKeyDictionary()


def engine(tok: Any) -> _Engine:
    """The (cached) xgrammar engine of a Hugging Face tokenizer; its end of turn `<|im_end|>` stops a turn."""
    if tok not in _ENGINES:
        if response.native(tok) is not None:
            raise ValueError(f"decoding.constrained: the model writes its own tool syntax ({type(tok).__name__} has a "
                             "response template of its own) and the grammar writes the project's ChatML "
                             "<tool_call> blocks; set decoding.constrained: false for this model")
        stop_id = tok.convert_tokens_to_ids(END)
        if stop_id is None or stop_id == tok.unk_token_id:
            raise ValueError(f"tokenizer {type(tok).__name__}: no {END} token (rule: ChatML end of turn)")
        n_vocab = max(len(tok), max(tok.get_vocab().values()) + 1)
        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=n_vocab, stop_token_ids=[stop_id])
        special = {i for i in tok.all_special_ids} | {i for i, t in tok.added_tokens_decoder.items() if t.special}
        keep = _word_mask([i for i in special if i != stop_id and i < n_vocab], n_vocab)
        only_stop = ~_word_mask([stop_id], n_vocab)
        _ENGINES[tok] = _Engine(info, xgr.GrammarCompiler(info, max_threads=2), stop_id, keep, only_stop)
    return _ENGINES[tok]


def _word_mask(ids: list[int], n: int) -> torch.Tensor:
    """An int32 word mask [ceil(n/32)] with the bits of `ids` cleared: AND it into a bitmask to ban them."""
    bits = torch.ones(_n_words(n) * 32, dtype=torch.bool)
    bits[ids] = False
    return _pack(bits)


def _pack(bits: torch.Tensor) -> torch.Tensor:
    """Bool [32 k] as xgrammar's packed int32 words [k] (bit j of word w = token 32 w + j)."""
    weights = torch.tensor([1 << j for j in range(32)], dtype=torch.int64)
    words = (bits.view(-1, 32).long() * weights).sum(-1)
    return torch.where(words >= 1 << 31, words - (1 << 32), words).to(torch.int32)


def _n_words(n: int) -> int:
    return (n + 31) // 32


def matcher(tok: Any, tools: list[dict[str, Any]] | None) -> xgr.GrammarMatcher:
    """A fresh grammar state for one turn offered `tools` (none: text only)."""
    return xgr.GrammarMatcher(engine(tok).grammar(tools or []))


def bitmask(eng: _Engine, matchers: list[xgr.GrammarMatcher | None]) -> torch.Tensor:
    """Packed bitmask [len(matchers), ceil(n/32)] of the tokens each row may take next; a finished row (or None)
    may only repeat the end of turn."""
    out = xgr.allocate_token_bitmask(len(matchers), eng.n_vocab)
    for i, m in enumerate(matchers):
        # One matcher at a time: xgrammar's BatchGrammarMatcher (threads) measured 4-40x slower here, a fill
        # takes microseconds and the machine has two cores.
        if m is None or m.is_terminated():
            out[i] = eng.only_stop
        else:
            m.fill_next_token_bitmask(out, i)
    return out & eng.keep


def masked(eng: _Engine, matchers: list[xgr.GrammarMatcher | None], logits: torch.Tensor) -> torch.Tensor:
    """`logits` [rows, V] with every token a row's matcher does not allow at -inf (a new tensor, differentiable);
    ids past the tokenizer's vocabulary (a padded lm_head) are never allowed."""
    n, width = eng.n_vocab, logits.shape[-1]
    penalty = torch.zeros(logits.shape, dtype=logits.dtype, device=logits.device)
    if width > n:
        penalty[:, n:] = float("-inf")
    xgr.apply_token_bitmask_inplace(penalty, bitmask(eng, matchers).to(logits.device), vocab_size=min(n, width))
    return logits + penalty


class Constraint:
    """Per-row grammar state for one batched generate call: `mask` the logits, pick tokens, `advance`.

    Rows are the caller's batch indices (0 .. len(tools_per_row) - 1); each row has its own tool list.
    """

    def __init__(self, tok: Any, tools_per_row: list[list[dict[str, Any]]]) -> None:
        """Args:
            tok: The Hugging Face tokenizer the model generates with.
            tools_per_row: Per batch row, the OpenAI tool dicts offered in that row's prompt.
        """
        self.engine = engine(tok)
        self.matchers = [xgr.GrammarMatcher(self.engine.grammar(tools)) for tools in tools_per_row]

    def done(self, row: int) -> bool:
        """Whether the row's turn has ended (its end-of-turn token accepted)."""
        return self.matchers[row].is_terminated()

    def bitmask(self, rows: list[int]) -> torch.Tensor:
        """xgrammar's packed bitmask [len(rows), ceil(n/32)] of the tokens each row may take next (n: the
        tokenizer's vocabulary); a finished row may only repeat the end of turn (as generate pads with it)."""
        return bitmask(self.engine, [self.matchers[r] for r in rows])

    def mask(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Logits [len(rows), V] of those rows with every disallowed token at -inf: a new tensor, differentiable
        in `logits`. Ids past the tokenizer's vocabulary (a padded lm_head) are never allowed."""
        if logits.shape[0] != len(rows):
            raise ValueError(f"mask: {logits.shape[0]} logit rows for {len(rows)} batch rows")
        return masked(self.engine, [self.matchers[r] for r in rows], logits)

    def advance(self, rows: list[int], tokens: list[int]) -> None:
        """Accept each row's chosen token; a token the mask did not allow is an error (a caller bug)."""
        for row, token in zip(rows, tokens, strict=True):
            if token >= self.engine.n_vocab or not self.matchers[row].accept_token(int(token)):
                raise ValueError(f"row {row}: token {token} is not allowed by its tool-call grammar "
                                 "(was it picked from masked logits?)")


class ConstrainedLogitsProcessor(LogitsProcessor):
    """`model.generate(..., logits_processor=LogitsProcessorList([ConstrainedLogitsProcessor(tok, tools)]))`.

    The first call sees the prompts; each later call first accepts the token generate appended to every row
    still in its turn. Rows generate has finished (pad tokens after the end of turn) are left alone.
    """

    def __init__(self, tok: Any, tools_per_row: list[list[dict[str, Any]]]) -> None:
        self.constraint = Constraint(tok, tools_per_row)
        self._prompt_len: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = list(range(input_ids.shape[0]))
        if len(rows) != len(self.constraint.matchers):
            raise ValueError(f"generate batch of {len(rows)} rows for {len(self.constraint.matchers)} tool lists "
                             "(beams and num_return_sequences > 1 are not supported)")
        if self._prompt_len is None:
            self._prompt_len = input_ids.shape[1]
        else:
            live = [r for r in rows if not self.constraint.done(r)]
            self.constraint.advance(live, input_ids[live, -1].tolist())
        return self.constraint.mask(scores, rows)


def constrained_logprobs(tok: Any, tools_per_row: list[list[dict[str, Any]]], logits: torch.Tensor,
                         tokens: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of generated tokens under the constrained policy, differentiable in `logits`.

    Args:
        tok: The tokenizer the tokens came from.
        tools_per_row: Per row, the tools offered in its prompt.
        logits: [B, T, V] the model's logits at the T completion positions (the ones that predicted `tokens`).
        tokens: [B, T] the completion tokens; anything after a row's end of turn (padding) is ignored.

    Returns:
        [B, T] `log_softmax(mask(logits))` at each token; 0 after a row's end of turn.
    """
    constraint = Constraint(tok, tools_per_row)
    rows = list(range(tokens.shape[0]))
    out = torch.zeros(tokens.shape, dtype=logits.dtype, device=logits.device)
    for t in range(tokens.shape[1]):
        live = [r for r in rows if not constraint.done(r)]
        if not live:
            break
        masked = constraint.mask(logits[live, t], live)
        picked = tokens[live, t]
        out[live, t] = masked.log_softmax(-1).gather(-1, picked.unsqueeze(-1)).squeeze(-1)
        constraint.advance(live, picked.tolist())
    return out
