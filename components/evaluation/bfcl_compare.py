"""`tooltune bfcl --model A --model B [...]`: models on the same BFCL questions, compared per category.

Reads: what `tooltune bfcl` reads (components/evaluation/bfcl.py), params `evaluate.alpha`.
Writes, under the output folder (default `paths.reports/bfcl/<A>_vs_<B>`): each model's own `tooltune bfcl` output
in `<label>/` (result files, scores, table), then `compare.md`, `compare.csv`, `compare.json` and `compare.png`.
Run: `tooltune bfcl --model base --model PATH --data DIR [--categories ...] [--limit N] [--out DIR]`.

Per category: each model's accuracy with its 95 % Wilson interval, and every later model against the first (the
baseline, e.g. `base`) by the exact McNemar test on the same questions (`stats.paired`: only the questions one model
gets right and the other wrong count), with a verdict at `evaluate.alpha`. Then the same over all questions of the
categories run, pooled, and each model's leaderboard aggregates (non-live AST = the mean of four category accuracies:
shown, not tested, since a mean of categories has no one question to pair). A model whose category holds other
questions than the first's (another `--limit`, another data folder) cannot be paired: `ValueError`.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components.config import ConfigError, Params
from components.data.fileio import atomic_file, write_json
from components.evaluation import bfcl, stats

ALL = "all questions (pooled)"


@dataclass(frozen=True)
class Row:
    """One category (or the pooled questions): per model n right, and each later model against the first."""

    category: str
    n: int
    correct: dict[str, int]  # label -> questions right
    paired: dict[str, stats.Paired]  # later model's label -> McNemar of it against the first (delta = later - first)
    verdicts: dict[str, str]  # later model's label -> "better" / "worse" / "no significant difference"

    def accuracy(self, model: str) -> float:
        return self.correct[model] / self.n if self.n else 0.0

    def interval(self, model: str) -> tuple[float, float]:
        return stats.wilson(self.correct[model], self.n)


def labels(models: list[str]) -> list[str]:
    """Each model's name (`bfcl.label`), made unique by its place when two share one (`sft`, `sft-2`)."""
    names = [bfcl.label(m) for m in models]
    return [n if names.count(n) == 1 else f"{n}-{k + 1}" for k, n in enumerate(names)]


def compare(scores: dict[str, dict[str, bfcl.CategoryScore]], alpha: float) -> list[Row]:
    """The rows of the comparison: one per category of the first model, then the pooled questions.

    Args:
        scores: label -> category -> its `CategoryScore` (per-question verdicts), the first label the baseline.
        alpha: The level of the McNemar verdicts.

    Raises:
        ValueError: A model's category holds other questions than the first model's.
    """
    first, *later = scores
    rows, pooled = [], {m: {} for m in scores}
    for category in scores[first]:
        right = {m: {qid: bool(r["valid"]) for qid, r in scores[m][category].results.items()} for m in scores}
        for m in later:
            if right[m].keys() != right[first].keys():
                raise ValueError(f"bfcl compare: {m} and {first} ran different {category} questions "
                                 f"({len(right[m])} and {len(right[first])}); run them on the same data and limit")
        rows.append(_row(category, right, alpha))
        for m in scores:
            pooled[m] |= {(category, qid): ok for qid, ok in right[m].items()}
    return rows + [_row(ALL, pooled, alpha)]


