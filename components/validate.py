"""Validate stage: the Great Expectations gate between ingest and build, and the cross-split check of build.

Reads: `paths.raw` (episodes JSONL), the `validate:` section and `ingest.shares` of params.yaml, and the
tokenizer saved in `paths.base` when that folder exists (for the token-length rule).
Writes: `paths.reports`/validation.md (rule, status, count, first failing records) and the GX Data Docs
site `paths.reports`/validation_docs/ on success; nothing at all on failure, so the previous good report
stays intact.
Run: `python -m components.validate`

Two passes. Record rules first (`non_empty`, `utf8`, `json`, `record_schema`, `arguments_json`): every
line is parsed and all broken lines are reported together. Then the episodes are flattened into pandas
frames (one row per episode, per call, per pattern, per catalog tool) and checked by Great Expectations
suites; GX's unexpected row indexes are mapped back to `file:line (id ...)`. Any broken rule raises
`ValidationFailed`, which lists every broken rule with its count and first failing records. Then rule
`no_call_share`: a domain with few episodes answered without a call is a warning (report, log, metric
`no_call_needed`: how many more it needs), or below `validate.no_call.fail_share` a one-line `DataError`. The build
stage calls `validate_splits` on the folder it is about to publish (ids and user texts unique across
splits).

This module runs the stage and writes its report; the rules live in `components/validation/`: `rules` (the one
table: each rule's description, frame, expectation and wording; failures), `records` (reading the file),
`checks` (per-episode rules), `frames` (the frames GX checks), `tokens` (token lengths) and `gx` (expectations,
suites, Data Docs).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from components.config import Params, Validate
from components.data.fileio import atomic_dir, atomic_file, gc_exempt, md_cell
from components.result import StageResult
from components.data.episode import DataError
from components.validation.frames import call_frame, domain_frame, episode_frame, share_frames, split_frame
from components.validation.gx import expectations, run_suites, split_expectations
from components.validation.records import read_records
from components.validation.rules import RECORD_RULES, RULES, RuleOutcome, ValidationFailed, failure_of, frame_rules
# Also the stage's API for build, importers and tests, so they need not know the modules behind it:
from components.validation.rules import SPLITS, RuleFailure, episode_problems
from components.validation.tokens import counting_in_background

logger = logging.getLogger(__name__)


def _outcomes(frames: dict[str, pd.DataFrame], unexpected: dict[str, list[int]], rules: list[str],
              v: Validate, skip_note: str = "") -> list[RuleOutcome]:
    """The outcome of each frame rule: failed (with its first records), passed, or skipped when not run."""
    outcomes = []
    for rule in rules:
        if rule not in unexpected:
            outcomes.append(RuleOutcome(rule, "skipped", note=skip_note))
            continue
        frame, detail = frames[RULES[rule].frame], RULES[rule].detail
        items = [(frame.at[i, "record"], detail(frame.loc[i], v)) for i in unexpected[rule]]
        outcomes.append(RuleOutcome(rule, "failed", failure_of(rule, items)) if items else RuleOutcome(rule, "passed"))
    return outcomes


def _one_per_record(counts: list[int], records: list[tuple[int, Any]], path: Path) -> list[int]:
    """The token counts, checked to be one per record read (the child read the same file)."""
    if len(counts) != len(records):
        raise RuntimeError(f"{path}: {len(counts)} token counts for {len(records)} records: the file changed "
                           "while it was validated")
    return counts


def _raise_failures(path: Path, outcomes: list[RuleOutcome]) -> None:
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures:
        raise ValidationFailed(path, failures)


def validate_file(path: Path, params: Params, docs: Path | None = None) -> tuple[list[RuleOutcome], dict[str, float]]:
    """Check an episodes file against every file rule.

    Args:
        path: The episodes file.
        params: The loaded params (`validate`, `ingest.shares`, `paths.base`).
        docs: Folder to build the GX Data Docs site in, or None.

    Returns:
        The outcome of each rule (passed or skipped) and headline metrics.

    Raises:
        ValidationFailed: Some rule failed; it lists every broken rule.
        DataError: A domain has fewer no-call episodes than `validate.no_call.fail_share` (`no_call_problem`).
        RuntimeError: A GX expectation crashed, or counting tokens did (a bug, not bad data).
    """
    path = Path(path)
    base = params.path("base")
    # the token counts come from a child process that reads the file while this one checks everything else
    with counting_in_background(path, base) as wait_for_counts, \
            gc_exempt(lambda: read_records(path)) as records:  # the episodes live to the end of the checks
        calls = call_frame(path, records)
        configured = params.ingest.shares if params.ingest.source == "synthetic" else {}  # imports only: no quota
        patterns, tools = share_frames(records, calls, configured)
        episodes = episode_frame(path, records)
        checks = expectations(params.validate_, wait_for_counts is not None)
        if wait_for_counts is not None:
            episodes["n_tokens"] = _one_per_record(wait_for_counts(), records, path)
        frames = {"episodes": episodes, "calls": calls, "patterns": patterns, "tools": tools}
        unexpected = run_suites(frames, checks, docs)
    file_rules = frame_rules("episodes", "calls", "patterns", "tools")
    outcomes = [RuleOutcome(rule, "passed") for rule in RECORD_RULES]
    outcomes += _outcomes(frames, unexpected, file_rules, params.validate_, f"no tokenizer at {base}")
    _raise_failures(path, outcomes)
    no_call = domain_frame(records, params.validate_.no_call.warn_share)
    outcomes.append(no_call_problem(path, no_call, params.validate_))
    metrics = {"n_episodes": float(len(records)), "n_calls": float((calls["where"] == "messages").sum()),
               "rules_checked": float(sum(o.status != "skipped" for o in outcomes)), "rules_failed": 0.0,
               "no_call_needed": float((no_call["needed"] - no_call["no_call"]).clip(lower=0).sum())}
    return outcomes, metrics


def no_call_problem(path: Path, domains: pd.DataFrame, v: Validate) -> RuleOutcome:
    """Rule `no_call_share` on the per-domain frame (`frames.domain_frame`): passed, or warned with the number of
    no-call episodes needed (logged too).

    Raises:
        DataError: A domain is below `validate.no_call.fail_share` (one line: file, rule, domain, number needed).
    """
    low = domains[domains["share"] < v.no_call.warn_share]
    if low.empty:
        return RuleOutcome("no_call_share", "passed")
    detail = RULES["no_call_share"].detail
    failing = low[low["share"] < v.no_call.fail_share]
    if not failing.empty:
        raise DataError(f"{path}: rule 'no_call_share': {detail(failing.iloc[0], v)}; below "
                        f"validate.no_call.fail_share={v.no_call.fail_share}")
    items = [(row["record"], detail(row, v)) for _, row in low.iterrows()]
    for _, text in items:
        logger.warning("%s: rule 'no_call_share': %s", path, text)
    return RuleOutcome("no_call_share", "warned", failure_of("no_call_share", items))


def validate_splits(split_dir: Path, params: Params, shown_as: Path | None = None) -> list[RuleOutcome]:
    """Check the split files of `split_dir` together: each id in one split, no user text in two splits.

    Build calls it on the scratch folder it is about to publish, so a leak fails build and leaves the
    previous splits in place.

    Args:
        split_dir: Folder with train.jsonl, val.jsonl and test.jsonl.
        params: The loaded params (`validate.leakage_exempt_patterns`).
        shown_as: The folder named in messages (build: `paths.splits`, not its scratch copy); default `split_dir`.

    Raises:
        ValidationFailed: A split file is broken, an id is in two splits, or a user text leaks across splits.
        RuntimeError: A GX expectation crashed (a bug, not bad data).
    """
    shown = Path(shown_as or split_dir)
    frames = {"splits": split_frame(Path(split_dir), list(params.validate_.leakage_exempt_patterns), shown)}
    unexpected = run_suites(frames, split_expectations(params.validate_))
    outcomes = _outcomes(frames, unexpected, ["split_unique_id", "split_leakage"], params.validate_)
    _raise_failures(shown, outcomes)
    return outcomes


def render_markdown(path: Path, outcomes: list[RuleOutcome], metrics: dict[str, float]) -> str:
    """The validation report: one table row per rule, then what each rule checks."""
    skipped = sum(o.status == "skipped" for o in outcomes)
    lines = [f"# Validation of `{path}`", "",
             f"{int(metrics['n_episodes'])} episodes, {int(metrics['n_calls'])} calls; "
             f"{int(metrics['rules_checked'])} rules checked, {int(metrics['rules_failed'])} failed, "
             f"{skipped} skipped. Great Expectations Data Docs: `validation_docs/index.html`.", "",
             "| rule | status | failing count | first failing records |", "|---|---|---|---|"]
    for o in outcomes:
        f = o.failure
        count = str(f.count) if f else ("-" if o.status == "skipped" else "0")
        first = "; ".join(f"{r}: {d}" for r, d in zip(f.records, f.details)) if f else o.note
        lines.append(f"| {o.rule} | {o.status} | {count} | {md_cell(first)} |")
    lines += ["", "## Rules", ""] + [f"- `{name}`: {rule.description}" for name, rule in RULES.items()]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary file + rename)."""
    with atomic_file(path) as handle:
        handle.write(text)


def run(params: Params) -> StageResult:
    """Validate `paths.raw`; on success write the markdown report and the Data Docs site, on failure nothing.

    Raises:
        ValidationFailed: Some rule failed.
    """
    path = params.path("raw")
    reports = params.path("reports")
    report, docs = reports / "validation.md", reports / "validation_docs"
    with tempfile.TemporaryDirectory(prefix="tooltune-gx-") as scratch:
        site = Path(scratch) / "site"
        outcomes, metrics = validate_file(path, params, site)
        with atomic_dir(docs) as tmp:  # published only after every rule passed
            shutil.copytree(site, tmp, dirs_exist_ok=True)
    write_text(report, render_markdown(path, outcomes, metrics))
    return StageResult(stage="validate", metrics=metrics, reports=[str(report), str(docs)],
                       outputs={"report": str(report), "docs": str(docs / "index.html")},
                       details={"skipped": [o.rule for o in outcomes if o.status == "skipped"]})


def main() -> None:
    """Command-line entry point: `python -m components.validate`."""
    from components.tracking import stage_main

    stage_main("validate")


if __name__ == "__main__":
    main()
