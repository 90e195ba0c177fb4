"""Evaluation report: markdown and self-contained HTML tables (models side by side per pattern, each rate with its
95 % Wilson interval and n; paired comparisons with their McNemar p-values), a CSV for `dvc plots`, PNG plots
(accuracy per pattern with its intervals, stacked error classes, training curves from the training stages);
with k-sample metrics (`evaluate.samples` > 1) also a pass@j / pass^j table per model and their plot against j;
with a hand-written set (`handwritten.*` metrics) also its own headline and paired tables (the plots and the CSV
stay on the test split)."""

from __future__ import annotations

import base64
import csv
import html
from pathlib import Path
from typing import Any

from components.config import PATTERNS
from components.evaluation.stats import Comparison

# metric, row label, the metric holding its denominator (the table's n column)
HEADLINE = [("single_exact", "single: exact call", "single_first_n"),
            ("single_tool", "single: right tool", "single_first_n"),
            ("parallel_exact", "parallel: exact", "parallel_n"),
            ("chain_exact", "chain: exact", "chain_n"), ("chain_completion", "chain: task completed", "chain_n"),
            ("recovery_exact", "recovery: exact", "recovery_n"),
            ("recovery_completion", "recovery: task completed", "recovery_n"),
            ("irrelevance_no_call", "irrelevance: no call", "irrelevance_n"),
            ("multi_turn_exact", "multi-turn: exact", "multi_turn_n"),
            ("multi_turn_completion", "multi-turn: task completed", "multi_turn_n"),
            ("unparsable", "unparsable output", "n"),
            ("any_failed_call", "episodes with a failed tool call", "n"), ("exact", "all: exact", "n")]
STATS_NOTE = ("[low–high]: the 95 % Wilson score interval of the rate over its n episodes. Paired comparisons: both "
              "models on the same episodes; only the episodes one gets right and the other wrong count, and the "
              "exact McNemar test says how likely so lopsided a split is if the two were equally good (p). "
              "Verdict \"better\"/\"worse\" (A against B) when p < alpha, else \"no significant difference\".")
HANDWRITTEN = "handwritten."  # key prefix of the hand-written set's metrics and comparisons (components/evaluate.py)
HAND_TITLE = "Hand-written test set (requests written by hand, not by the generators)"
# CSVs the training stages write into `paths.reports` (training.write_curve), with their plot titles.
CURVES = (("sft_loss.csv", "SFT loss"), ("rl_reward.csv", "RL reward per layer"),
          ("reward_model_curve.csv", "Reward model loss and accuracy"))
REFUSALS = (("gate", "no call decided"), ("name", "tool name unsure"), ("value", "value not written, unsure"))
PLOTS = (("accuracy.png", "Exact accuracy per pattern"), ("errors.png", "Error classes per model"),
         ("training_curves.png", "Training curves"), ("pass_k.png", "pass@j and pass^j against j (success = exact)"))
TITLE = "Evaluation on the held-out test split"
INTRO = "Held-out phrasing templates and argument values; greedy decoding in the simulator."
Table = tuple[str, list[str], list[list[str]]]  # title ("" for none), header, rows


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _rate(metrics: dict[str, float], key: str) -> str:
    """A rate with its Wilson interval when the metrics have one: `80.0% [69.2–87.7]`."""
    if f"{key}_low" not in metrics:
        return _pct(metrics.get(key))
    return f"{_pct(metrics[key])} [{100 * metrics[f'{key}_low']:.1f}–{100 * metrics[f'{key}_high']:.1f}]"


def _count(metrics: dict[str, float], key: str) -> str:
    """A count metric as an integer; "–" when the model has none (not measured)."""
    return str(int(metrics[key])) if key in metrics else "–"


def _n(results: dict[str, dict[str, float]], key: str) -> str:
    """The denominator of a row: one number when every model has the same (the same episodes), else each."""
    ns = list(dict.fromkeys(str(int(r[key])) for r in results.values() if key in r))
    return " / ".join(ns) or "–"


def _classes(results: dict[str, dict[str, float]]) -> list[str]:
    return sorted({k.split(".", 1)[1] for m in results for k in results[m] if k.startswith("errors.")})


