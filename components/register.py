"""Stage `register`: register the trained agent in the MLflow registry and promote it only if it is better.

Reads: `metrics/evaluate.json` (flat `"<model>.<metric>"` scores), the candidate model folder (`paths.rl_model` when
`rl` is evaluated, else `paths.sft_model`), params `register`, `tracking`, the registry's current `champion`.
Writes: a version of `register.model_name` (pyfunc `ToolAgent`: OpenAI chat in and out, with the `components`
code), lineage/metric/decision tags, the model card (description and README.md), aliases `champion` / `previous` /
`challenger`, `metrics/register.json`.
Run: `python -m components.register` (DVC) or the `register` task of `tooltune run`.

Also reads, when the evaluate stage measured the champion this run (`evaluate.compare_champion`): `champion.*` in
evaluate.json and the per-episode verdicts `paths.reports/evaluate/{<candidate>,champion}_rollouts.jsonl`.

Gate: the candidate becomes `champion` only if its gate metric beats the base model by more than `min_gain` and,
when there is a champion, beats it on THIS run's test split, episode by episode: by more than `min_gain` with the
exact McNemar test's p < `register.alpha`, and with no error class of the taxonomy grown beyond chance
(components/tracking/gate.py has the rule). The decision names every error class's change (champion -> candidate),
in the `promotion` tag, `gate.error.<class>` tags, the description and the stage's console line. A champion the
evaluate stage did not measure this run is compared by the `gate_value` recorded at its registration, with a note
saying so. The champion it replaces gets `previous`; a candidate that does not pass gets `challenger`.

Retention: after the decision, not-promoted versions older than the `register.keep_unpromoted` newest lose their
weights (tag `tooltune.pruned`; components/tracking/retention.py).

Concurrency: `promote` re-reads the champion, decides and moves the aliases under `promotion_lock` (a file lock
beside a local store, a lease in a remote registry; see that module), so concurrent promoters act one at a time
and the best version ends as champion. Every version records its decision in the `promotion` tag.

Retries: a version is created with the `tooltune.register_key` tag (a hash of the candidate folder and its scores,
set atomically with the version), and `tooltune.register_state=done` marks it finished. A rerun for the same
candidate finds that version and finishes it (tags, decision, aliases) instead of registering another; one that
is already done keeps and reports its recorded decision.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, replace
from importlib.metadata import version as installed
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from components import tracking
from components.config import Params
from components.data.episode import DataError
from components.tracking import retention
from components.tracking.gate import Evidence, decide as decide_paired, load as load_evidence
from components.tracking.promotion_lock import promotion_lock
from components.result import StageResult
from components.serving import card
from components.serving.pyfunc import ToolAgent, code_paths

ARTIFACT = "agent"
CHALLENGER, PREVIOUS = "challenger", "previous"
PROMOTION_TAG, COMPARED_TAG = "promotion", "champion_gate_value"  # the decision, the champion value it compared
SOURCE_TAG = "champion_gate_source"  # where that value came from: "this run" (measured by evaluate) or "recorded"
KEY_TAG, STATE_TAG, DONE = "tooltune.register_key", "tooltune.register_state", "done"
# What the served pyfunc needs at load time, pinned to the versions that logged it.
SERVING_PACKAGES = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "jsonschema",
                    "google-re2",  # components.toolcalls (the served parser) imports it
                    "pydantic", "pyyaml",
                    "xgrammar")  # components.evaluation.constrained (decoding.constrained)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


@dataclass(frozen=True)
class Gate:
    """What the promotion decision needs about one registered version."""

    model_name: str
    version: str
    metric: str
    value: float
    base: float
    min_gain: float
    evidence: Evidence | None = None  # this run's champion column, when evaluate measured one


@dataclass(frozen=True)
class Outcome:
    """A version's promotion: the decision, the alias it got, and the champion value it was compared with."""

    decision: Decision
    alias: str
    champion_value: float | None
    source: str  # SOURCE_TAG's value; "none" without a champion


