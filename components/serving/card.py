"""The model card: what the registered model is, what it learnt from, how it scored on held-out data, and how to
use it.

Reads: params (`base`, `project`, `sft`, `rl`, `register`), `metrics/ingest.json` (episodes per pattern),
`metrics/build.json` (split sizes) and `metrics/evaluate.json` (held-out scores per model and pattern).
Writes: (`attach`) the card as `README.md` beside the registered version's MLmodel file and in its model folder
(the Hugging Face folder MLflow copied the trained model into, `artifacts/<rl|sft>` as its MLmodel names it, where
the Hub reads it as the model card); register also puts it in the description.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.config import Params

MODEL_ARTIFACT = "model"  # register's pyfunc artifact key: `artifacts={"model": <trained model folder>}`


def _read(path: Path) -> dict[str, float]:
    """A metrics file, or {} when the stage that writes it has not run (the card then says so)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def render(params: Params, candidate: str, version: str | None = None, folder: str = "artifacts/<model>") -> str:
    """The card of the `candidate` ("sft" or "rl") model, as Markdown; `folder`: the version's model folder."""
    metrics_dir = params.path("metrics")
    ingest, build = _read(metrics_dir / "ingest.json"), _read(metrics_dir / "build.json")
    scores = _read(metrics_dir / "evaluate.json")
    name = params.register_.model_name + (f" v{version}" if version else "")
    domain = params.project.domain + (f" (catalog {params.project.catalog})" if params.project.catalog else "")
    parts = [
        f"# {name}\n",
        f"A tool-calling agent fine-tuned by tooltune: base model `{params.base.model}`, {candidate.upper()} "
        f"candidate, domain `{domain}`. It answers in the project's ChatML tool template "
        "(`<tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call>` blocks); every server parses that "
        "output into OpenAI `tool_calls` and never executes it.\n",
        "## Data\n", _data(ingest, build),
        "## Training\n", _training(params, candidate),
        "## Held-out evaluation\n", _evaluation(scores, candidate),
        "## Error classes (held-out)\n", _errors(scores, candidate),
        "## Intended use and limits\n", _limits(params),
        "## Use\n", _use(params, folder),
    ]
    return "\n".join(parts)


def _data(ingest: dict[str, float], build: dict[str, float]) -> str:
    if not ingest:
        return "Not recorded (metrics/ingest.json missing).\n"
    patterns = {k[len("pattern_"):]: int(v) for k, v in ingest.items() if k.startswith("pattern_")}
    sources = {k[len("source_"):]: int(v) for k, v in ingest.items() if k.startswith("source_")}
    rows = [f"| {p} | {n} |" for p, n in sorted(patterns.items())]
    splits = ", ".join(f"{k[:-len('_episodes')]} {int(v)}" for k, v in build.items() if k.endswith("_episodes"))
    return "\n".join([
        f"{int(ingest.get('episodes', 0))} episodes ({int(ingest.get('heldout_episodes', 0))} held out), sources: "
        + (", ".join(f"{s} {n}" for s, n in sorted(sources.items())) or "not recorded") + ".",
        f"Splits: {splits or 'not recorded'}.\n", "| pattern | episodes |", "|---|---|", *rows, ""])


def _training(params: Params, candidate: str) -> str:
    sft, rl = params.sft, params.rl

    def lora(cfg: Any) -> str:
        return f"LoRA r={cfg.r} alpha={cfg.alpha}" if cfg.enabled else "full fine-tune"

    lines = [f"- SFT: {sft.max_steps} steps, batch {sft.batch_size}, learning rate {sft.learning_rate:g}, "
             f"max length {sft.max_length}, {lora(sft.lora)}."]
    if candidate == "rl":
        weights = ", ".join(f"{k} {v:g}" for k, v in rl.reward_weights.model_dump().items())
        lines.append(f"- RL: {rl.algorithm}, {rl.max_steps} steps, batch {rl.batch_size}, {rl.num_generations} "
                     f"generations, learning rate {rl.learning_rate:g}, beta {rl.beta:g}, temperature "
                     f"{rl.temperature:g}, reward weights: {weights}, {lora(rl.lora)}.")
    lines.append(f"- System prompt: \"{params.base.system_prompt}\"")
    return "\n".join(lines) + "\n"


