"""Batched multi-turn rollouts of a model in a domain simulator (used by evaluation); greedy unless sampled.

Turns decode in the continuous-batching engine (components/evaluation/engine.py): a conversation's next turn
joins the running batch as soon as its last one ended, on its own keys and values. Each turn is parsed with the
shared parser; parsed calls run in that episode's own simulator, where a call that fails in any way (bad
arguments, or arguments that break the tool) becomes an error result the model reads and a count in
`Rollout.failed_calls`, never an exception out of the rollout. When the model answers without a call,
the episode's next user turn (multi_turn episodes) is fed and the loop goes on; it ends for an episode when
the last user turn is answered, on unparsable output, or when one user turn reaches the turn cap.
With a `Sampling`, every turn is sampled instead (k-sample evaluation, `evaluate.samples` > 1).
bench/bench_generate.py measures the engine against plain `model.generate` on the same episodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import torch
from jinja2 import TemplateError
from tqdm import tqdm

from components import toolcalls
from components.domains import Domain
from components.data.episode import Episode
from components.evaluation.engine import Engine, Request, layers
from components.evaluation.verdict import Verdict
from components.toolcalls import render


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
    refused_by: str | None = None  # the check that made the first request's turn text: gate | name | value


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding: `temperature` and nucleus `top_p` (no top-k cut), torch seeded with `seed` per rollout run."""

    temperature: float
    top_p: float
    seed: int


@dataclass(frozen=True)
class Decoding:
    """How `run_episodes` decodes: at most `batch_size` conversations per forward pass, at most `max_new_tokens` per
    turn and `max_turns` assistant turns per user turn; greedy, or sampled with `sampling`; `constrained`: every turn
    under the tool-call grammar of its offered tools (components/evaluation/constrained.py); `gated`: the model's
    call gate decides first requests (evaluation, serving), False: the model's own first token (RL's rollouts)."""

    batch_size: int
    max_new_tokens: int
    max_turns: int
    sampling: Sampling | None = None
    constrained: bool = False
    gated: bool = True

    @classmethod
    def evaluation(cls, cfg: Any, **changes: Any) -> "Decoding":
        """The evaluation's decoding (`evaluate.batch_size`, `max_new_tokens`, `max_turns` of `cfg`, params'
        `evaluate` section), with `changes` to its fields."""
        return cls(cfg.batch_size, cfg.max_new_tokens, cfg.max_turns, **changes)


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
        full = render.prompt(self.tok, conversation, tools)
        head = conversation[:1] if conversation and conversation[0]["role"] == "system" else []
        try:
            prefix = render.prompt(self.tok, head, tools, generation=False) if head else ""  # none: no sharing
        except TemplateError:  # a template that refuses a conversation without a user turn (Qwen3.5): no sharing
            prefix = ""
        if not full.startswith(prefix):  # a template that is not prefix-preserving: no sharing
            prefix = ""
        return prefix, self._ids(full[len(prefix):])

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []

    def kv(self, prefix: str) -> tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]] | None]:
        """Prefix token ids and their keys/values per layer ([1, heads, tokens, dim]; None for an empty prefix)."""
        if prefix not in self._caches:
            ids = self._ids(prefix)
            kv = None
            if ids:
                out = self.model(torch.tensor([ids], device=self.model.device), use_cache=True)
                kv = layers(out.past_key_values)
            self._caches[prefix] = (ids, kv)
        return self._caches[prefix]


