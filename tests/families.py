"""Tiny random models of real template families, built offline: a byte-level BPE tokenizer with the family's special
tokens (as its hub tokenizer has them: BOS added where the family adds it, end-of-turn as EOS), the family's real
chat template (tests/fixtures/templates/, byte-identical to the copies TRL ships and recognises) and a 1-layer
model of the family's architecture from a config. Used by tests/unit/test_templates.py and
tests/integration/test_template_families.py.

Families: `llama` (Llama 3.2 template: JSON calls, no training version in TRL), `gemma` (Gemma 3: no tool roles),
`qwen_xml` (Qwen3 model with the Qwen3.5 template: `<tool_call><function=...><parameter=...>` XML calls),
`gptoss` (gpt-oss channels; tokenizer only) and `uncased` (a GPT-2 model whose tokenizer lowercases, no template).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TEMPLATES = Path(__file__).parent / "fixtures" / "templates"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city.",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
_CORPUS = ["What is the weather in Paris? It is sunny in Rome.",
           '{"name": "get_weather", "arguments": {"city": "Paris"}}',
           "<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>", "0123456789 days"] * 30
FAMILIES: dict[str, dict[str, Any]] = {
    "llama": {"template": "llama3_2.jinja", "arch": "llama", "bos": "<|begin_of_text|>", "eos": "<|eot_id|>",
              "pad": "<|finetune_right_pad_id|>",
              "special": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                          "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"]},
    "gemma": {"template": "gemma3.jinja", "arch": "gemma3", "bos": "<bos>", "eos": "<eos>", "pad": "<pad>",
              "special": ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]},
    "qwen_xml": {"template": "qwen3_5_nothink.jinja", "arch": "qwen3", "bos": None, "eos": "<|im_end|>",
                 "pad": "<|endoftext|>", "special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                 "added": ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>",
                           "</tool_response>"]},
    "gptoss": {"template": "gptoss.jinja", "arch": None, "bos": None, "eos": "<|return|>", "pad": "<|endoftext|>",
               "special": ["<|endoftext|>", "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>",
                           "<|return|>", "<|call|>"]},
    "uncased": {"template": None, "arch": "gpt2", "bos": None, "eos": "<|endoftext|>", "pad": None,
                "special": ["<|endoftext|>"], "lowercase": True},
}


def tokenizer(family: str) -> Any:
    """The family's tokenizer with its chat template (no response template: TRL or `base` sets one)."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    template = (TEMPLATES / spec["template"]).read_text(encoding="utf-8") if spec["template"] else None
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    if spec.get("lowercase"):
        bpe.normalizer = normalizers.Lowercase()
    bpe.train_from_iterator(_CORPUS + [template or ""], trainers.BpeTrainer(
        vocab_size=600, special_tokens=spec["special"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    if spec["bos"]:  # like the hub tokenizers of Llama 3 and Gemma: BOS prepended to every encoding
        bpe.post_processor = processors.TemplateProcessing(
            single=f"{spec['bos']} $A", special_tokens=[(spec["bos"], bpe.token_to_id(spec["bos"]))])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=spec["bos"], eos_token=spec["eos"],
                                  pad_token=spec["pad"])
    tok.add_tokens(spec.get("added", []))  # normal tokens, as Qwen's tool tags are
    tok.chat_template = template
    return tok


def model(family: str, tok: Any) -> torch.nn.Module:
    """A 1-layer random model of the family's architecture (hidden size 32)."""
    import transformers as tf

    torch.manual_seed(0)
    ids = {"vocab_size": len(tok), "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
           "bos_token_id": tok.bos_token_id}
    arch = FAMILIES[family]["arch"]
    if arch == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=32, n_layer=1, n_head=2, n_positions=1024, **ids))
    sizes = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "max_position_embeddings": 4096, **ids}
    if arch == "llama":
        return tf.LlamaForCausalLM(tf.LlamaConfig(**sizes, tie_word_embeddings=True))
    if arch == "gemma3":
        return tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(**sizes, head_dim=16, sliding_window=64))
    return tf.Qwen3ForCausalLM(tf.Qwen3Config(**sizes, head_dim=16, tie_word_embeddings=True))


def save(family: str, out: Path) -> Path:
    """The family's tiny model and tokenizer as a local folder, as `base.model` takes a path."""
    tok = tokenizer(family)
    model(family, tok).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
