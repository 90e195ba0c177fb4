"""A tiny real model that has learnt two conversations by heart, for the serving tests (server, MLflow, chat).

A random tiny model emits gibberish, so a test of "tool calls come back parsed" could only accept anything.
This one is the project's tiny Qwen2 with its tool template, trained (plain next-token loss, a few hundred
Adam steps: ~10 s on an idle core) until greedy decoding reproduces its two answers exactly:

- asked WEATHER_QUESTION with the travel tools it calls `get_weather` (WEATHER_CALL), and after the simulator's
  result it answers WEATHER_ANSWER;
- told HELLO it answers HELLO_ANSWER without a call.

The system prompt is the one in params.yaml (`base.system_prompt`), which the servers prepend to every request.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import torch

from components.training import models
from components.config import load_params
from components.domains import travel

REPO = Path(__file__).resolve().parents[1]
WEATHER_QUESTION = "Weather in Paris from 2025-06-01 to 2025-06-02?"
WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris", "start_date": "2025-06-01",
                                                     "end_date": "2025-06-02"}}
WEATHER_ANSWER = "Sunny in Paris."
HELLO, HELLO_ANSWER = "Hello", "Hi! Ask me about travel."


def system_prompt() -> str:
    return load_params(REPO / "params.yaml", profile="").base.system_prompt


def conversations() -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(messages, tools) of the two conversations the model learns, tool result from the real simulator."""
    system = {"role": "system", "content": system_prompt()}
    result, ok = travel.execute(travel.TravelEnv(), WEATHER_CALL)
    assert ok, result
    weather = [system, {"role": "user", "content": WEATHER_QUESTION},
               {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": WEATHER_CALL}]},
               {"role": "tool", "name": WEATHER_CALL["name"], "content": result},
               {"role": "assistant", "content": WEATHER_ANSWER}]
    hello = [system, {"role": "user", "content": HELLO}, {"role": "assistant", "content": HELLO_ANSWER}]
    return [(weather, travel.catalog()), (hello, travel.catalog())]


def build(dst: Path, max_steps: int = 400) -> Path:
    """Train and save the model folder at `dst`; raises if it has not learnt its answers in `max_steps`."""
    params = load_params(REPO / "params.yaml", profile="")
    convs = conversations()
    probe, probe_tok = models.build_tiny(params.base.tiny, ["x"], 0)  # only to render the texts for the BPE
    models.apply_tool_template(probe, probe_tok)
    texts = [probe_tok.apply_chat_template(m, tools=t, tokenize=False) for m, t in convs]
    wider = params.base.tiny.model_copy(update={"hidden_size": 128, "intermediate_size": 512})  # learns in ~200 steps
    model, tok = models.build_tiny(wider, texts * 20, 0)
    models.apply_tool_template(model, tok)
    models.set_padding(model, tok)
    # Reloaded, the tokenizer is a Qwen2Tokenizer that splits digits; train on the tokens served models will see.
    models.save(model, tok, dst, {"spec": "tiny"})
    model, tok = models.load(dst)
    batch = []
    for messages, tools in convs:  # loss on the assistant turns only (the template's generation markers)
        enc = tok.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True)
        ids = torch.tensor([enc["input_ids"]])
        batch.append((ids, torch.where(torch.tensor([enc["assistant_masks"]]) == 1, ids, -100)))
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _step in range(max_steps):
        loss = sum(model(input_ids=ids, labels=labels).loss for ids, labels in batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.01:
            break
    if loss.item() >= 0.01:
        raise RuntimeError(f"serving test model: loss {loss.item():.4f} after {max_steps} steps (not learnt)")
    model.eval()
    models.save(model, tok, dst, {"spec": "tiny", "memorised": "tests/serving_model.py"})
    return dst


def cached(tmp_path_factory: Any) -> Path:
    """The model folder, built once per pytest session (shared by the serving test modules)."""
    folder = tmp_path_factory.getbasetemp() / "memorised-model"
    if not (folder / "tooltune.json").is_file() or "memorised" not in (folder / "tooltune.json").read_text():
        build(folder)
    return folder


@contextmanager
def running(command: list[str], url: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 180.0) -> Iterator[subprocess.Popen]:
    """Start a server subprocess, wait (bounded) until `url` answers 200, yield it; always kill it afterwards."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not up after {timeout:.0f} s")
            time.sleep(0.5)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: uvicorn / gunicorn workers go too
        proc.wait(timeout=30)
        log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
