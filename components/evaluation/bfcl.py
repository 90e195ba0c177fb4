"""`tooltune bfcl`: a model on BFCL's single-turn categories, end to end (render, generate, parse, score, tabulate).

Reads: a BFCL data folder (`BFCL_v<k>_<category>.json` question files, `possible_answer/` beside them; e.g.
`shared/data/bfcl`), a model folder (`--model PATH`, `base` = `paths.base`, `champion` = the registry's champion,
as `tooltune serve` resolves it), params `bfcl` (system prompt, batch size, token budget, data, limit).
Writes, under the output folder: one BFCL FC-mode result file per category, `<question file stem>_result.json`
(`{"id", "result"}` lines: `[{"<function>": "<arguments as a JSON string>"}]` when the turn makes calls, else the
model's text), `<category>_score.json` (what `tooltune score` writes for that file), `bfcl.md`, `bfcl.csv`,
`bfcl.json` (the table and the aggregates) and `bfcl.png` (a bar per category with its 95 % Wilson interval).
Run: `tooltune bfcl --model PATH|base|champion --data DIR [--categories simple,multiple] [--out DIR] [--limit N]`.

Each question is rendered with its own functions as the model's tools, converted as the BFCL importer converts them
(`components.data.importers.bfcl`), through the tokenizer's chat template after the `bfcl.system_prompt` system turn
(a question that brings its own system turn keeps it); one greedy assistant turn per question comes from the
evaluation's generation path (`rollout.one_turn`), parsed by `toolcalls.parse_output`. The verdicts are those of
`tooltune score` on the written result file (`components.toolcalls.score`: BFCL's AST rules; irrelevance correct
iff no call), so rescoring a result file gives the same table. A text answer is read as `tooltune score` reads any
text (a call list written as text counts as calls).

Aggregates, as BFCL's leaderboard computes them (`bfcl_eval/eval_checker/eval_runner_helper.py`,
`generate_leaderboard_csv`):
    simple          = unweighted mean of the simple_python / simple_java / simple_javascript accuracies
    non_live_ast    = (simple + multiple + parallel + parallel_multiple) / 4        ("Non-Live AST Acc")
    non_live        = (simple + multiple + parallel + parallel_multiple + irrelevance) / 5   ("Non-Live Overall")
    live_ast        = sum(correct) / sum(n) over live_simple, live_multiple, live_parallel, live_parallel_multiple
The leaderboard counts a category it did not evaluate as 0 and shows the aggregate as N/A; here an aggregate whose
categories are not all present is None, except `simple`, which averages the simple languages present (a Python-only
folder: simple = simple_python; the board would show N/A). Categories not read: multi-turn, agentic,
format-sensitivity (not single-turn) and live_relevance (its rule, "some call, arguments unchecked", is not in the
project's checker); their files are skipped. Java/JavaScript entries go through the same importer and checker, so
a schema type the importer does not know is a `DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import toolcalls
from components.config import ConfigError, Params
from components.data.episode import DataError, Episode
from components.data.fileio import atomic_file, write_json, write_jsonl
from components.data.importers import bfcl as importer
from components.data.inputs import workdir_path
from components.evaluation import rollout, stats
from components.toolcalls import score as scorer

SIMPLE = ("simple_python", "simple_java", "simple_javascript")
NON_LIVE = (*SIMPLE, "multiple", "parallel", "parallel_multiple", "irrelevance")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
CATEGORIES = (*NON_LIVE, *LIVE_AST, "live_irrelevance")
GROUPS = {"simple": SIMPLE, "non_live": NON_LIVE, "live": (*LIVE_AST, "live_irrelevance")}
_FILE = re.compile(r"BFCL_v\d+_(\w+)\.json")


@dataclass(frozen=True)
class Category:
    """One category's question file and its possible-answer file (None: irrelevance, no answers)."""

    name: str
    questions: Path
    answers: Path | None


@dataclass(frozen=True)
class CategoryScore:
    """How one category went: n entries, how many right, and the per-id verdicts of `tooltune score`."""

    name: str
    n: int
    correct: int
    results: dict[str, dict[str, Any]]

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return stats.wilson(self.correct, self.n)


