"""Validate stage: the Great Expectations gate between ingest and build.

Reads: `paths.raw` (episodes JSONL), the `validate:` section and `ingest.shares` of params.yaml, and the
tokenizer saved in `paths.base` when that folder exists (for the token-length rule).
Writes: `paths.reports`/validation.md on success; nothing at all on failure, so the previous good
report stays intact.
Run: `python -m components.validate`

Two passes. Record rules first (`non_empty`, `utf8`, `json`, `record_schema`): every line is parsed and
all broken lines are reported together. Then the episodes are flattened into pandas frames (one row per
episode, per call, per pattern, per catalog tool) and checked by Great Expectations suites; GX's
unexpected row indexes are mapped back to `file:line (id ...)`. Any broken rule raises
`ValidationFailed`, which lists every broken rule with its count and first failing records.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from components.config import Params, Validate
from components.episode import DataError, Episode, atomic_file, parse_line
from components.result import StageResult
from components.toolcalls import schema_errors, steps_of_messages, tool_index

RULES = {  # rule name -> what it checks, in report order
    "non_empty": "the file holds at least one episode",
    "utf8": "every line is UTF-8 text",
    "json": "every line is valid JSON",
    "record_schema": "every record satisfies the Episode model",
    "unique_id": "episode ids are unique",
    "role_order": "user speaks first; each tool message answers the preceding assistant's calls; "
                  "an assistant message ends the episode",
    "known_tool": "every called and every expected tool is in the episode's own `tools` catalog",
    "arguments_match_schema": "every call's arguments match the tool's JSON schema",
    "pattern_share": "every pattern reaches validate.min_pattern_share; every pattern of ingest.shares is present",
    "tool_share": "every catalog tool is used in at least validate.min_tool_share of the calls",
    "max_tokens": "every episode, rendered with the base tokenizer's chat template, fits validate.max_tokens",
}
RECORD_RULES = ("non_empty", "utf8", "json", "record_schema")
RULE_FRAME = {"unique_id": "episodes", "role_order": "episodes", "max_tokens": "episodes",
              "known_tool": "calls", "arguments_match_schema": "calls",
              "pattern_share": "patterns", "tool_share": "tools"}
SHOWN = 3  # failing records quoted per rule
_PARSE_ERROR = re.compile(r"^(?P<record>.*?): rule '(?P<rule>\w+)': (?P<detail>.*)$", re.DOTALL)


@dataclass(frozen=True)
class RuleFailure:
    """One broken rule.

    Attributes:
        rule: Rule name (a key of `RULES`).
        count: How many records (rows) break it.
        records: The first failing records, as "file:line (id X)" (share rules: "pattern 'chain'").
        details: What is wrong with each of those records, in the same order.
    """

    rule: str
    count: int
    records: tuple[str, ...]
    details: tuple[str, ...]

    @property
    def detail(self) -> str:
        """What is wrong with the first failing record."""
        return self.details[0] if self.details else ""

    def summary(self) -> str:
        """One line: rule, count and the first records with what is wrong with each."""
        shown = "; ".join(f"{r}: {d}" for r, d in zip(self.records, self.details))
        more = f"; ... and {self.count - len(self.records)} more" if self.count > len(self.records) else ""
        return f"{self.rule}: {self.count} record(s): {shown}{more}"


@dataclass(frozen=True)
class RuleOutcome:
    """The verdict of one rule; `note` says why a rule was skipped."""

    rule: str
    status: Literal["passed", "failed", "skipped"]
    failure: RuleFailure | None = None
    note: str = ""


class ValidationFailed(DataError):
    """The file broke one or more rules; `.failures` lists them, the message has one line per rule."""

    def __init__(self, path: Path, failures: list[RuleFailure]) -> None:
        self.path = path
        self.failures = list(failures)
        lines = [f"{path}: {len(self.failures)} rule(s) failed"] + [f"  - {f.summary()}" for f in self.failures]
        super().__init__("\n".join(lines))


def _failure(rule: str, items: list[tuple[str, str]]) -> RuleFailure:
    """A `RuleFailure` from all (record, detail) pairs that break `rule`."""
    return RuleFailure(rule, len(items), tuple(r for r, _ in items[:SHOWN]), tuple(d for _, d in items[:SHOWN]))


# ------------------------------------------------------------------------------------------ records


def read_records(path: Path) -> list[tuple[int, Episode]]:
    """Parse every line of an episodes file, collecting all record-rule failures.

    Returns:
        (line number, episode) for every non-blank line.

    Raises:
        DataError: The file does not exist.
        ValidationFailed: Some line is not UTF-8, not JSON or not an Episode, or the file is empty.
    """
    if not path.exists():
        raise DataError(f"{path}: file not found (run the ingest stage first)")
    records: list[tuple[int, Episode]] = []
    broken: dict[str, list[tuple[str, str]]] = {}
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                records.append((lineno, parse_line(raw, path, lineno)))
            except DataError as err:  # parse_line names the rule: "<file:line>: rule '<rule>': <detail>"
                match = _PARSE_ERROR.match(str(err))
                rule, record, detail = ((match["rule"], match["record"], match["detail"]) if match
                                        else ("record_schema", f"{path}:{lineno}", str(err)))
                broken.setdefault(rule, []).append((record, detail))
    if not records and not broken:
        broken["non_empty"] = [(str(path), "the file holds no episode")]
    if broken:
        order = list(RULES)
        raise ValidationFailed(path, [_failure(r, broken[r]) for r in sorted(broken, key=order.index)])
    return records


def role_problem(episode: Episode) -> str | None:
    """What breaks the message order of an episode, or None when the order is sound."""
    msgs = episode.messages
    first = next((m for m in msgs if m.role != "system"), None)
    if first is None or first.role != "user":
        return f"the first non-system message is {first.role if first else 'missing'}, not user"
    prev, call_ids = None, set()
    for i, msg in enumerate(msgs):
        if msg.role == "assistant":
            call_ids = {tc.id for tc in msg.tool_calls or [] if tc.id}
        elif msg.role == "tool":
            if prev is None or not (prev.role == "tool" or (prev.role == "assistant" and prev.tool_calls)):
                return f"message {i}: tool message without a preceding assistant tool call"
            if msg.tool_call_id is not None and msg.tool_call_id not in call_ids:
                return f"message {i}: tool_call_id {msg.tool_call_id!r} answers no call of the preceding assistant turn"
        prev = msg
    if msgs[-1].role != "assistant":
        return f"the last message is {msgs[-1].role}, not assistant"
    return None


# ------------------------------------------------------------------------------------------- frames


def _where(path: Path, line: int, episode: Episode) -> str:
    return f"{path}:{line} (id {episode.id})"


def episode_frame(path: Path, records: list[tuple[int, Episode]], tokenizer: Any | None) -> pd.DataFrame:
    """One row per episode: id, role order verdict and, with a tokenizer, the rendered length."""
    rows = []
    for line, ep in records:
        problem = role_problem(ep)
        row = {"record": _where(path, line, ep), "id": ep.id, "role_ok": problem is None, "role_error": problem}
        if tokenizer is not None:
            row["n_tokens"] = count_tokens(tokenizer, ep)
        rows.append(row)
    return pd.DataFrame(rows)


def call_frame(path: Path, records: list[tuple[int, Episode]]) -> pd.DataFrame:
    """One row per call, made (`messages`) or expected (`expected`), with the scorer's verdicts."""
    rows = []
    for line, ep in records:
        index = tool_index(ep.tool_dicts())
        expected = [[c.model_dump() for c in step] for step in ep.expected.steps]
        for where, steps in (("messages", steps_of_messages(ep.message_dicts())), ("expected", expected)):
            for k, step in enumerate(steps):
                for call in step:
                    errors = schema_errors(call, index)
                    tool = [d for kind, d in errors if kind == "hallucinated_tool"]
                    args = [f"{kind}: {d}" for kind, d in errors if kind != "hallucinated_tool"]
                    rows.append({"record": _where(path, line, ep), "where": where, "step": k,
                                 "tool_name": call["name"], "tool_error": tool[0] if tool else None,
                                 "args_error": args[0] if args else None})
    columns = ["record", "where", "step", "tool_name", "tool_error", "args_error"]
    return pd.DataFrame(rows, columns=columns)