def decide(gate: str, candidate: float, base: float, champion: float | None, min_gain: float,
           champion_version: str | None = None, evidence: Evidence | None = None) -> Decision:
    """The promotion gate: beat the base by more than `min_gain`, then the champion (if any): on this run's
    `evidence` by the paired rule of components/tracking/gate.py, else its recorded value by more than `min_gain`."""
    if not candidate > base + min_gain:
        return Decision(False, f"{gate} {candidate:.4f} does not beat base {base:.4f} by more than {min_gain}")
    if champion is not None and evidence is not None:
        promote, reason = decide_paired(gate, evidence, min_gain, str(champion_version))
        return Decision(promote, f"{gate} {candidate:.4f} beats base {base:.4f} by more than {min_gain}; {reason}")
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
    """Register the candidate (or finish its version from an earlier, interrupted try) and promote it by the gate."""
    cfg = params.register_
    candidate = "rl" if "rl" in params.evaluate.models else "sft"
    folder = params.path("rl_model" if candidate == "rl" else "sft_model")
    gate_key = f"{candidate}.{cfg.gate_metric}"
    scores = read_scores(params.path("metrics") / "evaluate.json", [gate_key, f"base.{cfg.gate_metric}"])
    if not folder.is_dir():
        raise DataError(f"{folder}: candidate model folder ({candidate}) not found")
    metrics = {k.split(".", 1)[1]: float(v) for k, v in scores.items() if k.startswith(f"{candidate}.")}
    evidence = load_evidence(scores, params.path("reports") / "evaluate", candidate, cfg.gate_metric, cfg.alpha)
    gate = Gate(cfg.model_name, "", cfg.gate_metric, float(scores[gate_key]),
                float(scores[f"base.{cfg.gate_metric}"]), cfg.min_gain, evidence)

    if mlflow.active_run() is None:  # run alone (not through execute_stage): open our own run
        tracking.configure(params)
        with mlflow.start_run(run_name="register"):
            return _register(params, candidate, folder, metrics, gate)
    return _register(params, candidate, folder, metrics, gate)


def _register(params: Params, candidate: str, folder: Path, metrics: dict[str, float], gate: Gate) -> StageResult:
    cfg, client = params.register_, MlflowClient()
    key = candidate_key(folder, candidate, metrics, gate)
    version = find_version(client, cfg.model_name, key) or _log_model(params, folder, metrics, key)
    gate = replace(gate, version=version)
    _tag_version(client, params, gate, candidate, metrics)
    outcome = promote(client, gate, mlflow.get_registry_uri(), cfg.lock_timeout_s)
    scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
    client.update_model_version(cfg.model_name, version, description=(
        f"{candidate} candidate, base {cfg.gate_metric}={gate.base:.4f}. Scores: {scores}. "
        f"{outcome.decision.reason}.\n\n" + card.attach(params, candidate, version)))
    pruned = retention.prune(client, cfg.model_name, cfg.keep_unpromoted, _refused)
    champion_value = outcome.champion_value
    return StageResult(
        stage="register",
        metrics={"version": float(version), "promoted": float(outcome.decision.promote), "gate_value": gate.value,
                 "champion_gate_value": champion_value if champion_value is not None else -1.0,
                 "pruned": float(len(pruned))},
        details={"model_name": cfg.model_name, "version": version, "alias": outcome.alias,
                 "reason": outcome.decision.reason, "model_uri": f"models:/{cfg.model_name}/{version}",
                 "champion_gate_source": outcome.source, "pruned_versions": pruned})