def tables(results: dict[str, dict[str, float]], comparisons: list[Comparison] = ()) -> list[Table]:
    """The headline table, any paired comparisons, the error-class table (one column per model), any
    pass@j / pass^j tables and, when evaluated, the hand-written set's headline and paired tables: what both report
    formats show. `results` holds the hand-written set's metrics under `HANDWRITTEN` keys, `comparisons` its tests
    under `HANDWRITTEN` metric names."""
    main = {m: {k: v for k, v in r.items() if not k.startswith(HANDWRITTEN)} for m, r in results.items()}
    hand = {m: {k.removeprefix(HANDWRITTEN): v for k, v in r.items() if k.startswith(HANDWRITTEN)}
            for m, r in results.items()}
    hand = {m: r for m, r in hand.items() if r}
    names = list(main)
    errors = [[c, *(str(int(main[m].get(f"errors.{c}", 0))) for m in names)] for c in _classes(main)]
    out = [("", ["metric", *names, "n"], _headline(main)),
           *paired_table([c for c in comparisons if not c.metric.startswith(HANDWRITTEN)]),
           ("Error classes (episodes)", ["error", *names], errors or [["(none)", *[""] * len(names)]]),
           *refusal_table(main), *pass_tables(main)]
    if hand:
        out.append((HAND_TITLE, ["metric", *hand, "n"], _headline(hand)))
        out += paired_table([c for c in comparisons if c.metric.startswith(HANDWRITTEN)], " on the hand-written set")
    return out


def refusal_table(results: dict[str, dict[str, float]]) -> list[Table]:
    """What the call gate's checks did (components/training/gate.py): per check, the first requests whose turn it
    made text, all and of them irrelevance ones (`refused.*`); none when no check refused anything."""
    names = list(results)
    rows = [[f"{check}: {label}", *(f"{int(results[m].get(f'refused.{check}', 0))} "
                                    f"({int(results[m].get(f'refused.{check}.no_call_wanted', 0))})" for m in names)]
            for check, label in REFUSALS if any(f"refused.{check}" in results[m] for m in names)]
    return [("Answered in text by the call gate's checks: first requests (of them irrelevance)",
             ["check", *names], rows)] if rows else []


def _headline(results: dict[str, dict[str, float]]) -> list[list[str]]:
    """The headline rows: each rate of `HEADLINE` the models have, with interval and n; failed calls; episodes."""
    names = list(results)
    rows = [[label, *(_rate(results[m], key) for m in names), _n(results, n_key)] for key, label, n_key in HEADLINE
            if any(key in results[m] for m in names)]  # patterns the test split has, measures that apply
    if any("failed_calls" in results[m] for m in names):  # a count of calls, shown like the error classes' counts
        rows.append(["failed tool calls (calls)", *(_count(results[m], "failed_calls") for m in names), ""])
    if _patterns(results):
        rows.append(["episodes", *(", ".join(f"{p} {int(results[m][f'{p}_n'])}" for p in _patterns(results)
                                             if f"{p}_n" in results[m]) for m in names), ""])
    return rows


def paired_table(comparisons: list[Comparison], where: str = "") -> list[Table]:
    """One row per comparison and metric: pairs, discordant counts, delta, McNemar p, verdict ([] for none).
    `where`: the title's words for the episodes (" on the hand-written set"); the metric names lose that prefix."""
    if not comparisons:
        return []
    rows = []
    for c in comparisons:
        metric = c.metric.removeprefix(HANDWRITTEN)
        rows.append([f"{c.a} vs {c.b}", "all" if metric == "exact" else metric.removesuffix("_exact"),
                     str(c.result.n), str(c.result.a_only), str(c.result.b_only), f"{100 * c.result.delta:+.1f} pts",
                     _p(c.result.p_value), c.verdict])
    return [(f"Paired comparisons{where}: exact, same episodes (exact McNemar test, alpha = {comparisons[0].alpha:g})",
             ["A vs B", "episodes", "pairs", "only A right", "only B right", "A − B", "p", "verdict"], rows)]


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def pass_tables(results: dict[str, dict[str, float]]) -> list[Table]:
    """One pass@j / pass^j table per model with k-sample metrics: all episodes, each pattern, task completion."""
    out = []
    for m, res in results.items():
        js = range(1, _samples(res) + 1)
        if not js:
            continue
        patterns = sorted(key.removesuffix("_pass_at_1") for key in res if key.endswith("_pass_at_1"))
        lines = [("all", ""), *((p, f"{p}_") for p in patterns if p != "completion"),
                 ("all (task completed)", "completion_")]
        rows = [[label, *(_pct(res[f"{pre}pass_at_{j}"]) for j in js), *(_pct(res[f"{pre}pass_hat_{j}"]) for j in js)]
                for label, pre in lines]
        out.append((f"pass@j / pass^j: {m} (k = {len(js)} samples, success = exact)",
                    ["episodes", *(f"pass@{j}" for j in js), *(f"pass^{j}" for j in js)], rows))
    return out


