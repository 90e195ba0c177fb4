"""One greedy assistant turn of a saved model, in OpenAI's chat-completion shape: what `tooltune serve`,
`tooltune chat` and the MLflow ChatModel share.

Reads: a model folder written by this project (weights + tokenizer with the tool-aware chat template).
Decoding is greedy up to the end-of-turn token, as in evaluation. The output is parsed with the project's one parser
(`components.toolcalls.parse_output`) and never executed here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.training import models
from components.config import Params
from components.data.episode import DataError
from components.evaluation import rollout
from components.toolcalls import Parsed, parse_output, render

TRUNCATED = "no end-of-turn token (output truncated)"  # parse_output's verdict on a cut-off turn


@dataclass
class Agent:
    """A loaded model folder plus the system prompt it was trained with."""

    model: Any
    tok: Any
    system_prompt: str | None
    name: str
    constrained: bool = False  # decode under the tool-call grammar of the request's tools (`decoding.constrained`)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one generation at a time per model


def load(folder: str | Path, system_prompt: str | None, name: str | None = None, constrained: bool = False,
         dtype: str = "auto") -> Agent:
    """Load a project model folder for inference (on this machine's GPU in bf16 when it has one, unless `dtype`, the
    run's `base.dtype`, is float32; fp32 on the CPU: `models.load_for_inference`, as evaluation loads it);
    `constrained`: decode under the tool-call grammar."""
    model, tok = models.load_for_inference(folder, dtype)
    return Agent(model, tok, system_prompt, name or Path(folder).name, constrained)


def resolve_model(spec: str, params: Params, scratch: Path) -> Path:
    """A model folder: `spec` itself, or for `champion` the registry champion downloaded into `scratch`.

    Raises:
        DataError: The folder does not exist, or the registry has no champion.
    """
    if spec != "champion":
        folder = Path(spec)
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder}: not a model folder (no config.json); pass a saved model folder or `champion`")
        return folder
    from components import tracking

    found = tracking.download_champion(params, scratch)
    if found is None:
        raise DataError(f"registry model {params.register_.model_name!r} has no `champion` version yet "
                        f"(run the register stage, or pass a model folder)")
    return found[1]


def template_messages(messages: list[dict[str, Any]], system_prompt: str | None) -> list[dict[str, Any]]:
    """OpenAI request messages as the chat template reads them, with the training system prompt prepended unless
    the request brings its own.

    Raises:
        ValueError: `messages` is empty or a message lacks a string `role`.
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list of chat messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError(f"messages[{i}]: a message is an object with a string `role`")
        clean = {k: v for k, v in message.items() if v is not None}
        clean["content"] = _text(clean.get("content"))
        out.append(clean)
    if system_prompt and out[0]["role"] != "system":
        out.insert(0, {"role": "system", "content": system_prompt})
    return out


def _text(content: Any) -> str:
    """Message content as text: OpenAI's list of content parts keeps its text parts."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def generate(agent: Agent, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
             max_new_tokens: int) -> tuple[Parsed, int, int]:
    """One greedy assistant turn, decoded as the evaluation decodes (`rollout.generate`): (parsed output, prompt
    tokens, completion tokens). Each request gets its own prefix cache: clients send any tools, and a cache kept
    across requests would grow with every distinct tool list."""
    conversation = template_messages(messages, agent.system_prompt)
    with agent.lock:
        text = rollout.generate(agent.model, agent.tok, [conversation], [tools or None], max_new_tokens,
                                constrained=agent.constrained)[0]
    prompt = render.prompt(agent.tok, conversation, tools)
    n_prompt, n_completion = (len(agent.tok(t, add_special_tokens=False)["input_ids"]) for t in (prompt, text))
    return parse_output(text, tok=agent.tok, tools=tools), n_prompt, n_completion


def assistant_message(parsed: Parsed) -> tuple[dict[str, Any], str]:
    """(OpenAI assistant message, finish_reason) of a parsed turn.

    Calls become `tool_calls` with ids `call_<hex>` and `arguments` as a JSON string (`finish_reason` "tool_calls").
    A turn cut off by the token budget is "length"; any other output that is not a well-formed call comes back
    as text ("stop"), so the client sees what the model said.
    """
    if parsed.calls:
        calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                 for c in parsed.calls]
        return {"role": "assistant", "content": parsed.content or None, "tool_calls": calls}, "tool_calls"
    return {"role": "assistant", "content": parsed.content}, ("length" if parsed.error == TRUNCATED else "stop")


def completion(agent: Agent, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
               max_new_tokens: int) -> dict[str, Any]:
    """A whole OpenAI `chat.completion` object for one request (one choice)."""
    parsed, n_prompt, n_completion = generate(agent, messages, tools, max_new_tokens)
    message, finish = assistant_message(parsed)
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": agent.name, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_completion,
                      "total_tokens": n_prompt + n_completion}}


def chunks(done: dict[str, Any]) -> list[dict[str, Any]]:
    """A finished `chat.completion` as the `chat.completion.chunk`s a streaming client reads: the whole message in
    one delta (tool calls with their `index`), then the finish reason. Generation is not streamed token by token."""
    message = done["choices"][0]["message"]
    delta = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    head = {k: done[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    return [head | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            head | {"choices": [{"index": 0, "delta": {}, "finish_reason": done["choices"][0]["finish_reason"]}]}]