def _row(category: str, right: dict[str, dict], alpha: float) -> Row:
    first, *later = right
    paired = {m: stats.paired(right[m], right[first]) for m in later}
    return Row(category, len(right[first]), {m: sum(r.values()) for m, r in right.items()}, paired,
               {m: stats.verdict(p, alpha) for m, p in paired.items()})


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def markdown(rows: list[Row], summaries: dict[str, dict[str, float | None]], alpha: float) -> str:
    """The comparison as markdown: accuracy [95 % Wilson] per model, then per later model the change, the
    discordant questions (later right only / first right only), the McNemar p and the verdict; the aggregates."""
    first, *later = summaries
    head = ["category", "n", *summaries]
    for m in later:
        head += [f"{m} - {first}", f"discordant ({m} / {first})", "McNemar p", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"**{r.category}**" if r.category == ALL else r.category, str(r.n)]
        cells += [f"{r.accuracy(m):.1%} [{r.interval(m)[0]:.1%}, {r.interval(m)[1]:.1%}]" for m in summaries]
        for m in later:
            p = r.paired[m]
            cells += [f"{p.delta * 100:+.1f} pts", f"{p.a_only} / {p.b_only}", f"{p.p_value:.3g}", r.verdicts[m]]
        lines.append("| " + " | ".join(cells) + " |")
    for key in summaries[first]:
        cells = [f"overall {key}", "", *(_pct(summaries[m][key]) for m in summaries)]
        for m in later:
            a, b = summaries[m][key], summaries[first][key]
            cells += ["n/a" if a is None or b is None else f"{(a - b) * 100:+.1f} pts", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + (f"\n\nMcNemar: exact two-sided test on the same questions; verdict at alpha = {alpha}. "
                               f"Intervals: 95 % Wilson. Overall aggregates as the leaderboard computes them (not "
                               f"tested).")


def write(rows: list[Row], summaries: dict[str, dict[str, float | None]], paths: dict[str, str], alpha: float,
          out: Path) -> list[Path]:
    """compare.md, compare.csv, compare.json and compare.png in `out` (each written atomically)."""
    first, *later = summaries
    with atomic_file(out / "compare.md") as handle:
        handle.write(markdown(rows, summaries, alpha) + "\n")
    with atomic_file(out / "compare.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "n", *(f"{m}_{k}" for m in summaries for k in ("correct", "accuracy", "low",
                                                                                      "high")),
                         *(f"{m}_vs_{first}_{k}" for m in later for k in ("delta", "only_" + m, "only_" + first, "p",
                                                                            "verdict"))])
        for r in rows:
            writer.writerow([r.category, r.n, *(x for m in summaries for x in (
                r.correct[m], f"{r.accuracy(m):.4f}", *(f"{v:.4f}" for v in r.interval(m)))),
                *(x for m in later for x in (f"{r.paired[m].delta:.4f}", r.paired[m].a_only, r.paired[m].b_only,
                                             f"{r.paired[m].p_value:.4g}", r.verdicts[m]))])
    write_json(out / "compare.json", {
        "models": paths, "baseline": first, "alpha": alpha, "overall": summaries,
        "categories": {r.category: {"n": r.n, "models": {m: {"correct": r.correct[m], "accuracy": r.accuracy(m),
                                                              "low": r.interval(m)[0], "high": r.interval(m)[1]}
                                                          for m in summaries},
                                    "paired": {f"{m}_vs_{first}": {"delta": r.paired[m].delta,
                                                                   f"only_{m}": r.paired[m].a_only,
                                                                   f"only_{first}": r.paired[m].b_only,
                                                                   "p": r.paired[m].p_value, "verdict": r.verdicts[m]}
                                               for m in later}} for r in rows}})
    return [out / f"compare.{ext}" for ext in ("md", "csv", "json")] + [_plot(rows, list(summaries), out)]


def _plot(rows: list[Row], models: list[str], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows)), 4.2))
    for k, m in enumerate(models):
        xs = [j + (k - (len(models) - 1) / 2) * width for j in range(len(rows))]
        values = [r.accuracy(m) for r in rows]
        errors = [[max(0.0, v - r.interval(m)[0]) for v, r in zip(values, rows)],  # 0 at n/n: float noise
                  [max(0.0, r.interval(m)[1] - v) for v, r in zip(values, rows)]]
        ax.bar(xs, values, width, yerr=errors, capsize=3, label=m)
        if k:
            for x, r in zip(xs, rows):
                ax.text(x, min(1.02, r.interval(m)[1] + 0.02), f"p={r.paired[m].p_value:.2g}", ha="center",
                        fontsize=6)
    ax.set_xticks(range(len(rows)), [f"{r.category.replace(' (pooled)', '')}\nn={r.n}" for r in rows], fontsize=7)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    ax.set_title(f"BFCL per category: {' vs '.join(models)} (95 % Wilson intervals; McNemar p against {models[0]})",
                 fontsize=9)
    fig.tight_layout()
    path = out / "compare.png"
    with tempfile.NamedTemporaryFile(dir=out, suffix=".png", delete=False) as tmp:
        fig.savefig(tmp.name, dpi=100)
    plt.close(fig)
    Path(tmp.name).replace(path)  # atomic: an old chart stays whole until the new one is complete
    return path


def run(params: Params, models: list[str], data: str | Path | None = None, categories: list[str] | None = None,
        out: str | Path | None = None, limit: int | None = None) -> tuple[list[Row], dict, Path]:
    """`tooltune bfcl` with several `--model`s: each runs into `<out>/<label>/`, then the comparison goes to `out`
    (default `paths.reports/bfcl/<first>_vs_<second>...`). Returns the rows, each model's aggregates and `out`.

    Raises:
        ConfigError: Fewer than two models.
    """
    if len(models) < 2:
        raise ConfigError("tooltune bfcl: a comparison needs two or more --model")
    found = bfcl.discover(bfcl.data_folder(params, data), categories)  # bad data fails before a model is loaded
    for model in models:  # a mistyped folder fails before the first model spends minutes on the questions
        if model != "champion":
            bfcl.model_folder(model, params, Path("."))
    names = labels(models)
    out = Path(out) if out is not None else params.path("reports") / "bfcl" / "_vs_".join(names)
    scores, summaries = {}, {}
    for name, model in zip(names, models):
        scores[name], summaries[name] = bfcl.run_model(params, model, found, out / name, limit)
    rows = compare(scores, params.evaluate.alpha)
    write(rows, summaries, dict(zip(names, models)), params.evaluate.alpha, out)
    return rows, summaries, out
