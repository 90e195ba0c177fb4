"""The registered agent as an MLflow pyfunc that speaks OpenAI chat: `{"messages", "tools", "max_tokens"}` in, an
OpenAI `chat.completion` (tool calls as `tool_calls` with JSON-string arguments) out.

Reads: the model folder logged as the artifact `model`; `model_config` {"system_prompt", "max_new_tokens"}.
Logged by: components/register.py, with `code_paths()` (this `components` package travels inside the model, so
loading needs no checkout) and no signature (see below).
Serves: `mlflow models serve -m models:/<name>@champion --env-manager local -h 127.0.0.1` (POST /invocations with
an OpenAI chat request body; see mlflow/README.md).
Model output is parsed with the project's one parser (`components.toolcalls`), never executed.

Why not `mlflow.pyfunc.ChatModel`: its fixed input schema types each tool parameter as {type, description, enum of
strings, items}; the scoring server rejects the project's own catalogs (`pattern` on dates: "Failed to enforce
schema for key `function`"), and it is deprecated since MLflow 3.0. `ResponsesAgent` takes the Responses API, not a
chat request. A column signature (free-form `messages`, `tools`) fails too: the scoring server casts the body to a
DataFrame ("All arrays must be of the same length"). So: a PythonModel without a signature, to which the scoring
server hands the OpenAI request body unchanged (its "unified LLM input": any JSON object with `messages`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

import components
from components.serving import chat


def code_paths() -> list[str]:
    """The `components` package folder, logged beside the model so it loads without this repository."""
    return [str(Path(components.__file__).resolve().parent)]


class ToolAgent(mlflow.pyfunc.PythonModel):
    """Greedy tool-calling agent over a model folder saved by this project."""

    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        self.agent = chat.load(context.artifacts["model"], config.get("system_prompt"), "tooltune",
                               bool(config.get("constrained", False)))
        self.max_new_tokens = int(config["max_new_tokens"])

    def __getstate__(self) -> dict[str, Any]:
        """Nothing to pickle: the model (and its lock) are rebuilt by `load_context` wherever it is loaded."""
        return {}

    # `model_input` is hinted as a DataFrame, a hint MLflow cannot infer a signature from: an inferred signature
    # would make the scoring server cast the request body instead of passing it through.
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """One assistant turn per request.

        Args:
            context: MLflow's model context (unused after `load_context`).
            model_input: OpenAI chat request bodies (`messages`, optional `tools`, `max_tokens` or
                `max_completion_tokens`; other fields such as `model` or `temperature` are ignored: decoding is
                greedy): one dict (what the scoring server passes), a list of dicts or a DataFrame of them.
            params: Optional `{"max_tokens": int}` for requests that do not set their own.

        Returns:
            An OpenAI `chat.completion` dict per request (just the dict for a single request).
        """
        default = int((params or {}).get("max_tokens") or self.max_new_tokens)
        out = [chat.completion(self.agent, r["messages"], r["tools"], r["budget"] or default)
               for r in _rows(model_input)]
        return out[0] if len(out) == 1 else out


def _rows(model_input: Any) -> list[dict[str, Any]]:
    """Requests as plain dicts, from a list of dicts, one dict or a pandas DataFrame (the scoring server's form)."""
    if hasattr(model_input, "to_dict"):
        model_input = model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        model_input = [model_input]
    rows = []
    for row in model_input:
        tools = _plain(row.get("tools"))
        budget = row.get("max_completion_tokens") or row.get("max_tokens")
        rows.append({"messages": _plain(row.get("messages")), "tools": tools if isinstance(tools, list) else None,
                     "budget": int(budget) if budget else None})
    return rows


def _plain(value: Any) -> Any:
    """numpy arrays (pandas cells) back to lists, recursively."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