def discover(data: str | Path, wanted: list[str] | None = None) -> list[Category]:
    """The categories to run, in `CATEGORIES` order: `wanted` (names or groups `simple`, `non_live`, `live`),
    default every known category with a question file in `data`.

    Raises:
        DataError: `data` is no folder, a wanted name is unknown or has no file there, or nothing is left to run.
    """
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: rule 'bfcl_data': not a folder of BFCL question files")
    files = {m.group(1): p for p in sorted(data.glob("BFCL_v*_*.json")) if (m := _FILE.fullmatch(p.name))}
    if wanted is None:
        names = [c for c in CATEGORIES if c in files]
    else:
        asked: set[str] = set()
        for name in wanted:
            if name not in CATEGORIES and name not in GROUPS:
                raise DataError(f"--categories: unknown {name!r}; known: {list(CATEGORIES)} or groups {sorted(GROUPS)}")
            present = [c for c in GROUPS.get(name, (name,)) if c in files]
            if not present:
                raise DataError(f"{data}: rule 'bfcl_category': no question file for {name!r}")
            asked.update(present)
        names = [c for c in CATEGORIES if c in asked]
    if not names:
        raise DataError(f"{data}: rule 'bfcl_category': no question file of a single-turn category "
                        f"(BFCL_v<k>_<category>.json, category one of {list(CATEGORIES)})")
    return [Category(c, files[c], _answers(data, files[c], c)) for c in names]


def _answers(data: Path, questions: Path, name: str) -> Path | None:
    if "irrelevance" in name:
        return None
    path = data / "possible_answer" / questions.name
    if not path.is_file():
        raise DataError(f"{path}: rule 'possible_answer': the {name} questions need their possible-answer file")
    return path


def conversation(episode: Episode, system_prompt: str) -> list[dict[str, Any]]:
    """The prompt of one question: the system prompt (unless the question brings a system turn), then its turn."""
    messages = episode.prompt_messages()
    return messages if messages[0]["role"] == "system" else [{"role": "system", "content": system_prompt}, *messages]


def to_result(text: str, tok: Any = None, tools: list[dict[str, Any]] | None = None) -> Any:
    """One generated turn as a BFCL FC-mode result: the parsed calls, arguments as JSON strings; else its text
    (`tok`, `tools`: as `toolcalls.parse_output` takes them)."""
    parsed = toolcalls.parse_output(text, tok=tok, tools=tools)
    if parsed.calls:
        return [{c["name"]: json.dumps(c["arguments"], ensure_ascii=False)} for c in parsed.calls]
    end = getattr(tok, "eos_token", None) or toolcalls.END
    return text.split(end, 1)[0].strip()


def score_file(category: Category, episodes: list[Episode], result_path: Path, out: Path) -> CategoryScore:
    """Score a written result file as `tooltune score` does and write its report to `out`."""
    report = scorer.score(episodes, scorer.load_predictions(result_path))
    write_json(out, {"tasks": str(category.questions), "predictions": str(result_path)} | report)
    results = report["results"]
    return CategoryScore(category.name, len(results), sum(r["valid"] for r in results.values()), results)


def gated(results: dict[str, dict[str, bool]], passes: dict[str, bool]) -> dict[str, CategoryScore]:
    """Each category's score (`results`: category -> question id -> right) had a call gate refused every question
    whose `passes` is False: a refused turn is text (the gate bans `<` for the whole turn), so it is right on an
    irrelevance category and wrong on any other; a passed one keeps its own verdict."""
    scores = {}
    for name, verdicts in results.items():
        refuse_is_right = "irrelevance" in name
        right = [ok or not passes[i] if refuse_is_right else ok and passes[i] for i, ok in verdicts.items()]
        scores[name] = CategoryScore(name, len(right), sum(right), {})
    return scores


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def aggregate(scores: dict[str, CategoryScore]) -> dict[str, float | None]:
    """The leaderboard's aggregates of the categories present (see the module docstring; None: a part is absent)."""
    acc = {name: s.accuracy for name, s in scores.items()}
    simple = [acc[c] for c in SIMPLE if c in acc]
    out: dict[str, float | None] = {"simple": _mean(simple) if simple else None}
    parts = [out["simple"], *(acc.get(c) for c in ("multiple", "parallel", "parallel_multiple"))]
    out["non_live_ast"] = _mean(parts) if None not in parts else None
    parts.append(acc.get("irrelevance"))
    out["non_live"] = _mean(parts) if None not in parts else None
    live = [scores[c] for c in LIVE_AST if c in scores]
    out["live_ast"] = (sum(s.correct for s in live) / sum(s.n for s in live)
                       if len(live) == len(LIVE_AST) and sum(s.n for s in live) else None)
    return out


