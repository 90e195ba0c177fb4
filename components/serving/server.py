"""`tooltune serve`: an OpenAI-compatible HTTP server (FastAPI + uvicorn) over a model folder or the registry's
champion.

Reads: `--model` (a project model folder, or `champion`: downloaded from the registry), params `base.system_prompt`
(prepended when a request has no system message) and `evaluate.max_new_tokens` (the default token budget).
Serves: `GET /v1/models`, `POST /v1/chat/completions` (`tools` in, `tool_calls` out; with `stream: true` the finished
turn comes as server-sent chunks, one delta, as OpenAI clients read them). Bound to 127.0.0.1 unless `--host` says
otherwise. Model output is parsed, never executed.

Why not `transformers serve` (5.23): tried on a saved folder (`transformers serve <folder> --device cpu --dtype
float32`), it parses this model's calls with the saved response template, but `GET /v1/models` answers HTTP 500
(`CacheNotFound`: it lists the Hugging Face cache, never the served folder), call ids are `<uuid>_tool_call_<n>`
rather than `call_...`, the training system prompt is not added, and a second parser would decide what a call is.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from components.config import Params
from components.serving import chat


def app(agent: chat.Agent, max_new_tokens: int) -> FastAPI:
    """The FastAPI application serving `agent`."""
    api = FastAPI(title="tooltune", docs_url=None, redoc_url=None)
    created = int(time.time())

    @api.exception_handler(HTTPException)
    async def openai_error(request: Request, err: HTTPException) -> JSONResponse:
        """Errors in OpenAI's shape, so clients show the message (`openai.BadRequestError: ... <message>`)."""
        return JSONResponse({"error": {"message": err.detail, "type": "invalid_request_error", "param": None,
                                       "code": None}}, status_code=err.status_code)

    @api.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": agent.name, "object": "model", "created": created,
                                            "owned_by": "tooltune"}]}

    @api.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError as err:
            raise HTTPException(400, f"the request body is not JSON: {err}") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the request body must be a JSON object")
        tools = body.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise HTTPException(400, "`tools` must be a list of function schemas")
        budget = body.get("max_completion_tokens") or body.get("max_tokens") or max_new_tokens
        if not isinstance(budget, int) or budget < 1:
            raise HTTPException(400, "`max_tokens` must be a positive integer")
        try:  # generation is CPU-bound: it runs in the thread pool, not on the event loop
            done = await run_in_threadpool(chat.completion, agent, body.get("messages"), tools, budget)
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        if not body.get("stream"):
            return done
        events = [f"data: {json.dumps(c)}\n\n" for c in chat.chunks(done)] + ["data: [DONE]\n\n"]
        return StreamingResponse(iter(events), media_type="text/event-stream")

    return api


def serve(params: Params, model: str, host: str, port: int) -> None:
    """Load the model and serve it until interrupted (Ctrl-C)."""
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="tooltune-serve-") as scratch:
        folder = chat.resolve_model(model, params, Path(scratch))
        agent = chat.load(folder, params.base.system_prompt, "champion" if model == "champion" else folder.name,
                          params.decoding.constrained, params.base.dtype)
        print(f"serving {folder} as {agent.name!r} on http://{host}:{port}/v1", flush=True)
        uvicorn.run(app(agent, params.evaluate.max_new_tokens), host=host, port=port, log_level="warning")
