"""Evaluation reuse: a model's evaluation on a set of episodes, computed once and read back on later runs.

A greedy evaluation is a function of the model's weights and tokenizer, the episodes, the settings that shape the
rollouts (`evaluate` batch size, token and turn budgets, sampling), the system prompt, the domain (its tools and
simulator) and the code that rolls out and scores. The key is a SHA-256 over all of them:

- the model folder: every weight, config and tokenizer file (`*.safetensors`, `*.json`, `*.txt`, `*.jinja`,
  `*.model`), not `tooltune.json` (a description: dates and training settings that change no output);
- the episodes, as their canonical JSON (so the same split written twice hits; one changed episode misses);
- `settings` (the caller's dict of output-changing params), the system prompt and the domain's name and catalog;
- the source of `CODE` (the rollout loop, the scorer, the simulators, evaluate.py itself) and the torch and
  transformers versions.

An entry is one folder `<paths.eval_cache>/<key>/` holding `entry.json` (the key, what was evaluated and the metrics),
`rows.jsonl` (one verdict row per episode, its rollout included) and, with sampling, `samples.jsonl`; it is written
with `atomic_dir`, so a killed write leaves no entry. An entry that is unreadable, names another key or does not
cover exactly the episodes asked for is ignored (recomputed and overwritten), never trusted and never an error.

Other sampled results keyed the same way (the reward_model stage's on-policy attempts: `load_result`,
`store_result`) are one folder `<key>/` holding `result.json`, under the same rules.
Reads: the model folder, components/ source files. Writes: `<paths.eval_cache>/<key>/`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.data.episode import Episode
from components.data.fileio import atomic_dir, file_sha256, read_jsonl, write_json, write_jsonl
from components.evaluation.verdict import Verdict

if TYPE_CHECKING:
    from components.config import Params
    from components.domains import Domain

ROOT = Path(__file__).resolve().parents[2]  # the repository: CODE is relative to it
CODE = ("components/evaluation", "components/toolcalls", "components/domains", "components/evaluate.py",
        "components/training/gate.py")
MODEL_FILES = (".safetensors", ".json", ".txt", ".jinja", ".model")
NOT_MODEL = {"tooltune.json"}  # models.save's description of the model: no output depends on it
FORMAT = 1  # bump when the entry layout changes: older entries then miss


@dataclass(frozen=True)
class Entry:
    """A cached evaluation: metrics, verdict rows (rollouts included) and the sampled groups (None: not sampled)."""

    metrics: dict[str, float]
    rows: list[Verdict]
    samples: list[dict[str, Any]] | None = None


def rollout_settings(params: Params, domain: Domain, constrained: bool) -> dict[str, Any]:
    """The settings besides the model and the episodes that shape a rollout (a key's `settings`): the evaluation's
    batch size and token and turn budgets, the system prompt, the domain and its catalog, the grammar, and where and
    in which dtype the model runs (`placement`)."""
    cfg = params.evaluate
    return {"batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens, "max_turns": cfg.max_turns,
            "system_prompt": params.base.system_prompt, "domain": domain.name, "catalog": domain.catalog(),
            "simulated": domain.simulated, "constrained": constrained, **placement(params)}


def placement(params: Params) -> dict[str, str]:
    """Where and in which dtype models are rolled out (`models.load_for_inference`): a GPU's bf16 numbers are not
    the CPU's fp32 ones, so the cache keys them apart."""
    from components.training import models

    device = models.inference_device()
    return {"device": device.type, "dtype": str(models.inference_dtype(device, params.base.dtype))}


def _sha(chunks: list[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:  # each chunk length-prefixed: no two different lists hash alike
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.hexdigest()


def model_hash(folder: Path) -> str | None:
    """The hash of a model folder's weight, config and tokenizer files; None when it holds no weights (nothing to key:
    the model is not on disk)."""
    if not folder.is_dir():
        return None
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and f.suffix in MODEL_FILES and f.name not in NOT_MODEL)
    if not any(f.suffix == ".safetensors" for f in files):
        return None
    return _sha([f"{f.name}:{file_sha256(f)}".encode() for f in files])


def code_hash(extra: tuple[str, ...] = ()) -> str:
    """The hash of the source files that roll out and score (`CODE`, and the caller's `extra` files) and of the
    torch/transformers versions."""
    import torch
    import transformers

    files = sorted(p for c in (*CODE, *extra) for p in ([ROOT / c] if c.endswith(".py") else (ROOT / c).rglob("*.py")))
    parts = [f"{f.relative_to(ROOT)}:{file_sha256(f)}".encode() for f in files]
    return _sha(parts + [f"torch {torch.__version__}, transformers {transformers.__version__}".encode()])


def episodes_hash(episodes: list[Episode]) -> str:
    """The hash of the episodes' canonical JSON, in order."""
    return _sha([e.model_dump_json(exclude_none=True).encode() for e in episodes])


def key(model: str, episodes: str, settings: dict[str, Any], code: str) -> str:
    """The entry key from the model, episodes and code hashes and the output-changing settings (JSON-able)."""
    return _sha([model.encode(), episodes.encode(), code.encode(),
                 json.dumps(settings, sort_keys=True, default=str).encode(), str(FORMAT).encode()])


def load(root: Path, entry_key: str, episodes: list[Episode]) -> Entry | None:
    """The entry `entry_key` under `root` if complete and about exactly `episodes` (same ids, same order), else None.

    Anything wrong (missing file, bad JSON, another key, other episodes) is a miss: the caller recomputes."""
    folder = root / entry_key
    try:
        meta = json.loads((folder / "entry.json").read_text(encoding="utf-8"))
        rows = [Verdict.from_row(r) for r in read_jsonl(folder / "rows.jsonl")]
        samples = read_jsonl(folder / "samples.jsonl") if meta["sampled"] else None
        ids = [e.id for e in episodes]
        if meta["key"] != entry_key or meta["format"] != FORMAT or [v.id for v in rows] != ids:
            return None
        if samples is not None and [s["id"] for s in samples] != ids:
            return None
        metrics = {str(k): float(v) for k, v in meta["metrics"].items()}
    except (OSError, ValueError, KeyError, TypeError):  # DataError is a ValueError; a half-written file is one
        return None
    return Entry(metrics, rows, samples)


def store(root: Path, entry_key: str, entry: Entry, about: dict[str, Any]) -> Path:
    """Write the entry `entry_key` under `root` atomically (replacing any entry there); `about` (what was evaluated:
    the model's name and folder) goes into entry.json for whoever inspects the cache. Returns its folder."""
    folder = root / entry_key
    with atomic_dir(folder) as tmp:
        write_jsonl(tmp / "rows.jsonl", [v.row() for v in entry.rows])
        if entry.samples is not None:
            write_jsonl(tmp / "samples.jsonl", entry.samples)
        write_json(tmp / "entry.json", {"key": entry_key, "format": FORMAT, "sampled": entry.samples is not None,
                                        "about": about, "metrics": entry.metrics})
    return folder


def load_result(root: Path, entry_key: str) -> Any | None:
    """The JSON value `store_result` kept under `entry_key`, or None: missing, unreadable or about another key (a
    miss, never an error: the caller recomputes)."""
    try:
        meta = json.loads((root / entry_key / "result.json").read_text(encoding="utf-8"))
        if meta["key"] != entry_key or meta["format"] != FORMAT:
            return None
        return meta["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_result(root: Path, entry_key: str, result: Any, about: dict[str, Any]) -> Path:
    """Keep the JSON value `result` under `entry_key` atomically (replacing any entry there); `about` says what it is
    for whoever inspects the cache. Returns its folder."""
    folder = root / entry_key
    with atomic_dir(folder) as tmp:
        write_json(tmp / "result.json", {"key": entry_key, "format": FORMAT, "about": about, "result": result})
    return folder