def evaluate(model: Any, tok: Any, params: Params, categories: list[Category], out: Path,
             limit: int | None = None) -> tuple[dict[str, CategoryScore], dict[str, float | None]]:
    """Generate one turn per question (first `limit` of each category), then write and score (`write_and_score`)."""
    cfg = params.bfcl
    questions = {c.name: importer.import_episodes(c.questions, c.answers)[:limit] for c in categories}
    every = [e for eps in questions.values() for e in eps]
    texts = rollout.one_turn(model, tok, {e.id: conversation(e, cfg.system_prompt) for e in every},
                             {e.id: e.tool_dicts() for e in every}, cfg.batch_size, cfg.max_new_tokens, "bfcl",
                             params.decoding.constrained)
    return write_and_score(categories, questions, texts, out, tok)


def write_and_score(categories: list[Category], questions: dict[str, list[Episode]], texts: dict[str, str],
                    out: Path, tok: Any = None) -> tuple[dict[str, CategoryScore], dict[str, float | None]]:
    """Each category's result file (with the raw `output` beside each `result`), its score report and the tables;
    returns the scores and the aggregates. `tok`: the model's tokenizer (its own response template, if any, reads
    the outputs)."""
    out.mkdir(parents=True, exist_ok=True)
    scores = {}
    for c in categories:
        path = out / f"{c.questions.stem}_result.json"
        write_jsonl(path, ({"id": e.id, "result": to_result(texts[e.id], tok, e.tool_dicts()), "output": texts[e.id]}
                           for e in questions[c.name]))
        scores[c.name] = score_file(c, questions[c.name], path, out / f"{c.name}_score.json")
    summary = aggregate(scores)
    write_tables(scores, summary, out)
    return scores, summary


def table_rows(scores: dict[str, CategoryScore], summary: dict[str, float | None]) -> list[list[str]]:
    """Rows (category, n, correct, accuracy, 95 % low, 95 % high), then the aggregates (accuracy only)."""
    rows = [[s.name, str(s.n), str(s.correct), f"{s.accuracy:.4f}", *(f"{x:.4f}" for x in s.interval)]
            for s in scores.values()]
    return rows + [[f"overall {k}", "", "", "n/a" if v is None else f"{v:.4f}", "", ""] for k, v in summary.items()]


def markdown(scores: dict[str, CategoryScore], summary: dict[str, float | None]) -> str:
    """The table as markdown: accuracy with its 95 % Wilson interval per category, then the aggregates."""
    lines = ["| category | n | correct | accuracy | 95 % interval |", "|---|---:|---:|---:|---|"]
    lines += [f"| {s.name} | {s.n} | {s.correct} | {s.accuracy:.1%} | [{s.interval[0]:.1%}, {s.interval[1]:.1%}] |"
              for s in scores.values()]
    lines += [f"| **overall {k}** | | | {'n/a' if v is None else f'{v:.1%}'} | |" for k, v in summary.items()]
    return "\n".join(lines)


