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
"""

from __future__ import annotations

import random
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


@dataclass
class CallGate:
    """`layer`: index into the model's hidden states (0 = embeddings, k = output of decoder layer k - 1)."""

    layer: int
    weight: torch.Tensor  # [hidden]
    bias: float
    mean: torch.Tensor
    std: torch.Tensor

    def calls(self, hidden: torch.Tensor) -> torch.Tensor:
        """Whether each row of `hidden` ([rows, hidden], the gate layer's last prompt position) should call."""
        x = (hidden.float() - self.mean) / self.std
        return (x @ self.weight + self.bias) > 0

    def save(self, folder: Path) -> Path:
        path = Path(folder) / FILE
        save_file({"weight": self.weight.contiguous(), "mean": self.mean.contiguous(), "std": self.std.contiguous(),
                   "bias": torch.tensor([self.bias]), "layer": torch.tensor([self.layer])}, str(path))
        return path


def load(folder: str | Path) -> CallGate | None:
    """The gate saved in a model folder, or None."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    t = load_file(str(path))
    return CallGate(int(t["layer"].item()), t["weight"], float(t["bias"].item()), t["mean"], t["std"])


def default_layer(model: Any) -> int:
    """The middle of the decoder (the probe's best layer on SmolLM2: output of layer 15 of 30)."""
    return max(1, model.config.get_text_config(decoder=True).num_hidden_layers // 2)


class _Stop(Exception):
    def __init__(self, hidden: torch.Tensor) -> None:
        self.hidden = hidden


def hook(model: Any, layer: int, sink: list[torch.Tensor], stop: bool = False) -> Any:
    """Record (in `sink`) the last position of hidden state `layer` at each forward; `stop`: end the forward there
    (raises `_Stop`, caught by `features`). Returns the hook handle."""
    def on_output(_module: Any, _args: Any, output: Any) -> None:
        hidden = (output[0] if isinstance(output, tuple) else output)[:, -1].detach()
        if stop:
            raise _Stop(hidden)
        sink.append(hidden)

    if layer < 1:
        raise ValueError(f"call gate layer {layer}: must be a decoder layer's output (>= 1)")
    return models.decoder_stack(model, "decoding.call_gate", "false")[1][layer - 1].register_forward_hook(on_output)


@torch.no_grad()
def features(model: Any, tok: Any, prompts: list[str], layer: int, batch_size: int = 8) -> torch.Tensor:
    """Hidden state `layer` at the last token of each prompt text ([n, hidden]); the forward stops at that layer."""
    out, sink = [], []
    handle = hook(model, layer, sink, stop=True)
    side = tok.padding_side
    tok.padding_side = "left"  # the last position is every row's last prompt token
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tok(prompts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            mask = enc["attention_mask"].to(model.device)
            try:  # positions follow the mask, as the engine's do (padding must not shift them)
                model(input_ids=enc["input_ids"].to(model.device), attention_mask=mask,
                      position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
            except _Stop as stopped:
                out.append(stopped.hidden.float().cpu())
    finally:
        handle.remove()
        tok.padding_side = side
    return torch.cat(out)


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
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    prompts = [render.prompt(tok, system + e.prompt_messages(), e.tool_dicts()) for e in chosen]
    return prompts, [False] * k + [True] * (len(chosen) - k)


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
        layer: int | None = None) -> tuple[CallGate | None, dict[str, float]]:
    """Fit the gate on up to `n` first-turn requests of `episodes` (training split); None when they are all of one
    kind (nothing to decide). Returns the gate and its metrics: examples, no-call examples, training accuracy per
    class."""
    prompts, calls = requests(episodes, system_prompt, tok, n, seed)
    y = torch.tensor(calls, dtype=torch.bool)
    metrics = {"call_gate_examples": float(len(y)), "call_gate_no_call_examples": float((~y).sum())}
    if len(y) == 0 or y.all() or not y.any():
        return None, metrics
    layer = default_layer(model) if layer is None else layer
    model.eval()
    x = features(model, tok, prompts, layer)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    weight, bias = fit_probe((x - mean) / std, y)
    gate = CallGate(layer, weight, bias, mean, std)
    said = gate.calls(x)
    metrics |= {"call_gate_train_call": float(said[y].float().mean()),
                "call_gate_train_no_call": float((~said[~y]).float().mean())}
    return gate, metrics


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


def open_token(tok: Any) -> int:
    """The first token of the call tag, as the template writes it at the start of a turn."""
    return tok(CALL_OPEN, add_special_tokens=False)["input_ids"][0]