def _samples(metrics: dict[str, float]) -> int:
    """k, the samples per episode behind a model's `pass_at_<j>` metrics (0: not sampled)."""
    return sum(key.startswith("pass_at_") for key in metrics)


def markdown(results: dict[str, dict[str, float]], notes: list[str] = (), comparisons: list[Comparison] = ()) -> str:
    """Headline table, paired comparisons, error-class table and notes (champion, missing curves) as markdown."""
    lines = [f"# {TITLE}", "", INTRO]
    for title, header, rows in tables(results, comparisons):
        lines += [""] + ([f"## {title}", ""] if title else [])
        lines += ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def html_report(results: dict[str, dict[str, float]], out_dir: Path, notes: list[str] = (),
                comparisons: list[Comparison] = ()) -> str:
    """The markdown report's content as one HTML page, with the PNGs of `out_dir` inlined as base64."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(TITLE)}</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child{text-align:left}"
             f"</style></head><body><h1>{esc(TITLE)}</h1><p>{esc(INTRO)}</p>"]
    for title, header, rows in tables(results, comparisons):
        parts.append(f"<h2>{esc(title)}</h2>" if title else "")
        parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
                     + "</table>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    for name, title in PLOTS:
        if (out_dir / name).is_file():
            data = base64.b64encode((out_dir / name).read_bytes()).decode("ascii")
            parts.append(f"<h2>{esc(title)}</h2><img alt='{esc(title)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts) + "\n</body></html>\n"


def read_curves(reports_dir: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The training-curve CSVs found in `reports_dir` (title -> rows), and a note for each one missing or empty."""
    curves, notes = {}, []
    for name, title in CURVES:
        path = reports_dir / name
        rows = list(csv.DictReader(path.open(newline=""))) if path.is_file() else []
        if rows:
            curves[title] = rows
        else:
            notes.append(f"{title}: no curve ({path} {'is empty' if path.is_file() else 'not found'}; "
                         f"the model was not trained in this workdir)")
    return curves, notes


def write(results: dict[str, dict[str, float]], md_path: Path, out_dir: Path, notes: list[str] = (),
          comparisons: list[Comparison] = ()) -> list[str]:
    """Write evaluate.md, evaluate.html (beside it), accuracy.csv and the PNGs; returns the files besides the markdown.
    `comparisons`: the paired tests of components/evaluation/stats.py, a table of their own.

    Training curves are read from the folder of `md_path` (`paths.reports`, where the training stages write them).
    """
    import matplotlib

    matplotlib.use("Agg")
    curves, missing = read_curves(md_path.parent)
    notes = [*notes, *missing]
    if comparisons or any("exact_low" in r for r in results.values()):  # intervals or tests shown: say what they are
        notes.append(STATS_NOTE)
    md_path.write_text(markdown(results, notes, comparisons), encoding="utf-8")
    files = [_write_csv(results, out_dir / "accuracy.csv"), _plot_accuracy(results, out_dir / "accuracy.png"),
             _plot_errors(results, out_dir / "errors.png")]
    if curves:
        files.append(_plot_curves(curves, out_dir / "training_curves.png"))
    if any(map(_samples, results.values())):
        files.append(_plot_pass(results, out_dir / "pass_k.png"))
    else:  # one left by an earlier run with evaluate.samples > 1 would be inlined in the HTML
        (out_dir / "pass_k.png").unlink(missing_ok=True)
    html_path = md_path.with_suffix(".html")
    html_path.write_text(html_report(results, out_dir, notes, comparisons), encoding="utf-8")
    return [*files, str(html_path)]