def chooser(sampling: Sampling | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Next-token choice from logits [rows, vocab]: argmax, or a sample at `sampling.temperature` from the smallest
    set of tokens whose probability reaches `sampling.top_p` (no top-k cut)."""
    if sampling is None:
        return lambda logits: logits.argmax(-1)

    def sample(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            drop = sorted_probs.cumsum(-1) - sorted_probs >= sampling.top_p  # the top token always stays
            probs = probs.scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
        return torch.multinomial(probs, 1).squeeze(1)

    return sample


@torch.no_grad()
def generate(model: Any, tok: Any, conversations: list[list[dict]], tools: list[list[dict]],
             max_new_tokens: int, prefixes: PrefixCache | None = None, sampling: Sampling | None = None,
             constrained: bool = False, gated: bool = True) -> list[str]:
    """Decode one assistant turn for each conversation (greedy, or sampled with `sampling`; `constrained`: under
    the tool-call grammar; `gated`: the model's call gate decides first requests); returns text up to and incl.
    end-of-turn. Batched by the continuous-batching engine (components/evaluation/engine.py), all conversations
    together."""
    texts: dict[int, str] = {}
    run = Engine(model, tok, max(1, len(conversations)), max_new_tokens, prefixes or PrefixCache(model, tok),
                 chooser(sampling), constrained, gated)
    run.run([Request(i, c, t) for i, (c, t) in enumerate(zip(conversations, tools))],
            lambda key, text: texts.__setitem__(key, text))
    return [texts[i] for i in range(len(conversations))]


def _advance(ro: Rollout, text: str, env: Any, domain: Domain, followups: list[dict[str, Any]],
             parse: Callable[[str], toolcalls.Parsed] = toolcalls.parse_output) -> bool:
    """Apply one generated turn, read by `parse` (the model's parser: `toolcalls.parse_output` with its tokenizer and
    the offered tools); an answer without calls gets the next of `followups` (the user's later turns, consumed) as
    the user's reply. Returns True while the episode goes on."""
    parsed = parse(text)
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
                 decoding: Decoding, desc: str = "rollout", decode: Callable[..., list[str]] | None = None,
                 trace: Any = None) -> list[Rollout]:
    """Roll every episode out in the simulator as `decoding` says (see `Decoding`).

    Each user turn gets at most `decoding.max_turns` assistant turns, so a multi_turn episode gets the cap for each
    request. Episodes are keyed by id: to roll one out several times, pass copies with distinct ids. With
    `decoding.sampling`, torch's global RNG is seeded with its seed first, so a rerun with the same episodes, batch
    size and hardware draws the same samples. Turns decode in the continuous-batching engine (an episode's next turn
    starts as soon as its last one ended, on its own keys and values); `decode` (the signature of `generate`)
    replaces it with turn-by-turn calls, all live episodes together (bench/bench_generate.py passes plain
    `model.generate`). `trace`: as `Engine` takes it (RL rollouts: the tokens and log-probabilities traced).
    """
    sampling = decoding.sampling
    model.eval()
    if sampling is not None:
        torch.manual_seed(sampling.seed)
    envs = {e.id: domain.env() for e in episodes}
    rollouts = {e.id: Rollout(e.id, [{"role": "system", "content": system_prompt}] + e.prompt_messages())
                for e in episodes}
    followups = {e.id: [m for m in e.message_dicts()[len(e.prompt_messages()):] if m["role"] == "user"]
                 for e in episodes}
    tools = {e.id: e.tool_dicts() for e in episodes}
    with tqdm(total=len(episodes), desc=desc, unit="ep") as bar:
        def on_turn(key: str, text: str) -> Request | None:
            ro = rollouts[key]
            parse = partial(toolcalls.parse_output, tok=tok, tools=tools[key])
            if (_advance(ro, text, envs[key], domain, followups[key], parse)
                    and _turns_since_user(ro) < decoding.max_turns):
                return Request(key, ro.messages, tools[key])
            bar.update(1)
            return None

        requests = [Request(e.id, rollouts[e.id].messages, tools[e.id]) for e in episodes]
        if decode is None:
            engine = Engine(model, tok, decoding.batch_size, decoding.max_new_tokens, PrefixCache(model, tok),
                            chooser(sampling), decoding.constrained, decoding.gated, trace)
            engine.run(requests, on_turn)
            for key, check in engine.refused.items():
                rollouts[key].refused_by = check
        else:
            _turn_by_turn(decode, model, tok, requests, on_turn,
                          (decoding.max_new_tokens, PrefixCache(model, tok), sampling))
    for e in episodes:
        steps = [[c.model_dump() for c in s] for s in e.expected.steps]
        rollouts[e.id].goal_reached = domain.goal_reached(envs[e.id], steps, e.expected.goal)
    return [rollouts[e.id] for e in episodes]


def _turn_by_turn(decode: Callable[..., list[str]], model: Any, tok: Any, requests: list[Request],
                  on_turn: Callable[[Any, str], Request | None], args: tuple) -> None:
    """Decode every live conversation's next turn with one `decode` call, then the next turns, until none is left."""
    while requests:
        texts = decode(model, tok, [r.conversation for r in requests], [r.tools for r in requests], *args)
        requests = [nxt for r, text in zip(requests, texts) if (nxt := on_turn(r.key, text)) is not None]


def _turns_since_user(ro: Rollout) -> int:
    """Assistant turns since the latest user message (the turn cap applies per user turn)."""
    last_user = max(i for i, m in enumerate(ro.messages) if m["role"] == "user")
    return sum(m["role"] == "assistant" for m in ro.messages[last_user:])


def one_turn(model: Any, tok: Any, conversations: dict[str, list[dict]], tools: dict[str, list[dict]],
             batch_size: int, max_new_tokens: int, desc: str = "generate", constrained: bool = False,
             refused: dict[str, str] | None = None) -> dict[str, str]:
    """One greedy assistant turn for each conversation (id -> messages, with its tools), batched like
    `run_episodes` (any mix of tool lists in one batch; `constrained`: under the tool-call grammar); nothing is
    executed. Returns id -> generated text; `refused`, when given, gets id -> the check that made a first
    request's turn text (`Engine.refused`)."""
    model.eval()
    out: dict[str, str] = {}
    with tqdm(total=len(conversations), desc=desc, unit="turn") as bar:
        def on_turn(key: str, text: str) -> None:
            out[key] = text
            bar.update(1)

        engine = Engine(model, tok, batch_size, max_new_tokens, PrefixCache(model, tok), chooser(None), constrained)
        engine.run([Request(j, conversations[j], tools[j]) for j in conversations], on_turn)
    if refused is not None:
        refused.update(engine.refused)
    return out


def judge(ro: Rollout, ep: Episode) -> Verdict:
    """The verdict on one rollout of `ep`: the scorer's on its steps (and on its final state where the episode sets a
    goal); `completion` also needs an answer, no call on a no-call episode and the expected facts stated."""
    gold = [[c.model_dump() for c in s] for s in ep.expected.steps]
    scored = toolcalls.score_episode(ro.steps, gold, toolcalls.tool_index(ep.tool_dicts()), ro.unparsable,
                                     hit_step_limit=ro.final is None and not ro.unparsable,
                                     final_state_ok=ro.goal_reached if ep.expected.goal else None)
    answered = ro.final is not None and not ro.unparsable
    no_call_ok = bool(gold) or not ro.steps
    answers = [m["content"] for m in ro.messages if m["role"] == "assistant" and not m.get("tool_calls")]
    stated = toolcalls.states_outputs([a for a in answers if a], ep.expected.outputs)
    return Verdict(ep.id, ep.pattern, scored.exact, scored.first_step_exact, scored.first_step_names_ok,
                   ro.unparsable, tuple(scored.errors), ro.goal_reached and answered and no_call_ok and stated,
                   ro.turns, stated, ro.failed_calls, dict(ro.__dict__), refused_by=ro.refused_by)


def to_json(ro: Rollout) -> str:
    return json.dumps(ro.__dict__, ensure_ascii=False)
