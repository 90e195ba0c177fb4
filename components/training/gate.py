"""The call gate: a linear probe that decides, before the first token of the assistant turn that answers a
conversation's first request, whether that turn calls a tool or answers in text.

A small model's first token decides the call / no-call question badly even when its hidden states know the answer:
on the 66-step travel model (seed 1), the first token's margin for `<` (the start of `<tool_call>`) over every
other token separates the held-out call and no-call requests with an AUC of 0.85, while a logistic regression on
the middle layer's last prompt position, fit on 600 training-split requests, reaches 0.98 (no call on 55 of 60
no-call requests, a call on 239 of 250 call requests; docs/call_gate.md). So the training stages fit that probe on
their saved model (`fit`: class-balanced, standardised features, L2-regularised), save it beside the weights
(`call_gate.safetensors`), `models.load` attaches it, and the decoding engine (components/evaluation/engine.py) reads
the layer's hidden state at the gated turn's last prompt token and forces the turn's first token: the call tag's
first token, or anything but it (and no `<` in the whole turn, so no call can start later). Later turns (after tool
results, or a user's follow-up) are not gated: the probe is fit on first requests only, and on follow-ups it
refused calls (multi-turn 40 -> 0 % on the seed-1 weighted model); whether to call again or answer is the model's.

The name check (`name_floor`, `decoding.call_gate_name_floor`). A probe on one hidden state does not read the offered
tool list against the request, and constrained decoding turns a call of a tool the prompt does not offer (the
model's `hallucinated_tool`) into a call of an offered one. But the model shows which tool it wants where it writes
the name: its *name mass* is the product, over the steps that write a turn's first tool name (from `{"name":` to the
closing quote), of the share of its probability that the grammar's allowed tokens hold (the names offered). A mass
under the floor means the model mostly wanted a name it was not given; the engine then undoes the turn (its tokens
leave the attention mask, the grammar starts again) and writes it as a text answer, as a refusing gate would. The
check needs constrained decoding and runs on the turns the gate decides (those it was measured on: first requests).

The value check (`value_floor`, `decoding.call_gate_value_floor`). The no-call requests the gate lets through are
mostly ones that sound like the domain: a request that lacks a required detail ("the outlook 12 to 15 July", no
city), or one no offered tool serves ("a dinner reservation in Rio"). Under constrained decoding the call must carry
every required argument, so the model makes values up ("Paris"), and it is unsure of them: a value a call copies or
converts from the request gets most of the model's probability on each of its tokens. When a call of such a turn
closes, a string value the user did not write (not a case-insensitive part of the user's turns) with a token under
the floor (the model's own probability, before the grammar's mask) undoes the turn as the name check does, and it is
written as text. Numbers and booleans are not checked. `bench/value_check.py` measured it (docs/call_gate.md).
"""

from __future__ import annotations

import copy
import json
import random
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from components.toolcalls import render
from components.training import models

FILE = "call_gate.safetensors"
CALL_OPEN = "<tool_call>"  # the project template's call tag (components/toolcalls/parse.py)
CALL_CLOSE = "</tool_call>"


@dataclass
class CallGate:
    """`layer`: index into the model's hidden states (0 = embeddings, k = output of decoder layer k - 1)."""

    layer: int
    weight: torch.Tensor  # [hidden]
    bias: float
    mean: torch.Tensor
    std: torch.Tensor
    name_floor: float = 0.0  # the name check (module docstring); 0: off
    value_floor: float = 0.0  # the value check (module docstring); 0: off

    def score(self, hidden: torch.Tensor) -> torch.Tensor:
        """The probe's logit for each row of `hidden` ([rows, hidden], the gate layer's last prompt position), on
        `hidden`'s device (the probe's tensors follow it there once: a model on a GPU keeps its gate there)."""
        if self.weight.device != hidden.device:
            self.weight, self.mean, self.std = (t.to(hidden.device) for t in (self.weight, self.mean, self.std))
        return ((hidden.float() - self.mean) / self.std) @ self.weight + self.bias

    def calls(self, hidden: torch.Tensor) -> torch.Tensor:
        """Whether each row of `hidden` should call."""
        return self.score(hidden) > 0

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FILE
        save_file({"weight": self.weight.cpu().contiguous(), "mean": self.mean.cpu().contiguous(),
                   "std": self.std.cpu().contiguous(),
                   "bias": torch.tensor([self.bias]), "layer": torch.tensor([self.layer]),
                   "name_floor": torch.tensor([self.name_floor]),
                   "value_floor": torch.tensor([self.value_floor])}, str(path))
        return path


