"""Learning curve: held-out exact per pattern against SFT steps (and minutes on this machine), from one long SFT run.

    python bench/learning_curve.py --workdir DIR [--steps 66,132,198,264] [--seconds-per-step S] [--skip-train]
                                   [--max-train-seconds S] [--largest-first] [--machine TEXT] [-S KEY=VALUE ...]

DIR holds the params.yaml read (the repo root with `-S project.workdir=runs/NAME`, or a workdir with its own); the
project's workdir must have run `base`..`build` (it holds `paths.base` and `paths.splits`). The `sft` stage runs
there once for the largest step count (`sft.max_steps` overridden) and a callback keeps the adapter (or the weights
and tokenizer, without LoRA) at every listed step under `<project.workdir>/learning_curve/step-N/`. The SFT learning
rate is kept constant after warm-up (`sft.lr_schedule: constant`, whatever params say), so the model at step N of the
long run is a model trained N steps, as a constant-rate run with `sft.max_steps: N` would be (its rows are another
random draw of the same split). Each snapshot, and the base model as step 0, is then evaluated like the `evaluate`
stage does (test split, and the hand-written set; cached in `paths.eval_cache`). When `--max-train-seconds` ends
training between two snapshots, the stage's output (its last step, with its call gate) is evaluated as one more
point. Writes `<project.workdir>/reports/learning_curve.{csv,md,png}`.

Minutes: the training seconds recorded at each snapshot (a measurement only when nothing else ran beside the
training), or steps x `--seconds-per-step` when given.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components import domains, evaluate, sft  # noqa: E402
from components.config import Params, load_params  # noqa: E402
from components.training import models  # noqa: E402

PATTERNS = ("single", "parallel", "chain", "recovery", "irrelevance", "multi_turn")


def snapshot_callback(steps: list[int], out: Path) -> Any:
    """A `TrainerCallback` that saves the model (the LoRA adapter when there is one) at each of `steps` into
    `out/step-N/` with the training seconds so far in `out/step-N/seconds.json`."""
    from transformers import TrainerCallback

    class Snapshots(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.time()

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                        processing_class: Any = None, **kwargs: Any) -> None:
            if state.global_step in steps:
                folder = out / f"step-{state.global_step}"
                model.save_pretrained(folder, safe_serialization=True)
                if processing_class is not None and not (folder / "adapter_config.json").is_file():
                    processing_class.save_pretrained(folder)  # full weights: evaluable as they are
                (folder / "seconds.json").write_text(json.dumps({"seconds": time.time() - self.started}))

    return Snapshots()


def time_limit_callback(seconds: float) -> Any:
    """A `TrainerCallback` that ends training once `seconds` of it have passed (a lent machine's budget): the
    snapshots taken so far are evaluated, the later steps are not."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.time()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if time.time() - self.started > seconds:
                print(f"learning_curve: {seconds:.0f} s of training reached at step {state.global_step}: stopping",
                      flush=True)
                control.should_training_stop = True

    return TimeLimit()


def merged(params: Params, snapshot: Path) -> Path:
    """The evaluable model folder of a snapshot: the base with the adapter merged (written once), or the snapshot."""
    if not (snapshot / "adapter_config.json").is_file():
        return snapshot
    folder = snapshot / "merged"
    if not (folder / "model.safetensors").is_file():
        from peft import PeftModel

        model, tok = models.load(params.path("base"))
        model = PeftModel.from_pretrained(model, str(snapshot)).merge_and_unload()
        models.save(model, tok, folder, {"stage": "sft", "snapshot": snapshot.name})
    return folder


def evaluate_points(params: Params, points: list[tuple[int, Path]]) -> list[dict[str, Any]]:
    """Evaluate each (step, model folder) on the test split and the hand-written set; one row of rates per step."""
    domain = domains.of(params)
    sets, _ = evaluate.episode_sets(params, domain)
    out_dir = params.path("reports") / "learning_curve"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for step, folder in points:
        scored = evaluate.evaluate_model(f"sft_step{step}", params, domain, sets, out_dir, folder=folder)
        test, hw = scored[""][0], scored.get(evaluate.HANDWRITTEN, ({}, []))[0]
        timing = (folder.parent if folder.name == "merged" else folder) / "seconds.json"
        seconds = json.loads(timing.read_text())["seconds"] if timing.is_file() else 0.0
        row = {"step": step, "train_seconds": seconds, "exact": test["exact"], "exact_low": test["exact_low"],
               "exact_high": test["exact_high"], "unparsable": test["unparsable"], "handwritten_exact": hw.get("exact", float("nan"))}
        row |= {f"{p}_exact": test.get(f"{p}_exact", float("nan")) for p in PATTERNS}
        rows.append(row)
        print(f"learning_curve: step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "step"),
              flush=True)  # a row as soon as it is known: a run cut short keeps what it measured
    return sorted(rows, key=lambda r: r["step"])


def write(rows: list[dict[str, Any]], reports: Path, seconds_per_step: float | None,
          machine: str = "this 2-core CPU") -> None:
    """`learning_curve.csv`, `.md` (a table with minutes) and `.png` (exact per pattern against minutes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for row in rows:
        seconds = row["step"] * seconds_per_step if seconds_per_step else row["train_seconds"]
        row["minutes"] = round(seconds / 60, 1)
    reports.mkdir(parents=True, exist_ok=True)
    with open(reports / "learning_curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cols = ["exact", *[f"{p}_exact" for p in PATTERNS], "handwritten_exact", "unparsable"]
    lines = ["| SFT steps | minutes | " + " | ".join(c.removesuffix("_exact") or c for c in cols) + " |",
             "|---" * (len(cols) + 2) + "|"]
    for row in rows:
        cells = [f"{100 * row[c]:.1f}" for c in cols]
        cells[0] = f"{100 * row['exact']:.1f} [{100 * row['exact_low']:.0f}–{100 * row['exact_high']:.0f}]"
        lines.append(f"| {row['step']} | {row['minutes']} | " + " | ".join(cells) + " |")
    (reports / "learning_curve.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(8, 5))
    x = [r["minutes"] for r in rows]
    for col in cols[:-1]:
        ax.plot(x, [100 * r[col] for r in rows], marker="o", lw=2.5 if col == "exact" else 1.2,
                label=col.removesuffix("_exact") if col != "exact" else "all (test)")
    ax.set_xlabel(f"SFT training minutes on {machine}" + (f" ({seconds_per_step:.1f} s/step)" if seconds_per_step
                                                                  else ""))
    ax.set_ylabel("held-out exact (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("Learning curve: held-out exact per pattern vs SFT budget (step 0 = base)")
    fig.tight_layout()
    fig.savefig(reports / "learning_curve.png", dpi=120)
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--steps", default="66,132,198,264", help="comma-separated SFT steps to snapshot and evaluate")
    ap.add_argument("--seconds-per-step", type=float, default=None,
                    help="minutes = steps x this (default: the training seconds recorded at each snapshot)")
    ap.add_argument("--machine", default="this 2-core CPU", help="where the training ran, for the plot's axis")
    ap.add_argument("--skip-train", action="store_true", help="evaluate the snapshots already in the workdir")
    ap.add_argument("--max-train-seconds", type=float, default=None,
                    help="stop training after this long (the snapshots reached so far are evaluated)")
    ap.add_argument("--largest-first", action="store_true",
                    help="evaluate the largest step first (a run cut short has the most telling points)")
    ap.add_argument("--no-base", action="store_true", help="leave out step 0 (the base model's evaluation)")
    ap.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a params value (as `tooltune stage -S`), e.g. 'sft.pattern_weights={chain: 2}'")
    args = ap.parse_args()
    steps = sorted(int(s) for s in args.steps.split(","))
    params = load_params(args.workdir / "params.yaml", args.profile,
                         [*args.set_param, f"sft.max_steps={steps[-1]}", "sft.lr_schedule=constant"])  # N-step models
    snapshots = Path(params.project.workdir) / "learning_curve"
    if not args.skip_train:
        limit = [] if args.max_train_seconds is None else [time_limit_callback(args.max_train_seconds)]
        result = sft.run(params, [snapshot_callback(steps, snapshots), *limit])
        print(f"sft: {result.metrics}")
    points = ([] if args.no_base else [(0, params.path("base"))]) + [(s, merged(params, snapshots / f"step-{s}")) for s in steps
                                           if (snapshots / f"step-{s}").is_dir()]
    output = params.path("sft_model")
    if not args.skip_train and (last := json.loads((output / "tooltune.json").read_text())["steps"]) not in steps:
        # the time limit stopped training between snapshots: the stage's output (with its call gate) is a point too
        (output / "seconds.json").write_text(json.dumps({"seconds": result.metrics["train_seconds"]}))
        points.append((last, output))
    if args.largest_first:
        points.sort(key=lambda p: -p[0])
    write(evaluate_points(params, points), params.path("reports"), args.seconds_per_step, args.machine)


if __name__ == "__main__":
    main()
