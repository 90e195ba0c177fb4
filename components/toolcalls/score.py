"""`tooltune score`: score saved model predictions against tasks with the shared scorer (`components.toolcalls`).

Reads: tasks, either canonical episodes (JSON lines) or a BFCL question file plus its possible-answer file
(`components.data.importers.bfcl`); predictions, JSON lines `{"id": ..., "result": ...}` where `result` is raw model output
(any syntax `toolcalls.parse_any` reads, BFCL's prompt-mode Python calls too), a decoded list of
`{"<function>": {<arguments>}}`, BFCL's FC-mode list of `{"<function>": "<arguments as a JSON string>"}` (decoded by
the strict reader `components.data.inputs.loads`: a string it refuses makes that prediction `unparsable`, its rule in
the verdict's `detail`), or, for multi-step episodes, the whole trajectory as a list of OpenAI messages.
Writes: the report JSON (`--out`): accuracy overall, per category (the episode's `source`, e.g.
`bfcl:simple_python`) and per pattern, error-class counts, and per id `{"valid", "errors"}`; prints a markdown table.
Run: `tooltune score --tasks Q --predictions P [--answers A] --out report.json`

Every task needs exactly one prediction and every prediction a task, and every task's tool schemas must pass
`toolcalls.parameters_problem`; anything else is a `DataError` naming the file, line and rule. As in BFCL,
output that does not parse counts as "no call" on a task that needs no call.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import toolcalls
from components.data.importers import bfcl
from components.data.episode import DataError, Episode, episode_of
from components.data.fileio import write_json
from components.data.inputs import JsonError, loads


@dataclass(frozen=True)
class Prediction:
    """One prediction line: the task id, the model's result, and where it came from."""

    id: str
    result: Any
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def load_tasks(tasks_path: str | Path, answers_path: str | Path | None = None) -> list[Episode]:
    """Episodes from a canonical episodes file, or from a BFCL question file (told apart by its `question` field)."""
    rows = bfcl.records(tasks_path)
    if "question" in rows[0][1] and "function" in rows[0][1]:
        return bfcl.import_episodes(tasks_path, answers_path)
    if answers_path is not None:
        raise DataError(f"{tasks_path}: rule 'answers_for_bfcl': --answers goes with a BFCL question file only")
    return [_task(obj, f"{tasks_path}:{line}") for line, obj in rows]


def _task(obj: dict[str, Any], where: str) -> Episode:
    """The episode of one task line, its tools' schemas checked (`toolcalls.parameters_problem`)."""
    episode = episode_of(obj, where)
    for tool in episode.tools:
        problem = toolcalls.parameters_problem(tool.function.parameters)
        if problem:
            raise DataError(f"{where} (id {episode.id}): rule '{problem[0]}': tool {tool.function.name!r}: "
                            f"{problem[1]}")
    return episode


def load_predictions(path: str | Path) -> list[Prediction]:
    """Prediction lines; errors name the file, line and rule (JSON, fields, unique ids)."""
    out, seen = [], {}
    for lineno, record in bfcl.records(path):
        where = f"{path}:{lineno}"
        rid = record.get("id")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool) or "result" not in record:
            raise DataError(f"{where}: rule 'prediction_schema': a prediction is {{\"id\": ..., \"result\": ...}}")
        if str(rid) in seen:
            raise DataError(f"{where}: rule 'unique_id': id {rid} already predicted at line {seen[str(rid)]}")
        seen[str(rid)] = lineno
        out.append(Prediction(str(rid), record["result"], str(path), lineno))
    return out


def verdict(episode: Episode, result: Any) -> dict[str, Any]:
    """One prediction's verdict: `{"valid": bool, "errors": [class, ...]}`, plus `"detail"` (the rule broken) when
    FC-mode arguments do not decode."""
    tools = toolcalls.tool_index(episode.tool_dicts())
    gold = [[c.model_dump() for c in step] for step in episode.expected.steps]
    if _is_trajectory(result):
        score = toolcalls.score_episode(toolcalls.steps_of_messages(result), gold, tools)
        return {"valid": score.exact, "errors": score.errors}
    result, fc_error = fc_decoded(result)
    parsed = toolcalls.Parsed("", [], fc_error) if fc_error else toolcalls.parse_any(result)
    unparsable = parsed.unparsable and bool(gold)  # BFCL: on an irrelevance task, unparsable = no call
    steps = [parsed.calls] if parsed.calls else []
    score = toolcalls.score_episode(steps, gold, tools, unparsable)
    return {"valid": score.exact, "errors": score.errors} | ({"detail": fc_error} if fc_error else {})