def load(folder: str | Path, model: Any = None) -> CallGate | None:
    """The gate saved in a model folder, or None; checked against `model` when given.

    Raises:
        ValueError: the file lacks a tensor, or its layer or width is not the model's (a gate copied from another
            model): the file and what differs named.
    """
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    t = load_file(str(path))
    missing = sorted({"weight", "mean", "std", "bias", "layer"} - set(t))
    if missing:
        raise ValueError(f"{path}: call gate without {missing}; delete it (decoding.call_gate refits it)")
    floors = [float(t[k].item()) if k in t else 0.0 for k in ("name_floor", "value_floor")]  # saved before: off
    found = CallGate(int(t["layer"].item()), t["weight"], float(t["bias"].item()), t["mean"], t["std"], *floors)
    if model is not None:
        cfg = model.config.get_text_config(decoder=True)
        widths = {found.weight.shape[0], found.mean.shape[0], found.std.shape[0]}
        if widths != {cfg.hidden_size} or not 1 <= found.layer <= cfg.num_hidden_layers:
            raise ValueError(f"{path}: call gate for hidden size {sorted(widths)} at layer {found.layer}, but the "
                             f"model has hidden size {cfg.hidden_size} and {cfg.num_hidden_layers} layers: it was fit "
                             f"on another model; delete it or refit it (decoding.call_gate)")
    return found


def default_layer(model: Any) -> int:
    """The middle of the decoder (the probe's best layer on SmolLM2: output of layer 15 of 30)."""
    return max(1, model.config.get_text_config(decoder=True).num_hidden_layers // 2)


class _Stop(Exception):
    pass


def hook(model: Any, layer: int, sink: list[torch.Tensor], stop: bool = False) -> Any:
    """Record (in `sink`) hidden state `layer` at each forward: its last position ([rows, hidden]), or with `stop`
    every position ([rows, tokens, hidden]) and end the forward there (raises `_Stop`, caught by `features`).
    Returns the hook handle."""
    def on_output(_module: Any, _args: Any, output: Any) -> None:
        hidden = (output[0] if isinstance(output, tuple) else output).detach()
        if stop:
            sink.append(hidden)
            raise _Stop
        sink.append(hidden[:, -1])

    stack = models.decoder_stack(model, "decoding.call_gate", "false")[1]
    if not 1 <= layer <= len(stack):
        raise ValueError(f"decoding.call_gate_layer {layer}: the model has decoder layers 1 to {len(stack)}")
    return stack[layer - 1].register_forward_hook(on_output)


SHARED_MIN = 16  # tokens: a start every prompt shares at least this long runs once (its keys and values reused)


@torch.no_grad()
def features(model: Any, tok: Any, prompts: list[str], layer: int, batch_size: int = 8) -> torch.Tensor:
    """Hidden state `layer` at the last token of each prompt text ([n, hidden]); the forward stops at that layer.

    The start all prompts share (a catalog domain's system turn with its tools: most of each prompt) runs once and
    every batch continues from its keys and values; the rest of each prompt is right-padded, so its last token is
    at its own length."""
    from transformers import DynamicCache

    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    shared = 0
    if ids:
        limit, first = min(len(x) for x in ids) - 1, ids[0]
        while shared < limit and all(x[shared] == first[shared] for x in ids):
            shared += 1
    shared = shared if shared >= SHARED_MIN else 0
    device, out, sink = model.device, [], []
    handle = hook(model, layer, sink, stop=True)
    try:
        head = None
        if shared:
            head = DynamicCache()
            try:  # fills the cache up to the gate layer, then stops
                model(input_ids=torch.tensor([ids[0][:shared]], device=device), past_key_values=head, use_cache=True)
            except _Stop:
                sink.clear()
        for i in range(0, len(ids), batch_size):
            rests = [x[shared:] for x in ids[i:i + batch_size]]
            width = max(len(r) for r in rests)
            batch = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rests], device=device)
            mask = torch.tensor([[1] * (shared + len(r)) + [0] * (width - len(r)) for r in rests], device=device)
            cache = None
            if head is not None:
                cache = copy.deepcopy(head)
                cache.batch_repeat_interleave(len(rests))
            try:
                model(input_ids=batch, attention_mask=mask, past_key_values=cache, use_cache=cache is not None,
                      position_ids=torch.arange(shared, shared + width, device=device).expand(len(rests), -1))
            except _Stop:
                hidden = sink.pop()
                last = torch.tensor([len(r) - 1 for r in rests], device=hidden.device)
                out.append(hidden[torch.arange(len(rests), device=hidden.device), last].float().cpu())
    finally:
        handle.remove()
    return torch.cat(out) if out else torch.zeros(0, model.config.get_text_config(decoder=True).hidden_size)


