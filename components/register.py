"""Stage `register`: register the trained agent in the MLflow registry and promote it only if it is better.

Reads: `metrics/evaluate.json` (flat `"<model>.<metric>"` scores), the candidate model folder (`paths.rl_model` when
`rl` is evaluated, else `paths.sft_model`), params `register`, `tracking`, the registry's current `champion`.
Writes: a new version of `register.model_name` (pyfunc `ToolAgent`: OpenAI chat in and out, with the `components`
code), lineage/metric tags, the model card (description and README.md), aliases `champion` / `previous` /
`challenger`, `metrics/register.json`.
Run: `python -m components.register` (DVC) or the `register` task of `tooltune run`.

Gate: the candidate becomes `champion` only if its gate metric beats the base model by more than `min_gain` and,
when there is a champion, beats the champion's recorded `gate_value` by more than `min_gain`. The champion it
replaces gets `previous`; a candidate that does not pass gets `challenger`.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from importlib.metadata import version as installed
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from components import tracking
from components.config import Params
from components.episode import DataError
from components.result import StageResult
from components.serving import card
from components.serving.pyfunc import ToolAgent, code_paths

ARTIFACT = "agent"
CHALLENGER, PREVIOUS = "challenger", "previous"
# What the served pyfunc needs at load time, pinned to the versions that logged it.
SERVING_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "jsonschema", "pydantic", "pyyaml")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(gate: str, candidate: float, base: float, champion: float | None, min_gain: float,
           champion_version: str | None = None) -> Decision:
    """The promotion gate: beat the base, then the champion (if any), each by more than `min_gain`."""
    if not candidate > base + min_gain:
        return Decision(False, f"{gate} {candidate:.4f} does not beat base {base:.4f} by more than {min_gain}")
    if champion is not None and not candidate > champion + min_gain:
        return Decision(False, f"{gate} {candidate:.4f} does not beat champion v{champion_version} "
                               f"{champion:.4f} by more than {min_gain}")
    against = f"champion v{champion_version} {champion:.4f}" if champion is not None else "no champion yet"
    return Decision(True, f"{gate} {candidate:.4f} beats base {base:.4f} and {against} by more than {min_gain}")


def read_scores(path: Path, keys: list[str]) -> dict[str, float]:
    """The evaluation scores, checked to hold `keys`.

    Raises:
        DataError: The file is missing or not a JSON object, or a key is missing.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found (run the evaluate stage first)")
    try:
        scores = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(scores, dict):
        raise DataError(f"{path}: expected a JSON object of \"<model>.<metric>\" scores")
    missing = [k for k in keys if k not in scores]
    if missing:
        raise DataError(f"{path}: missing key(s) {missing}; present: {sorted(scores)}")
    return scores


def run(params: Params) -> StageResult:
    """Log the candidate as a new registered version and move the aliases by the gate."""
    cfg = params.register_
    candidate = "rl" if "rl" in params.evaluate.models else "sft"
    folder = params.path("rl_model" if candidate == "rl" else "sft_model")
    gate_key = f"{candidate}.{cfg.gate_metric}"
    scores = read_scores(params.path("metrics") / "evaluate.json", [gate_key, f"base.{cfg.gate_metric}"])
    if not folder.is_dir():
        raise DataError(f"{folder}: candidate model folder ({candidate}) not found")
    gate_value, base_value = float(scores[gate_key]), float(scores[f"base.{cfg.gate_metric}"])
    metrics = {k.split(".", 1)[1]: float(v) for k, v in scores.items() if k.startswith(f"{candidate}.")}

    if mlflow.active_run() is None:  # run alone (not through execute_stage): open our own run
        tracking.configure(params)
        with mlflow.start_run(run_name="register"):
            return _register(params, candidate, folder, metrics, gate_value, base_value)
    return _register(params, candidate, folder, metrics, gate_value, base_value)


def _register(params: Params, candidate: str, folder: Path, metrics: dict[str, float], gate_value: float,
              base_value: float) -> StageResult:
    cfg, client = params.register_, MlflowClient()
    champion = tracking.champion_version(client, cfg.model_name)
    champion_value = _champion_gate_value(champion, cfg.model_name, cfg.gate_metric)
    decision = decide(cfg.gate_metric, gate_value, base_value, champion_value, cfg.min_gain,
                      champion.version if champion else None)

    version = _log_model(params, folder, metrics)
    promotion = ("promoted: " if decision.promote else "not promoted: ") + decision.reason
    tags = {**tracking.lineage_tags(params), "gate_metric": cfg.gate_metric, "gate_value": str(gate_value),
            "candidate": candidate, "promotion": promotion,
            **{f"{tracking.METRIC_TAG_PREFIX}{k}": str(v) for k, v in metrics.items()}}
    for key, value in tags.items():
        client.set_model_version_tag(cfg.model_name, version, key, value)
    scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
    client.update_model_version(cfg.model_name, version, description=(
        f"{candidate} candidate, base {cfg.gate_metric}={base_value:.4f}. Scores: {scores}. {decision.reason}.\n\n"
        + card.attach(params, candidate, version)))

    alias = tracking.CHAMPION if decision.promote else CHALLENGER
    if decision.promote and champion is not None:
        client.set_registered_model_alias(cfg.model_name, PREVIOUS, champion.version)
    client.set_registered_model_alias(cfg.model_name, alias, version)
    return StageResult(
        stage="register",
        metrics={"version": float(version), "promoted": float(decision.promote), "gate_value": gate_value,
                 "champion_gate_value": champion_value if champion_value is not None else -1.0},
        details={"model_name": cfg.model_name, "version": version, "alias": alias, "reason": decision.reason,
                 "model_uri": f"models:/{cfg.model_name}/{version}"})


def _champion_gate_value(champion: ModelVersion | None, model_name: str, gate_metric: str) -> float | None:
    """The champion's recorded gate value; a champion measured otherwise cannot be compared, so that is an error."""
    if champion is None:
        return None
    if champion.tags.get("gate_metric") != gate_metric or "gate_value" not in champion.tags:
        raise DataError(f"registry {model_name} v{champion.version} (alias champion) has no `gate_value` for gate "
                        f"metric {gate_metric!r} (tags: gate_metric={champion.tags.get('gate_metric')!r}); move or "
                        f"remove the champion alias to compare against another version")
    return float(champion.tags["gate_value"])


def _log_model(params: Params, folder: Path, metrics: dict[str, float]) -> str:
    """Log the folder as a `ToolAgent` pyfunc in the active run, attach its metrics, register it; return the version."""
    with warnings.catch_warnings():  # no input example or signature on purpose: see components/serving/pyfunc.py
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT, python_model=ToolAgent(), artifacts={"model": str(folder)}, code_paths=code_paths(),
            model_config={"system_prompt": params.base.system_prompt,
                          "max_new_tokens": params.evaluate.max_new_tokens},
            registered_model_name=params.register_.model_name,
            pip_requirements=[f"{p}=={installed(p).split('+')[0]}" for p in SERVING_PACKAGES])  # drop +cpu
    mlflow.log_metrics(metrics, model_id=info.model_id)  # shown on the LoggedModel in the MLflow 3 UI
    return str(info.registered_model_version)


def main() -> None:
    from components.tracking import stage_main

    stage_main("register")


if __name__ == "__main__":
    main()