def fc_decoded(result: Any) -> tuple[Any, str | None]:
    """A BFCL FC-mode result with its arguments decoded: `[{"f": "{\"a\": 1}"}]` -> `([{"f": {"a": 1}}], None)`.

    FC form is a non-empty list of single-key dicts whose values are JSON strings or already objects, at least one
    a string; anything else comes back as it is. Strings are read by the strict `inputs.loads` (depth, number size,
    duplicate keys, ...), never `json.loads`, as they are untrusted model output.

    Returns:
        The decoded result and None, or None and why a string is refused (`arguments of 'f': rule '...': ...`).
    """
    if not (isinstance(result, list) and result
            and all(isinstance(c, dict) and len(c) == 1 and isinstance(next(iter(c.values())), (str, dict))
                    for c in result)
            and any(isinstance(next(iter(c.values())), str) for c in result)):
        return result, None
    decoded = []
    for call in result:
        (name, args), = call.items()
        if isinstance(args, str):
            try:
                args = loads(args)
            except JsonError as err:
                return None, f"arguments of {name!r}: rule '{err.rule}': {err.detail}"
            if not isinstance(args, dict):
                return None, f"arguments of {name!r}: rule 'fc_arguments': a JSON object, not {type(args).__name__}"
        decoded.append({name: args})
    return decoded, None


def _is_trajectory(result: Any) -> bool:
    return isinstance(result, list) and bool(result) and all(isinstance(m, dict) and "role" in m for m in result)


def score(episodes: list[Episode], predictions: list[Prediction]) -> dict[str, Any]:
    """Verdicts for all predictions and the accuracy summary.

    Raises:
        DataError: a prediction for an unknown id, or tasks without a prediction.
    """
    tasks = {e.id: e for e in episodes}
    unknown = next((p for p in predictions if p.id not in tasks), None)
    if unknown is not None:
        raise DataError(f"{unknown.where}: rule 'known_id': no task has id {unknown.id}")
    predicted = {p.id for p in predictions}
    missing = [i for i in tasks if i not in predicted]
    if missing:
        where = predictions[0].path if predictions else "predictions"
        raise DataError(f"{where}: rule 'all_predicted': {len(missing)} task(s) have no prediction, e.g. {missing[:3]}")
    results = {p.id: verdict(tasks[p.id], p.result) for p in predictions}
    return summarize(results, tasks)


def summarize(results: dict[str, dict[str, Any]], tasks: dict[str, Episode]) -> dict[str, Any]:
    """Accuracy overall, per category and per pattern, error counts, and the per-id verdicts."""
    groups: dict[str, dict[str, list[bool]]] = {"by_category": defaultdict(list), "by_pattern": defaultdict(list)}
    for rid, res in results.items():
        groups["by_category"][tasks[rid].source].append(res["valid"])
        groups["by_pattern"][tasks[rid].pattern].append(res["valid"])
    valid = [r["valid"] for r in results.values()]
    return {"n": len(valid), "accuracy": _accuracy(valid),
            **{name: {key: {"n": len(v), "accuracy": _accuracy(v)} for key, v in sorted(group.items())}
               for name, group in groups.items()},
            "errors": dict(Counter(e for r in results.values() for e in r["errors"]).most_common()),
            "results": results}


def _accuracy(valid: list[bool]) -> float:
    return round(sum(valid) / len(valid), 4) if valid else 0.0


def markdown(report: dict[str, Any]) -> str:
    """The report's accuracy table (overall, categories, patterns) and error counts, as markdown."""
    rows = [("all", report["n"], report["accuracy"])]
    rows += [(f"{kind.removeprefix('by_')} {key}", g["n"], g["accuracy"])
             for kind in ("by_category", "by_pattern") for key, g in report[kind].items()]
    lines = ["| group | n | accuracy |", "|---|---:|---:|"]
    lines += [f"| {name} | {n} | {acc:.2%} |" for name, n, acc in rows]
    if report["errors"]:
        lines += ["", "| error | count |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in report["errors"].items()]
    return "\n".join(lines)


def run(tasks_path: str | Path, predictions_path: str | Path, out_path: str | Path,
        answers_path: str | Path | None = None) -> dict[str, Any]:
    """Load, score, write the report JSON; returns the report."""
    report = score(load_tasks(tasks_path, answers_path), load_predictions(predictions_path))
    write_json(out_path, {"tasks": str(tasks_path), "predictions": str(predictions_path)} | report)
    return report