def candidate_key(folder: Path, candidate: str, metrics: dict[str, float], gate: Gate) -> str:
    """A hash of the candidate's files and scores: the same candidate registered again gets the same key."""
    digest = hashlib.sha256(json.dumps([gate.model_name, candidate, gate.metric, gate.base, sorted(metrics.items())])
                            .encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def find_version(client: MlflowClient, model_name: str, key: str) -> str | None:
    """The version an earlier try registered for this candidate `key`, or None."""
    found = client.search_model_versions(f"name = '{model_name}' and tags.`{KEY_TAG}` = '{key}'")
    return str(min(int(v.version) for v in found)) if found else None


def _tag_version(client: MlflowClient, params: Params, gate: Gate, candidate: str, metrics: dict[str, float]) -> None:
    """Lineage, gate and metric tags (idempotent: a retry writes the same values again)."""
    tags = {**tracking.lineage_tags(params), "gate_metric": gate.metric, "gate_value": str(gate.value),
            "candidate": candidate, **{f"{tracking.METRIC_TAG_PREFIX}{k}": str(v) for k, v in metrics.items()}}
    for key, value in tags.items():
        client.set_model_version_tag(gate.model_name, gate.version, key, value)


def promote(client: MlflowClient, gate: Gate, registry_uri: str, lock_timeout_s: float) -> Outcome:
    """Decide on an already-registered version and move the aliases, one promoter at a time.

    Under the promotion lock the champion is re-read, so the decision compares with the champion as it is when
    the aliases move. Idempotent: a version already marked done keeps its recorded decision; one whose earlier
    try made it champion but died before marking it done is just marked done.

    Raises:
        LockTimeout: Another promoter held the lock for over `lock_timeout_s`.
        DataError: The champion has no comparable `gate_value`.
    """
    with promotion_lock(client, registry_uri, gate.model_name, lock_timeout_s):
        tags = client.get_model_version(gate.model_name, gate.version).tags
        champion = tracking.champion_version(client, gate.model_name)
        made_champion = champion is not None and str(champion.version) == gate.version and PROMOTION_TAG in tags
        if tags.get(STATE_TAG) != DONE and not made_champion:
            _decide_and_move(client, gate, champion)
        client.set_model_version_tag(gate.model_name, gate.version, STATE_TAG, DONE)
        return _recorded(client.get_model_version(gate.model_name, gate.version).tags)


def _decide_and_move(client: MlflowClient, gate: Gate, champion: ModelVersion | None) -> None:
    """Record the decision on the version, then move the aliases (so a version with an alias has its decision)."""
    evidence, note = _this_run(gate.evidence, champion)
    champion_value = (evidence.champion_value if evidence is not None
                      else _champion_gate_value(champion, gate.model_name, gate.metric))
    decision = decide(gate.metric, gate.value, gate.base, champion_value, gate.min_gain,
                      champion.version if champion else None, evidence=evidence)
    prefix = "promoted: " if decision.promote else "not promoted: "
    source = "none" if champion is None else "this run" if evidence is not None else "recorded"
    tags = {PROMOTION_TAG: prefix + decision.reason + note, SOURCE_TAG: source,
            COMPARED_TAG: "none" if champion_value is None else str(champion_value)}
    if evidence is not None:
        tags |= {"gate.paired_p": str(evidence.gate.p_value), "gate.paired_delta": str(evidence.gate.delta),
                 **{f"gate.error.{c.name}": c.change() for c in evidence.classes}}
    for key, value in tags.items():
        client.set_model_version_tag(gate.model_name, gate.version, key, value)
    if decision.promote and champion is not None:
        client.set_registered_model_alias(gate.model_name, PREVIOUS, champion.version)
    client.set_registered_model_alias(gate.model_name, tracking.CHAMPION if decision.promote else CHALLENGER,
                                      gate.version)


def _this_run(evidence: Evidence | None, champion: ModelVersion | None) -> tuple[Evidence | None, str]:
    """This run's evidence if it measured the current champion, else None; and a note for the decision saying why
    the recorded value was used instead ("" when nothing needs saying)."""
    if champion is None:
        return None, ""
    current = str(champion.version)
    if evidence is None:
        why = "the evaluate stage did not measure it this run (evaluate.compare_champion off, or no champion then)"
    elif evidence.champion_version not in (None, current):  # another promoter moved the alias since evaluate
        why = f"this run's evaluate measured v{evidence.champion_version}, not v{current}"
    elif evidence.champion_version is None:
        return evidence, f" (evaluate did not record the version of its champion column: taken as v{current})"
    else:
        return evidence, ""
    return None, (f" (champion v{current}: compared by the gate_value recorded at its registration, because {why};"
                  " no paired test, no error-class check)")


def _refused(version: ModelVersion) -> bool:
    """A version whose promotion was decided and refused (what retention may prune)."""
    return (version.tags.get(STATE_TAG) == DONE
            and version.tags.get(PROMOTION_TAG, "").startswith("not promoted: "))


def _recorded(tags: dict[str, str]) -> Outcome:
    """The outcome recorded in a version's tags by `_decide_and_move`."""
    promoted = tags[PROMOTION_TAG].startswith("promoted: ")
    reason = tags[PROMOTION_TAG].split(": ", 1)[1]
    compared = tags.get(COMPARED_TAG, "none")
    return Outcome(Decision(promoted, reason), tracking.CHAMPION if promoted else CHALLENGER,
                   None if compared == "none" else float(compared), tags.get(SOURCE_TAG, "none"))


def _champion_gate_value(champion: ModelVersion | None, model_name: str, gate_metric: str) -> float | None:
    """The champion's recorded gate value; a champion measured otherwise cannot be compared, so that is an error."""
    if champion is None:
        return None
    if champion.tags.get("gate_metric") != gate_metric or "gate_value" not in champion.tags:
        raise DataError(f"registry {model_name} v{champion.version} (alias champion) has no `gate_value` for gate "
                        f"metric {gate_metric!r} (tags: gate_metric={champion.tags.get('gate_metric')!r}); move or "
                        f"remove the champion alias to compare against another version")
    return float(champion.tags["gate_value"])


def _log_model(params: Params, folder: Path, metrics: dict[str, float], key: str) -> str:
    """Log the folder as a `ToolAgent` pyfunc in the active run, attach its metrics, register it; return the version.

    The version is created with its `key` tag in the same call, so no version exists without it.
    """
    with warnings.catch_warnings():  # no input example or signature on purpose: see components/serving/pyfunc.py
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT, python_model=ToolAgent(), artifacts={"model": str(folder)}, code_paths=code_paths(),
            model_config={"system_prompt": params.base.system_prompt,
                          "max_new_tokens": params.evaluate.max_new_tokens,
                          "constrained": params.decoding.constrained},
            pip_requirements=[f"{p}=={installed(p).split('+')[0]}" for p in SERVING_PACKAGES])  # drop +cpu
    mlflow.log_metrics(metrics, model_id=info.model_id)  # shown on the LoggedModel in the MLflow 3 UI
    version = mlflow.register_model(info.model_uri, params.register_.model_name, tags={KEY_TAG: key})
    return str(version.version)


def main() -> None:
    from components.tracking import stage_main

    result = stage_main("register")
    print(f"[register] v{result.details['version']} -> {result.details['alias']}: {result.details['reason']}")


if __name__ == "__main__":
    main()
