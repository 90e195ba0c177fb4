"""The registered agent as an MLflow `ChatModel`: OpenAI chat messages + tools in, an OpenAI chat completion out.

Reads: the model folder logged as the artifact `model`; `model_config` {"system_prompt", "max_new_tokens"}.
Logged by: components/register.py, with `code_paths()` (this `components` package travels inside the model, so
loading needs no checkout).
Serves: `mlflow models serve -m models:/<name>@champion --env-manager local -h 127.0.0.1` (POST /invocations with
an OpenAI chat request, `tools` included; see mlflow/README.md).
Model output is parsed with the project's one parser (`components.toolcalls`), never executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
from mlflow.types.llm import ChatCompletionResponse, ChatMessage, ChatParams

import components
from components.serving import chat


def code_paths() -> list[str]:
    """The `components` package folder, logged beside the model so it loads without this repository."""
    return [str(Path(components.__file__).resolve().parent)]


class ToolAgent(mlflow.pyfunc.ChatModel):
    """Greedy tool-calling agent over a model folder saved by this project (one choice per request)."""

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        self.agent = chat.load(context.artifacts["model"], config.get("system_prompt"), "tooltune")
        self.max_new_tokens = int(config["max_new_tokens"])

    def predict(self, context: Any, messages: list[ChatMessage], params: ChatParams) -> ChatCompletionResponse:
        """One assistant turn; `params.max_tokens` caps it (default: the evaluation's `max_new_tokens`).

        Sampling parameters (temperature, top_p, n) are ignored: decoding is greedy, as in evaluation.
        """
        tools = [t.to_dict() for t in params.tools] if params.tools else None
        out = chat.completion(self.agent, [m.to_dict() for m in messages], tools,
                              params.max_tokens or self.max_new_tokens)
        return ChatCompletionResponse.from_dict(out)
