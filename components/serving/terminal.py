"""`tooltune chat`: talk to the trained model in the terminal; its tool calls run in the domain's simulator.

Reads: `--model` (a model folder or `champion`), params `project` (the domain and its tools), `base.system_prompt`,
`evaluate.max_new_tokens` and `evaluate.max_turns` (assistant turns per user message, as in evaluation).
Each user line gets assistant turns until the model answers in text: every parsed call is shown (`-> call`), run in
a fresh session of the built-in domain's simulator (as `components.evaluation.rollout` does) and its result shown
(`<- result`) and fed back. A catalog domain has no simulator: its calls are shown and not run. Empty line or EOF
ends the chat.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TextIO

from components import domains
from components.config import Params
from components.serving import chat

CALL, RESULT = "-> call", "<- result"


def run_chat(agent: chat.Agent, domain: domains.Domain, params: Params, stdin: TextIO, stdout: TextIO) -> int:
    """Chat until an empty line or end of input; returns the number of user turns answered."""
    tools = domain.catalog()
    env = domain.env() if domain.simulated else None
    messages: list[dict[str, Any]] = []
    note = "" if env is not None else " (no simulator for this domain: tool calls are shown, not run)"
    print(f"tooltune chat: domain {domain.name}, {len(tools)} tools{note}. Empty line ends.", file=stdout)
    turns = 0
    while True:
        print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line.strip():
            return turns
        messages.append({"role": "user", "content": line.strip()})
        _answer(agent, domain, env, messages, tools, params, stdout)
        turns += 1


def _answer(agent: chat.Agent, domain: domains.Domain, env: Any, messages: list[dict[str, Any]],
            tools: list[dict[str, Any]], params: Params, stdout: TextIO) -> None:
    """Assistant turns for the latest user message, running calls, until a text answer or the turn cap."""
    for _ in range(params.evaluate.max_turns):
        parsed, _, _ = chat.generate(agent, messages, tools, params.evaluate.max_new_tokens)
        if parsed.error:
            print(f"model (unparsable: {parsed.error})> {parsed.content}", file=stdout)
            messages.append({"role": "assistant", "content": parsed.content})
            return
        if not parsed.calls:
            print(f"model> {parsed.content}", file=stdout)
            messages.append({"role": "assistant", "content": parsed.content})
            return
        messages.append({"role": "assistant", "content": parsed.content,
                         "tool_calls": [{"type": "function", "function": c} for c in parsed.calls]})
        for call in parsed.calls:
            print(f"{CALL} {call['name']}({json.dumps(call['arguments'], ensure_ascii=False)})", file=stdout)
            if env is None:
                print(f"   (not run: domain {domain.name} has no simulator)", file=stdout)
                return
            content, _ok = domain.execute(env, call)
            print(f"{RESULT} {content}", file=stdout)
            messages.append({"role": "tool", "name": call["name"], "content": content})
    print(f"(stopped: {params.evaluate.max_turns} assistant turns without a text answer)", file=stdout)


def main(params: Params, model: str, stdin: TextIO, stdout: TextIO) -> None:
    """`tooltune chat`: load the model (a folder or the registry champion) and chat in the project's domain."""
    with tempfile.TemporaryDirectory(prefix="tooltune-chat-") as scratch:
        folder = chat.resolve_model(model, params, Path(scratch))
        agent = chat.load(folder, params.base.system_prompt, constrained=params.decoding.constrained,
                          dtype=params.base.dtype)
        run_chat(agent, domains.of(params), params, stdin, stdout)