def write_tables(scores: dict[str, CategoryScore], summary: dict[str, float | None], out: Path) -> list[Path]:
    """bfcl.md, bfcl.csv, bfcl.json and bfcl.png in `out` (each written atomically)."""
    with atomic_file(out / "bfcl.md") as handle:
        handle.write(markdown(scores, summary) + "\n")
    with atomic_file(out / "bfcl.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "n", "correct", "accuracy", "low", "high"])
        writer.writerows(table_rows(scores, summary))
    write_json(out / "bfcl.json", {"categories": {s.name: {"n": s.n, "correct": s.correct, "accuracy": s.accuracy,
                                                           "low": s.interval[0], "high": s.interval[1]}
                                                  for s in scores.values()}, "overall": summary})
    return [out / f"bfcl.{ext}" for ext in ("md", "csv", "json")] + [_plot(scores, summary, out / "bfcl.png")]


def _plot(scores: dict[str, CategoryScore], summary: dict[str, float | None], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(scores.values())
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(items)), 3.8))
    values = [s.accuracy for s in items]
    errors = [[max(0.0, v - s.interval[0]) for v, s in zip(values, items)],  # 0 at n/n and 0/n: float noise
              [max(0.0, s.interval[1] - v) for v, s in zip(values, items)]]
    ax.bar(range(len(items)), values, yerr=errors, capsize=3)
    ax.set_xticks(range(len(items)), [f"{s.name}\nn={s.n}" for s in items], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    headline = summary.get("non_live_ast")
    ax.set_title("BFCL accuracy per category (bars: 95 % Wilson intervals)"
                 + ("" if headline is None else f"; non-live AST {headline:.1%}"), fontsize=9)
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as tmp:
        fig.savefig(tmp.name, dpi=100)
    plt.close(fig)
    Path(tmp.name).replace(path)  # atomic: an old chart stays whole until the new one is complete
    return path


def metrics(scores: dict[str, CategoryScore], summary: dict[str, float | None]) -> dict[str, float]:
    """Flat metrics `bfcl.<category>` (+ `_low`, `_high`, `_n`) and `bfcl.<aggregate>` (the evaluate stage's)."""
    out = {}
    for s in scores.values():
        out |= {f"bfcl.{s.name}": round(s.accuracy, 4), f"bfcl.{s.name}_n": float(s.n),
                f"bfcl.{s.name}_low": round(s.interval[0], 4), f"bfcl.{s.name}_high": round(s.interval[1], 4)}
    return out | {f"bfcl.{k}": round(v, 4) for k, v in summary.items() if v is not None}


def model_folder(spec: str, params: Params, scratch: Path) -> Path:
    """`base` = `paths.base`; `champion` = the registry's champion (downloaded into `scratch`); else a folder."""
    from components.serving import chat  # the same resolution as `tooltune serve --model`

    return chat.resolve_model(str(params.path("base")) if spec == "base" else spec, params, scratch)


def data_folder(params: Params, given: str | Path | None = None) -> Path:
    """The BFCL data folder: `given` (a CLI path), else `bfcl.data` under the workdir.

    Raises:
        ConfigError: Neither is set.
    """
    if given is not None:
        return Path(given)
    if params.bfcl.data is None:
        raise ConfigError("tooltune bfcl: give --data DIR (or set bfcl.data in the params file)")
    return workdir_path(params.project.workdir, params.bfcl.data, "bfcl.data")


def label(model: str) -> str:
    """A model's name in tables and output folders: `base`, `champion`, else its folder's name."""
    return model if model in ("base", "champion") else Path(model).name


def run_model(params: Params, model: str, found: list[Category], out: Path,
              limit: int | None = None) -> tuple[dict[str, CategoryScore], dict[str, float | None]]:
    """Resolve and load one model (`model_folder`), evaluate it on `found` (first `limit` of each, default
    `bfcl.limit`), write everything to `out`; returns the scores and the aggregates."""
    from components.training import models

    with tempfile.TemporaryDirectory(prefix="tooltune-bfcl-") as scratch:
        model_obj, tok = models.load_for_inference(model_folder(model, params, Path(scratch)), params.base.dtype)
    return evaluate(model_obj, tok, params, found, out, limit or params.bfcl.limit)


def run(params: Params, model: str, data: str | Path | None = None, categories: list[str] | None = None,
        out: str | Path | None = None, limit: int | None = None) -> tuple[dict[str, CategoryScore], dict, Path]:
    """`tooltune bfcl`: resolve and load the model, evaluate it, write everything to `out` (default
    `paths.reports/bfcl/<model>`); `data` and `limit` default to `bfcl.data` and `bfcl.limit`. Returns the scores,
    the aggregates and the output folder. Several models: `bfcl_compare.run`."""
    found = discover(data_folder(params, data), categories)  # bad data fails before a model is loaded
    out = Path(out) if out is not None else params.path("reports") / "bfcl" / label(model)
    scores, summary = run_model(params, model, found, out, limit)
    return scores, summary, out
