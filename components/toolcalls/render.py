"""How the model sees its tools: the one function that renders a prompt, and the two forms of the tool list.

Every prompt the project builds goes through the model tokenizer's chat template, which the `base` stage settles
once and every trained model inherits (it is saved with the tokenizer): SFT (TRL renders each row's `messages` and
`tools`), RL (TRL for simulated domains, `single_step.grpo_rows` otherwise), evaluation and `tooltune bfcl` (the
engine's `PrefixCache`), serving and the validate stage's token counts. The Python callers use `prompt`, so they
pass the tools the same way (`None` for none) and cannot drift apart; TRL calls the same template. So one setting,
`base.tools_format`, changes what training, evaluation and serving see, together.

The project's ChatML template (`templates/chatml_tools.jinja`) lists the tools in one of two forms:
- `compact` (default): one line per tool, `- name(param, ...): description`. Short, but it drops types, enums,
  required and defaults (the README's numbers were measured with it).
- `json`: the `<tools>` block Qwen/Hermes-style clients expect, one `{"type": "function", "function": {...}}` JSON
  object per line with the whole schema (`templates/tools_json.jinja`): each line parses back to the schema given. Longer prompts (about 3-5x the tool list's tokens).
A model that keeps its own chat template (`base` found it trainable) renders tools its own way; `json` asks for the
ChatML template's block and is refused for it (`base.prepare_template`).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

FORMATS = ("compact", "json")
# The compact tools block of templates/chatml_tools.jinja: its `{%- if tools %}` ... `{%- endif %}` at 4 spaces.
_BLOCK = re.compile(r"^    \{%- if tools %\}\n.*?^    \{%- endif %\}\n", re.DOTALL | re.MULTILINE)


def prompt(tok: Any, messages: list[dict[str, Any]] | list[list[dict[str, Any]]], tools: list[dict[str, Any]] | None,
           generation: bool = True) -> Any:
    """The text the model reads for `messages` with `tools` (the tokenizer's chat template; no tools: `None`).

    Args:
        tok: The model's tokenizer (its chat template renders the tools in the model's `tools_format`).
        messages: OpenAI chat messages; or a batch of conversations sharing `tools` (a list of texts comes back).
        tools: OpenAI tool schemas (`{"type": "function", "function": {...}}` or bare functions); empty: none.
        generation: End with the assistant's turn opening (a prompt to decode from); False: the messages only.
    """
    return tok.apply_chat_template(messages, tools=tools or None, add_generation_prompt=generation, tokenize=False)


def chat_template(template: str, tools_format: str) -> str:
    """The project's ChatML template with its tool list in `tools_format` (`compact`: the template unchanged).

    Raises:
        ValueError: An unknown format, or a template without the compact tools block to replace.
    """
    if tools_format not in FORMATS:
        raise ValueError(f"tools_format {tools_format!r}: expected one of {list(FORMATS)}")
    if tools_format == "compact":
        return template
    blocks = _BLOCK.findall(template)
    if len(blocks) != 1:
        raise ValueError(f"the chat template has {len(blocks)} tools blocks (`{{%- if tools %}}` at 4 spaces), not 1")
    block = resources.files("components").joinpath(f"templates/tools_{tools_format}.jinja").read_text(encoding="utf-8")
    return _BLOCK.sub(lambda _: block, template)