def _patterns(results: dict[str, dict[str, float]]) -> list[str]:
    """The patterns the test split has, in `PATTERNS` order."""
    return [p for p in PATTERNS if any(f"{p}_n" in r for r in results.values())]


def _write_csv(results: dict[str, dict[str, float]], path: Path) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "pattern", "exact"])
        for m in results:
            writer.writerows([m, p, results[m].get(f"{p}_exact", 0.0)] for p in _patterns(results))
    return str(path)


def _plot_accuracy(results: dict[str, dict[str, float]], path: Path) -> str:
    """Grouped bars: exact accuracy per pattern, one bar per model."""
    import matplotlib.pyplot as plt

    names, patterns = list(results), _patterns(results)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(names)
    for i, m in enumerate(names):
        values = [results[m].get(f"{p}_exact", 0.0) for p in patterns]
        ax.bar([k + i * width for k in range(len(patterns))], values, width, label=m,
               yerr=_errorbars(results[m], patterns, values), capsize=2)
    ax.set_xticks([k + width * (len(names) - 1) / 2 for k in range(len(patterns))], patterns)
    ax.set_ylim(0, 1)
    ax.set_ylabel("exact")
    ax.set_title("Exact accuracy per pattern (bars: 95 % Wilson intervals)")
    ax.legend()
    return _save(fig, path)


def _errorbars(metrics: dict[str, float], patterns: list[str], values: list[float]) -> list[list[float]] | None:
    """The Wilson intervals of `<pattern>_exact` as matplotlib's (below, above) error bars; None without them."""
    if not all(f"{p}_exact_low" in metrics for p in patterns):
        return None
    return [[v - metrics[f"{p}_exact_low"] for p, v in zip(patterns, values)],
            [metrics[f"{p}_exact_high"] - v for p, v in zip(patterns, values)]]


def _plot_errors(results: dict[str, dict[str, float]], path: Path) -> str:
    """Stacked bars: one bar per model, one segment per error class (episodes with that error)."""
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bottom = [0.0] * len(names)
    for i, c in enumerate(_classes(results)):  # tab20: no colour repeats before 20 classes
        vals = [results[m].get(f"errors.{c}", 0.0) for m in names]
        ax.bar(names, vals, bottom=bottom, label=c, color=plt.cm.tab20(i % 20))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("episodes")
    ax.set_title("Error classes per model")
    if _classes(results):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, not over them
    return _save(fig, path)


def _plot_pass(results: dict[str, dict[str, float]], path: Path) -> str:
    """pass@j and pass^j of all episodes against j, one panel each, one line per model with k-sample metrics."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), sharey=True)
    panels = (("pass_at", "pass@j: one of j succeeds"), ("pass_hat", "pass^j: all j succeed"))
    for ax, (key, title) in zip(axes, panels):
        for i, (m, res) in enumerate(results.items()):  # colour i: the model's colour in the accuracy plot
            js = range(1, _samples(res) + 1)
            if js:
                ax.plot(js, [res[f"{key}_{j}"] for j in js], marker="o", label=m, color=f"C{i}")
        ax.set_xticks(range(1, max(map(_samples, results.values())) + 1))
        ax.set_xlabel("j (samples)")
        ax.set_ylim(0, 1.02)
        ax.set_title(title)
        ax.legend()
    axes[0].set_ylabel("exact, all episodes")
    return _save(fig, path)


def _plot_curves(curves: dict[str, list[dict[str, Any]]], path: Path) -> str:
    """One panel per training curve, one line per logged column (an empty cell: not logged at that step)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.5), squeeze=False)
    for ax, (title, rows) in zip(axes[0], curves.items()):
        for key in (k for k in rows[0] if k != "step"):
            points = [(float(r["step"]), float(r[key])) for r in rows if r.get(key)]
            if points:
                ax.plot(*zip(*points), marker=".", label=key)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
