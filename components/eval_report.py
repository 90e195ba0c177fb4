"""Evaluation report: markdown tables (models side by side per pattern), a CSV for `dvc plots`, PNG plots."""

from __future__ import annotations

import csv
from pathlib import Path

HEADLINE = [("single_exact", "single: exact call"), ("single_tool", "single: right tool"),
            ("parallel_exact", "parallel: exact"), ("chain_exact", "chain: exact"),
            ("chain_completion", "chain: task completed"), ("irrelevance_no_call", "irrelevance: no call"),
            ("unparsable", "unparsable output"), ("exact", "all: exact")]
PATTERNS = ("single", "parallel", "chain", "irrelevance")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def markdown(results: dict[str, dict[str, float]]) -> str:
    """Headline table and error-class table, one column per model."""
    names = list(results)
    lines = ["# Evaluation on the held-out test split", "",
             "Held-out phrasing templates and argument values; greedy decoding in the simulator.", "",
             "| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in HEADLINE:
        lines.append(f"| {label} | " + " | ".join(_pct(results[m].get(key)) for m in names) + " |")
    counts = [f"{p} (n)" for p in PATTERNS if f"{p}_n" in results[names[0]]]
    if counts:
        lines.append("| episodes | " + " | ".join(
            ", ".join(f"{p} {int(results[m][f'{p}_n'])}" for p in PATTERNS if f"{p}_n" in results[m])
            for m in names) + " |")
    classes = sorted({k.split(".", 1)[1] for m in names for k in results[m] if k.startswith("errors.")})
    lines += ["", "## Error classes (episodes)", "", "| error | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    lines += [f"| {c} | " + " | ".join(str(int(results[m].get(f"errors.{c}", 0))) for m in names) + " |"
              for c in classes] or ["| (none) |" + " |" * len(names)]
    return "\n".join(lines) + "\n"


def write(results: dict[str, dict[str, float]], md_path: Path, out_dir: Path) -> list[str]:
    """Write evaluate.md, accuracy.csv, accuracy.png and errors.png; returns the extra files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    md_path.write_text(markdown(results), encoding="utf-8")
    names = list(results)
    with (out_dir / "accuracy.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "pattern", "exact"])
        for m in names:
            writer.writerows([m, p, results[m].get(f"{p}_exact", 0.0)] for p in PATTERNS)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(names)
    for i, m in enumerate(names):
        ax.bar([k + i * width for k in range(len(PATTERNS))], [results[m].get(f"{p}_exact", 0.0) for p in PATTERNS],
               width, label=m)
    ax.set_xticks([k + width * (len(names) - 1) / 2 for k in range(len(PATTERNS))], PATTERNS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("exact")
    ax.set_title("Exact accuracy per pattern")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=100)
    plt.close(fig)
    classes = sorted({k.split(".", 1)[1] for m in names for k in results[m] if k.startswith("errors.")})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bottom = [0.0] * len(names)
    for c in classes:
        vals = [results[m].get(f"errors.{c}", 0.0) for m in names]
        ax.bar(names, vals, bottom=bottom, label=c)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("episodes")
    ax.set_title("Error classes per model")
    if classes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "errors.png", dpi=100)
    plt.close(fig)
    return [str(out_dir / "accuracy.csv"), str(out_dir / "accuracy.png"), str(out_dir / "errors.png")]