def _evaluation(scores: dict[str, float], candidate: str) -> str:
    patterns = sorted({k.split(".", 1)[1].rsplit("_", 1)[0] for k in scores
                       if k.startswith(f"{candidate}.") and k.endswith("_n")})
    if not patterns:
        return "Not recorded (metrics/evaluate.json has no per-pattern scores).\n"
    rows = ["| pattern | episodes | base exact | model exact | model completion |", "|---|---|---|---|---|"]
    for p in patterns:
        def get(model: str, metric: str) -> str:
            value = scores.get(f"{model}.{p}_{metric}")
            return "-" if value is None else (f"{int(value)}" if metric == "n" else f"{value:.3f}")
        rows.append(f"| {p} | {get(candidate, 'n')} | {get('base', 'exact')} | {get(candidate, 'exact')} | "
                    f"{get(candidate, 'completion')} |")
    overall = scores.get(f"{candidate}.exact")
    tail = [f"\nOverall exact: {overall:.3f} (base {scores.get('base.exact', float('nan')):.3f}); unparsable "
            f"outputs: {scores.get(f'{candidate}.unparsable', float('nan')):.3f}."] if overall is not None else []
    return "\n".join(rows + tail) + "\n"


def _errors(scores: dict[str, float], candidate: str) -> str:
    prefix = f"{candidate}.errors."
    errors = sorted(((k[len(prefix):], v) for k, v in scores.items() if k.startswith(prefix) and v),
                    key=lambda kv: -kv[1])
    if not errors:
        return "None recorded.\n"
    total = sum(v for k, v in scores.items() if k.startswith(f"{candidate}.") and k.endswith("_n"))
    head = f"Held-out episodes showing each class (of {total:g}; the classes are defined in components/toolcalls):"
    return "\n".join([head, "", *(f"- {name}: {value:g}" for name, value in errors)]) + "\n"


def _limits(params: Params) -> str:
    return (f"For calling the `{params.project.domain}` tools it was trained on, through a caller that validates "
            "each call against the tool schema before running it. It is a small model: it makes the errors "
            "above, knows no tools but those listed in the request, and its text answers are not checked facts. "
            "Decoding is greedy; sampling parameters are ignored. Not for actions with side effects without "
            "a human or a policy check between the call and its execution.\n")


def _use(params: Params, folder: str) -> str:
    name = params.register_.model_name
    return "\n".join([
        "```bash",
        "tooltune serve --model champion            # OpenAI-compatible, http://127.0.0.1:8000/v1",
        "tooltune chat --model champion             # terminal chat; calls run in the domain simulator",
        f"mlflow models serve -m models:/{name}@champion --env-manager local -h 127.0.0.1 -p 5001",
        "```",
        f"Publish to the Hugging Face Hub (network needed): the version's `{folder}` folder is a Hugging Face "
        "model folder with this card as its README.md: "
        f"`mlflow artifacts download -u models:/{name}@champion -d out && hf upload <user>/<repo> "
        f"out/{folder}`.\n"])


def attach(params: Params, candidate: str, version: str) -> str:
    """Render the card of registered `version` and log it as `README.md` beside its MLmodel file and inside its
    model folder (the Hugging Face folder its MLmodel names, ready for `hf upload`); return the text.

    The trained model's folder in the workdir (`paths.rl_model` / `paths.sft_model`) is left as it is: it is the
    training stage's DVC output, and a file added there would make DVC rerun that training.
    """
    import tempfile

    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # where the version's files lie (the SQLite registry does not keep the LoggedModel id a version came from)
    location = MlflowClient().get_model_version_download_uri(params.register_.model_name, version)
    repository = get_artifact_repository(location)
    with tempfile.TemporaryDirectory(prefix="tooltune-card-") as tmp:
        folder = model_folder(repository, tmp)
        text = render(params, candidate, version, folder)
        path = Path(tmp) / "README.md"
        path.write_text(text, encoding="utf-8")
        repository.log_artifact(str(path))
        repository.log_artifact(str(path), folder)
    return text


def model_folder(repository: Any, tmp: str) -> str:
    """The version's model folder, relative to its MLmodel: where MLflow copied the pyfunc artifact `model` (the
    trained model's folder, under its own name: `artifacts/rl` or `artifacts/sft`), as its MLmodel records it."""
    import yaml

    mlmodel = Path(repository.download_artifacts("MLmodel", tmp))
    flavor = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {}).get("python_function", {})
    entry = (flavor.get("artifacts") or {}).get(MODEL_ARTIFACT) or {}
    if not entry.get("path"):
        raise ValueError(f"{mlmodel.name} of the registered version: no pyfunc artifact {MODEL_ARTIFACT!r} (the "
                         "model folder register logs)")
    return str(entry["path"])
