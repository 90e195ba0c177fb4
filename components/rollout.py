"""Batched, greedy multi-turn rollouts of a model in a domain simulator (used by evaluation).

All live episodes decode one assistant turn together (left padding, KV cache); each turn is parsed with
the shared parser; parsed calls run in that episode's own simulator; the loop ends for an episode when it
answers without a call, emits unparsable output or reaches the turn cap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from components import toolcalls
from components.domains import Domain
from components.episode import Episode


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


@torch.no_grad()
def generate(model: Any, tok: Any, conversations: list[list[dict]], tools: list[list[dict]],
             max_new_tokens: int) -> list[str]:
    """Greedy-decode one assistant turn for each conversation; returns text up to and incl. end-of-turn."""
    prompts = [tok.apply_chat_template(m, tools=t, add_generation_prompt=True, tokenize=False)
               for m, t in zip(conversations, tools)]
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id)
    texts = []
    for row in out[:, enc["input_ids"].shape[1]:]:
        ids = row.tolist()
        if tok.eos_token_id in ids:
            ids = ids[:ids.index(tok.eos_token_id) + 1]
        texts.append(tok.decode([i for i in ids if i != tok.pad_token_id], skip_special_tokens=False))
    return texts


def _advance(ro: Rollout, text: str, env: Any, domain: Domain) -> bool:
    """Apply one generated turn; returns True while the episode goes on."""
    parsed = toolcalls.parse_output(text)
    ro.turns += 1
    if parsed.unparsable:
        ro.unparsable, ro.final = True, text
        return False
    if not parsed.calls:
        ro.final = parsed.content
        ro.messages.append({"role": "assistant", "content": parsed.content})
        return False
    ro.steps.append(parsed.calls)
    ro.messages.append({"role": "assistant", "content": parsed.content,
                        "tool_calls": [{"type": "function", "function": c} for c in parsed.calls]})
    for call in parsed.calls:
        content, _ = domain.execute(env, call)
        ro.messages.append({"role": "tool", "name": call["name"], "content": content})
    return True


def run_episodes(model: Any, tok: Any, episodes: list[Episode], domain: Domain, system_prompt: str,
                 batch_size: int, max_new_tokens: int, max_turns: int, desc: str = "rollout") -> list[Rollout]:
    """Roll every episode out in the simulator, `batch_size` conversations per forward pass."""
    model.eval()
    envs = {e.id: domain.env() for e in episodes}
    rollouts = {e.id: Rollout(e.id, [{"role": "system", "content": system_prompt}] + e.prompt_messages())
                for e in episodes}
    tools = {e.id: e.tool_dicts() for e in episodes}
    live = [e.id for e in sorted(episodes, key=lambda e: (e.pattern, e.id))]  # similar lengths batch together
    with tqdm(total=len(episodes), desc=desc, unit="ep") as bar:
        for _ in range(max_turns):
            still = []
            for i in range(0, len(live), batch_size):
                ids = live[i:i + batch_size]
                texts = generate(model, tok, [rollouts[j].messages for j in ids], [tools[j] for j in ids],
                                 max_new_tokens)
                still += [j for j, text in zip(ids, texts) if _advance(rollouts[j], text, envs[j], domain)]
            bar.update(len(live) - len(still))
            live = still
            if not live:
                break
        bar.update(len(live))
    for e in episodes:
        steps = [[c.model_dump() for c in s] for s in e.expected.steps]
        rollouts[e.id].goal_reached = domain.goal_reached(envs[e.id], steps, e.expected.goal)
    return [rollouts[e.id] for e in episodes]


def to_json(ro: Rollout) -> str:
    return json.dumps(ro.__dict__, ensure_ascii=False)