def requests(episodes: list[Any], system_prompt: str, tok: Any, n: int, seed: int) -> tuple[list[str], list[bool]]:
    """Up to `n` first-turn generation prompts of `episodes` (half no-call where there are enough) and whether each
    calls; rendered as the engine renders them."""
    rng = random.Random(seed)
    no_call = [e for e in episodes if not e.expected.steps or not e.expected.steps[0]]
    call = [e for e in episodes if e.expected.steps and e.expected.steps[0]]
    rng.shuffle(no_call)
    rng.shuffle(call)
    k = min(len(no_call), n // 2)
    chosen = no_call[:k] + call[:n - k]
    return [first_request(e, system_prompt, tok)[0] for e in chosen], [False] * k + [True] * (len(chosen) - k)


def first_request(episode: Any, system_prompt: str, tok: Any) -> tuple[str, bool]:
    """The generation prompt of the turn answering an episode's first request, rendered as the engine renders it,
    and whether that turn calls."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    steps = episode.expected.steps
    return render.prompt(tok, system + episode.prompt_messages(), episode.tool_dicts()), bool(steps and steps[0])


def fit_probe(x: torch.Tensor, y: torch.Tensor, l2: float = 1.0, steps: int = 200) -> tuple[torch.Tensor, float]:
    """Class-balanced logistic regression on standardised `x` (L-BFGS): (weight, bias)."""
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    pos = y.float().mean().clamp(1e-3, 1 - 1e-3)
    sample = torch.where(y, 0.5 / pos, 0.5 / (1 - pos))
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        value = (torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y.float(), weight=sample)
                 + l2 * (w @ w) / (2 * len(x)))
        value.backward()
        return value

    opt.step(loss)
    return w.detach(), float(b.item())


def fit(model: Any, tok: Any, episodes: list[Any], system_prompt: str, n: int = 600, seed: int = 0,
        layer: int | None = None, l2: float = 1.0,
        no_call_recall: float | None = None) -> tuple[CallGate | None, dict[str, float]]:
    """Fit the gate on up to `n` first-turn requests of `episodes` (training split); None when they are all of one
    kind (nothing to decide). `no_call_recall`: move the threshold until at least that share of the no-call requests
    is refused in 5-fold cross-validation (None: the class-balanced fit's own threshold).

    Returns the gate and its metrics: examples, no-call examples, training accuracy per class, the
    cross-validated (out-of-fold) accuracy per class and AUC at the threshold used, and the seconds the fit took.
    """
    start = time.perf_counter()
    prompts, calls = requests(episodes, system_prompt, tok, n, seed)
    y = torch.tensor(calls, dtype=torch.bool)
    metrics = {"call_gate_examples": float(len(y)), "call_gate_no_call_examples": float((~y).sum())}
    if len(y) == 0 or y.all() or not y.any():
        return None, metrics
    layer = default_layer(model) if layer is None else layer
    model.eval()
    x = features(model, tok, prompts, layer)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    weight, bias = fit_probe((x - mean) / std, y, l2)
    held = out_of_fold(x, y, l2, seed)
    shift = threshold_shift(held, y, no_call_recall)
    gate = CallGate(layer, weight, bias - shift, mean, std)
    said, cv = gate.calls(x), held > shift
    metrics |= {"call_gate_train_call": float(said[y].float().mean()),
                "call_gate_train_no_call": float((~said[~y]).float().mean()),
                "call_gate_cv_call": float(cv[y].float().mean()), "call_gate_cv_no_call": float((~cv[~y]).float().mean()),
                "call_gate_cv_auc": auc(held, y), "call_gate_threshold_shift": shift,
                "call_gate_seconds": time.perf_counter() - start}
    return gate, metrics


def threshold_shift(held: torch.Tensor, y: torch.Tensor, no_call_recall: float | None) -> float:
    """How far (in logits, >= 0) the threshold moves so that at least `no_call_recall` of the no-call requests
    (`~y`) score at or below it out of fold (`held`); 0 for None or no no-call request."""
    if no_call_recall is None or not len(held[~y]):
        return 0.0
    return max(0.0, float(torch.quantile(held[~y], no_call_recall)))


def out_of_fold(x: torch.Tensor, y: torch.Tensor, l2: float, seed: int, folds: int = 5) -> torch.Tensor:
    """Each example's probe score (logit) from a probe fit on the other folds (standardised on them too)."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    scores = torch.zeros(len(y))
    for k in range(folds):
        test = order[k::folds]
        train = torch.ones(len(y), dtype=torch.bool)
        train[test] = False
        if y[train].all() or not y[train].any():  # a fold of one class only: nothing to fit
            continue
        mean, std = x[train].mean(0), x[train].std(0).clamp(min=1e-6)
        w, b = fit_probe((x[train] - mean) / std, y[train], l2)
        scores[test] = ((x[test] - mean) / std) @ w + b
    return scores


def auc(score: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve: the chance a random call request scores above a random no-call one (ties count
    half); nan with one class only."""
    pos, neg = score[y], score[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None, :]).float() + 0.5 * (pos[:, None] == neg[None, :]).float()).mean())


_NO_LT: weakref.WeakKeyDictionary[Any, dict[int, torch.Tensor]] = weakref.WeakKeyDictionary()


def no_lt_tokens(tok: Any, n: int) -> torch.Tensor:
    """Mask over the model's `n` logits of the tokens whose text contains `<` (a gated no-call turn may not emit
    them); built once per tokenizer (a pass over the vocabulary: 77 ms for SmolLM2's, and every served request builds
    an engine)."""
    known = _NO_LT.setdefault(tok, {})
    if n not in known:
        known[n] = _no_lt(tok, n)
    return known[n]


def _no_lt(tok: Any, n: int) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    special = set(tok.all_special_ids)  # the end-of-turn token stays allowed
    for text, i in tok.get_vocab().items():
        if i < n and i not in special and "<" in tok.convert_tokens_to_string([text]):
            mask[i] = True
    return mask


NAME_HEAD = '{"name":'  # how a call's JSON starts after the tag (templates/chatml_tools.jinja, the grammar's tags)


def name_state(call: str) -> str | None:
    """Where the text after a turn's first call tag stands: "name" while the tool's name is being written (from
    `{"name":` up to its closing quote, so the step that writes the opening quote counts too: a tokenizer may merge
    it with the name's first letters), "named" once it is closed, None before `{"name":` is complete."""
    if not call.startswith(NAME_HEAD):
        return None
    rest = call[len(NAME_HEAD):].lstrip(" ")
    return "name" if not rest or (rest[0] == '"' and '"' not in rest[1:]) else "named"


def open_token(tok: Any) -> int:
    """The first token of the call tag, as the template writes it at the start of a turn."""
    return tok(CALL_OPEN, add_special_tokens=False)["input_ids"][0]


def doubtful_value(pieces: list[str], probs: list[float], user: str, floor: float) -> str | None:
    """The value check (module docstring) on a turn's text so far, given as the decoded `pieces` of its tokens with
    the model's own probability of each: the first argument of its closed calls whose value is a string not in
    `user` (the user's turns) with a token under `floor`, as `name.argument`; None when there is none."""
    for call, argument, value, lowest in value_probabilities(pieces, probs):
        if isinstance(value, str) and not written(value, user) and lowest < floor:
            return f"{call.get('name')}.{argument}"
    return None


def written(value: str, user: str) -> bool:
    """Whether the user wrote `value`: a case-insensitive part of `user` (the user's turns), spaces at its ends
    aside."""
    return value.strip().lower() in user.lower()


def value_probabilities(pieces: list[str], probs: list[float]) -> list[tuple[dict, str, Any, float]]:
    """(call, argument, value, lowest probability of a token of it) for each argument value of the closed calls in
    the text of `pieces` (decoded tokens, each with its probability in `probs`); a string's quotes are not part of
    it. A value written in another form than `json.dumps` gives (an escape the model chose) is not found and left
    out."""
    text, spans, start = "".join(pieces), [], 0
    for piece in pieces:
        spans.append((start, start + len(piece)))
        start += len(piece)
    out = []
    for call, body, offset in _closed_calls(text):
        for argument, value, begin, end in _value_spans(call, body):
            begin, end = begin + offset, end + offset
            inside = [p for (a, b), p in zip(spans, probs) if a < end and b > begin]
            if inside:
                out.append((call, argument, value, min(inside)))
    return out


def _closed_calls(text: str) -> list[tuple[dict, str, int]]:
    """Each closed `<tool_call>...</tool_call>` of `text` whose body parses as a JSON object: (the object, the body,
    the body's offset in `text`)."""
    out, pos = [], 0
    while (head := text.find(CALL_OPEN, pos)) >= 0 and (tail := text.find(CALL_CLOSE, head)) >= 0:
        body = text[head + len(CALL_OPEN):tail]
        pos = tail + len(CALL_CLOSE)
        try:
            call = json.loads(body)
        except ValueError:
            continue
        if isinstance(call, dict):
            out.append((call, body, head + len(CALL_OPEN)))
    return out


def _value_spans(call: dict, body: str) -> list[tuple[str, Any, int, int]]:
    """(argument, value, start, end) of each argument of `call` in its text `body`, each searched, in order, after
    its key, as `json.dumps` writes it (a string's span is inside its quotes)."""
    out, pos = [], 0
    arguments = call.get("arguments")
    for argument, value in (arguments.items() if isinstance(arguments, dict) else []):
        key = json.dumps(argument, ensure_ascii=False)
        head = body.find(key, pos)
        if head < 0:
            continue
        literal = json.dumps(value, ensure_ascii=False)
        begin = body.find(literal, head + len(key))
        if begin < 0:
            continue
        pos = begin + len(literal)
        quoted = isinstance(value, str)
        out.append((argument, value, begin + quoted, pos - quoted))
    return out
