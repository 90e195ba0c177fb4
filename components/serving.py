"""The registered agent as an MLflow pyfunc: chat messages + tool schemas in, parsed tool calls out.

Reads: the model folder logged as the artifact `model` (weights + tokenizer with a tool-aware chat template).
Serves: `mlflow models serve -m models:/<name>@champion --env-manager local -h 127.0.0.1` (see mlflow/README.md).
Model output is parsed with the project's one parser (`components.toolcalls`), never executed.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

from components.training import models
from components.toolcalls import parse_output

DEFAULT_MAX_NEW_TOKENS = 128


def signature() -> ModelSignature:
    """Two free-form columns (message lists and tool schemas vary per request) and one inference param."""
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), "messages"), ColSpec(AnyType(), "tools", required=False)]),
        params=ParamSchema([ParamSpec("max_new_tokens", "long", DEFAULT_MAX_NEW_TOKENS)]))


def _rows(model_input: Any) -> list[dict[str, Any]]:
    """Requests as plain dicts, from a list of dicts, one dict or a pandas DataFrame (the scoring server's form)."""
    if hasattr(model_input, "to_dict"):
        model_input = model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        model_input = [model_input]
    rows = []
    for i, row in enumerate(model_input):
        messages = _plain(row.get("messages"))
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"request {i}: `messages` must be a non-empty list of chat messages")
        tools = _plain(row.get("tools"))
        rows.append({"messages": messages, "tools": tools if isinstance(tools, list) else None})
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


class ToolAgent(mlflow.pyfunc.PythonModel):
    """Greedy tool-calling agent over a model folder saved by this project."""

    def load_context(self, context: Any) -> None:
        self.model, self.tok = models.load(context.artifacts["model"])
        self.model.eval()
        self.tok.padding_side = "left"
        self.system_prompt = (context.model_config or {}).get("system_prompt")

    # `model_input` is hinted as a DataFrame, the form MLflow passes under the explicit signature: a richer hint
    # would make MLflow infer a signature from it and drop the explicit one (and its `max_new_tokens` param).
    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Generate one assistant turn per request.

        Args:
            context: MLflow's model context (unused after `load_context`).
            model_input: A DataFrame with columns `messages` (OpenAI chat messages) and `tools` (OpenAI function
                schemas), or, called directly, a list of such dicts. MLflow turns a list of dicts into the DataFrame.
            params: `{"max_new_tokens": int}` (default 128).

        Returns:
            One `{"content", "tool_calls": [{"name", "arguments"}], "error"}` per request; `error` says why the
            output could not be parsed (then `tool_calls` is empty).
        """
        import torch

        rows = _rows(model_input)
        max_new_tokens = int((params or {}).get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)
        prompts = [self.tok.apply_chat_template(self._messages(r["messages"]), tools=r["tools"],
                                                add_generation_prompt=True, tokenize=False) for r in rows]
        batch = self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id, eos_token_id=self.tok.eos_token_id)
        texts = self.tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=False)
        results = []
        for text in texts:
            parsed = parse_output(text)
            results.append({"content": parsed.content, "tool_calls": parsed.calls, "error": parsed.error})
        return results

    def _messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Prepend the system prompt the model was trained with, unless the request brings its own."""
        if self.system_prompt and messages[0].get("role") != "system":
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return messages