def share_frames(records: list[tuple[int, Episode]], calls: pd.DataFrame,
                 shares: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pattern shares (present or configured patterns) and tool shares (over the calls made)."""
    patterns = Counter(ep.pattern for _, ep in records)
    names = sorted(set(patterns) | {p for p, s in shares.items() if s > 0})
    pattern_rows = [{"record": f"pattern {p!r}", "count": patterns[p], "share": patterns[p] / len(records),
                     "configured": shares.get(p, 0.0)} for p in names]
    made = calls.loc[calls["where"] == "messages", "tool_name"]
    used, total = Counter(made), len(made)
    catalog = sorted({t.function.name for _, ep in records for t in ep.tools})
    tool_rows = [{"record": f"tool {t!r}", "count": used[t], "share": used[t] / total if total else 0.0,
                  "total": total} for t in catalog]
    return (pd.DataFrame(pattern_rows, columns=["record", "count", "share", "configured"]),
            pd.DataFrame(tool_rows, columns=["record", "count", "share", "total"]))


def load_tokenizer(folder: Path) -> Any | None:
    """The base model's tokenizer saved in `folder`, or None when the folder does not exist."""
    if not folder.is_dir():
        return None
    from transformers import AutoTokenizer  # heavy import, only when there is a tokenizer to load

    return AutoTokenizer.from_pretrained(str(folder))


def count_tokens(tokenizer: Any, episode: Episode) -> int:
    """Length of the episode rendered with the tokenizer's chat template, tools included."""
    enc = tokenizer.apply_chat_template(episode.message_dicts(), tools=episode.tool_dicts(), tokenize=True,
                                        return_dict=True)
    return len(enc["input_ids"])


# ----------------------------------------------------------------------------------- expectations

_DETAIL: dict[str, Callable[[pd.Series, Validate], str]] = {
    "unique_id": lambda row, v: f"id {row['id']!r} is used by more than one record",
    "role_order": lambda row, v: str(row["role_error"]),
    "max_tokens": lambda row, v: f"{row['n_tokens']} tokens > validate.max_tokens={v.max_tokens}",
    "known_tool": lambda row, v: f"{row['tool_error']} ({row['where']} step {row['step']})",
    "arguments_match_schema": lambda row, v: f"{row['args_error']} ({row['where']} step {row['step']})",
    "pattern_share": lambda row, v: (
        f"share {row['share']:.3f} < validate.min_pattern_share={v.min_pattern_share}" if row["count"]
        else f"absent, though ingest.shares gives it {row['configured']}"),
    "tool_share": lambda row, v: (f"used in {row['count']} of {row['total']} calls ({row['share']:.3f}) "
                                  f"< validate.min_tool_share={v.min_tool_share}"),
}


def expectations(v: Validate, with_tokens: bool) -> dict[str, Any]:
    """The GX expectation of each frame rule; each carries its rule name in `meta`."""
    import great_expectations.expectations as gxe

    low = v.min_pattern_share  # a configured pattern must be present even when the minimum is 0
    found = {
        "unique_id": gxe.ExpectColumnValuesToBeUnique(column="id"),
        "role_order": gxe.ExpectColumnValuesToBeInSet(column="role_ok", value_set=[True]),
        "known_tool": gxe.ExpectColumnValuesToBeNull(column="tool_error"),
        "arguments_match_schema": gxe.ExpectColumnValuesToBeNull(column="args_error"),
        "pattern_share": gxe.ExpectColumnValuesToBeBetween(column="share", min_value=low, strict_min=low == 0),
        "tool_share": gxe.ExpectColumnValuesToBeBetween(column="share", min_value=v.min_tool_share),
    }
    if with_tokens:
        found["max_tokens"] = gxe.ExpectColumnValuesToBeBetween(column="n_tokens", max_value=v.max_tokens)
    for rule, expectation in found.items():
        expectation.meta = {"rule": rule}
    return found


def _crash_message(info: dict[str, Any] | None) -> str | None:
    """The exception message when GX caught one while computing an expectation (flat or per metric)."""
    if not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    crashed = [str(sub.get("exception_message")) for sub in info.values()
               if isinstance(sub, dict) and sub.get("raised_exception")]
    return "; ".join(crashed) or None


def run_suites(frames: dict[str, pd.DataFrame], checks: dict[str, Any]) -> dict[str, list[int]]:
    """Run the expectations of each rule on its frame (`RULE_FRAME`) in an ephemeral GX context.

    Returns:
        Rule -> row indexes of its frame that break it (empty when the rule passed).

    Raises:
        RuntimeError: GX caught an exception inside an expectation: a bug in tooltune, not bad data.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm noise in CI logs
    source = ctx.data_sources.add_pandas(name="tooltune")
    unexpected: dict[str, list[int]] = {}
    for name, frame in frames.items():
        mine = [exp for rule, exp in checks.items() if RULE_FRAME[rule] == name]
        if not mine:
            continue
        batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{name}_suite", expectations=mine))
        definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        for res in result.results:
            rule = res.expectation_config.meta["rule"]
            crash = _crash_message(res.exception_info)
            rows = list(res.result.get("unexpected_index_list") or [])
            if crash or (not res.success and not rows):
                raise RuntimeError(f"validate: expectation {rule} ({res.expectation_config.type}) crashed "
                                   f"(a bug in tooltune, not bad data): {crash or 'failed without naming rows'}")
            unexpected[rule] = [] if res.success else rows
    return unexpected


# ------------------------------------------------------------------------------------------- stage


def validate_file(path: Path, params: Params) -> tuple[list[RuleOutcome], dict[str, float]]:
    """Check an episodes file against every rule.

    Returns:
        The outcome of each rule (passed or skipped) and headline metrics.

    Raises:
        ValidationFailed: Some rule failed; it lists every broken rule.
        RuntimeError: A GX expectation crashed (a bug, not bad data).
    """
    path = Path(path)
    records = read_records(path)
    base = params.path("base")
    tokenizer = load_tokenizer(base)
    calls = call_frame(path, records)
    patterns, tools = share_frames(records, calls, params.ingest.shares)
    frames = {"episodes": episode_frame(path, records, tokenizer), "calls": calls,
              "patterns": patterns, "tools": tools}
    unexpected = run_suites(frames, expectations(params.validate_, tokenizer is not None))
    outcomes = [RuleOutcome(rule, "passed") for rule in RECORD_RULES]
    for rule, frame_name in sorted(RULE_FRAME.items(), key=lambda kv: list(RULES).index(kv[0])):
        if rule not in unexpected:
            outcomes.append(RuleOutcome(rule, "skipped", note=f"no tokenizer at {base}"))
            continue
        frame = frames[frame_name]
        items = [(frame.at[i, "record"], _DETAIL[rule](frame.loc[i], params.validate_)) for i in unexpected[rule]]
        outcomes.append(RuleOutcome(rule, "failed", _failure(rule, items)) if items else RuleOutcome(rule, "passed"))
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures:
        raise ValidationFailed(path, failures)
    metrics = {"n_episodes": float(len(records)), "n_calls": float((calls["where"] == "messages").sum()),
               "rules_checked": float(sum(o.status != "skipped" for o in outcomes)), "rules_failed": 0.0}
    return outcomes, metrics


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(path: Path, outcomes: list[RuleOutcome], metrics: dict[str, float]) -> str:
    """The validation report: one table row per rule, then what each rule checks."""
    skipped = sum(o.status == "skipped" for o in outcomes)
    lines = [f"# Validation of `{path}`", "",
             f"{int(metrics['n_episodes'])} episodes, {int(metrics['n_calls'])} calls; "
             f"{int(metrics['rules_checked'])} rules checked, {int(metrics['rules_failed'])} failed, "
             f"{skipped} skipped.", "",
             "| rule | status | failing count | first failing records |", "|---|---|---|---|"]
    for o in outcomes:
        f = o.failure
        count = str(f.count) if f else ("-" if o.status == "skipped" else "0")
        first = "; ".join(f"{r}: {d}" for r, d in zip(f.records, f.details)) if f else o.note
        lines.append(f"| {o.rule} | {o.status} | {count} | {_cell(first)} |")
    lines += ["", "## Rules", ""] + [f"- `{rule}`: {what}" for rule, what in RULES.items()]
    return "\n".join(lines) + "\n"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (temporary file + rename)."""
    with atomic_file(path) as handle:
        handle.write(text)


def run(params: Params) -> StageResult:
    """Validate `paths.raw`; on success write `reports/validation.md`, on failure raise and write nothing.

    Raises:
        ValidationFailed: Some rule failed.
    """
    path = params.path("raw")
    outcomes, metrics = validate_file(path, params)
    report = params.path("reports") / "validation.md"
    write_text(report, render_markdown(path, outcomes, metrics))
    return StageResult(stage="validate", metrics=metrics, reports=[str(report)], outputs={"report": str(report)},
                       details={"skipped": [o.rule for o in outcomes if o.status == "skipped"]})


def main() -> None:
    """Command-line entry point: `python -m components.validate`."""
    from components.tracking import stage_main

    stage_main("validate")


if __name__ == "__main__":
    main()
