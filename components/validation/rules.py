"""The validate stage's rules, in one table, and how a broken rule is reported.

Each rule is one `Rule` in `RULES` (report order): what it checks, where it is checked and how a failing record
is worded. A rule without a frame is a *record rule*: the reader checks it while parsing each line
(`validation.records`). The others are *frame rules*: `validation.frames` builds one row per episode, call,
pattern, catalog tool or split episode, an episode rule's `check` (`validation.checks`) fills its verdict column
`<rule>_error`, the rule's Great Expectations expectation (`expect`) checks the frame (`validation.gx`), and
`detail` turns a failing row into the report's words. A broken rule becomes a `RuleFailure` (rule, count, first
failing records), raised inside `ValidationFailed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from components.config import Validate
from components.data.episode import DataError, Episode
from components.validation import checks

SPLITS = ("train", "val", "test")
SHOWN = 3  # failing records quoted per rule

Row = Any  # a pandas row (`pd.Series`): this module does not import pandas
Expect = tuple[str, Callable[[Validate], dict[str, Any]]]  # GX expectation class name, its arguments


@dataclass(frozen=True)
class Rule:
    """One validation rule.

    Attributes:
        description: What it checks (the report's rule list).
        frame: The frame its expectation checks (`episodes`, `calls`, `patterns`, `tools`, `splits`); None for a
            record rule, checked while each line is read. `domains` (rule `no_call_share`) has thresholds, not an
            expectation: below one a warning, below the other a one-line `DataError` (`validate.no_call_problem`).
        expect: Its Great Expectations expectation, by class name and arguments (frame rules).
        detail: A failing row of its frame -> what is wrong with that record (frame rules).
        check: An episode -> what breaks the rule, or None (episode rules: their verdict column is
            `<name>_error` of the episodes frame).
    """

    description: str
    frame: Literal["episodes", "calls", "patterns", "tools", "splits", "domains"] | None = None
    expect: Expect | None = None
    detail: Callable[[Row, Validate], str] | None = None
    check: Callable[[Episode], str | None] | None = None


def _null(column: str) -> Expect:
    return "ExpectColumnValuesToBeNull", lambda v: {"column": column}


def _unique(column: str) -> Expect:
    return "ExpectColumnValuesToBeUnique", lambda v: {"column": column}


def _episode_rule(description: str, check: Callable[[Episode], str | None], column: str) -> Rule:
    return Rule(description, "episodes", _null(column), lambda row, v: str(row[column]), check)


RULES: dict[str, Rule] = {
    "non_empty": Rule("the file holds at least one episode"),
    "utf8": Rule("every line is UTF-8 text"),
    "json": Rule("every line is valid JSON"),
    "line_size": Rule("every line fits components.data.inputs.MAX_LINE_BYTES"),
    "json_depth": Rule("no line nests arrays/objects deeper than components.data.inputs.MAX_DEPTH"),
    "number_size": Rule("every integer converts to text (at most 4300 digits)"),
    "json_number": Rule("no NaN, Infinity or number too large for a float (not JSON)"),
    "duplicate_key": Rule("no key appears twice in one object (which value counts is ambiguous)"),
    "unicode": Rule("no lone surrogate escape (\\ud800): every string is Unicode text"),
    "record_schema": Rule("every record satisfies the Episode model (fields, types, roles)"),
    "arguments_json": Rule("every call's `arguments` is a JSON object, not a (JSON-encoded or broken) string"),
    "unique_id": Rule("episode ids are unique", "episodes", _unique("id"),
                      lambda row, v: f"id {row['id']!r} is used by more than one record"),
    "role_order": _episode_rule("user speaks first (after any system message); an assistant message ends the "
                                "episode", checks.role_problem, "role_order_error"),
    "tool_result": _episode_rule("every tool message answers a call of the assistant turn before it (by "
                                 "tool_call_id and name when given); every call gets exactly one result before the "
                                 "conversation moves on", checks.tool_result_problem, "tool_result_error"),
    "tool_schema": _episode_rule("every tool's parameters are a usable JSON Schema: an object, nested at most 64 "
                                 "levels, local $refs that resolve, patterns RE2 compiles (rules schema_depth, "
                                 "schema_ref, schema_pattern)", checks.tool_schema_problem, "tool_schema_error"),
    "known_tool": Rule("every called and every expected tool is in the episode's own `tools` catalog", "calls",
                       _null("tool_error"), lambda row, v: f"{row['tool_error']} ({row['where']} step {row['step']})"),
    "arguments_match_schema": Rule(
        "every call's arguments match the tool's JSON schema (types, required, no unknown parameter, enums)",
        "calls", _null("args_error"), lambda row, v: f"{row['args_error']} ({row['where']} step {row['step']})"),
    "dependency_order": _episode_rule("expected.depends_on links existing steps (later > earlier) and the "
                                      "conversation makes a step's calls in a later turn than the calls of the "
                                      "steps it depends on", checks.dependency_problem, "dependency_order_error"),
    "pattern_share": Rule(
        "every pattern reaches validate.min_pattern_share; every pattern of ingest.shares is present", "patterns",
        # a configured pattern must be present even when the minimum is 0
        ("ExpectColumnValuesToBeBetween", lambda v: {"column": "share", "min_value": v.min_pattern_share,
                                                      "strict_min": v.min_pattern_share == 0}),
        lambda row, v: (f"share {row['share']:.3f} < validate.min_pattern_share={v.min_pattern_share}"
                        if row["count"] else f"absent, though ingest.shares gives it {row['configured']}")),
    "tool_share": Rule(
        "every catalog tool is used in at least validate.min_tool_share of the calls", "tools",
        ("ExpectColumnValuesToBeBetween", lambda v: {"column": "share", "min_value": v.min_tool_share}),
        lambda row, v: (f"used in {row['count']} of {row['total']} calls ({row['share']:.3f}) "
                        f"< validate.min_tool_share={v.min_tool_share}")),
    "max_tokens": Rule(
        "every episode, rendered with the base tokenizer's chat template, fits validate.max_tokens", "episodes",
        ("ExpectColumnValuesToBeBetween", lambda v: {"column": "n_tokens", "max_value": v.max_tokens}),
        lambda row, v: f"{row['n_tokens']} tokens > validate.max_tokens={v.max_tokens}"),
    "no_call_share": Rule(
        "every domain has at least validate.no_call.warn_share of its episodes answered without a call (below: a "
        "warning with the number needed; below validate.no_call.fail_share: validate fails)", "domains",
        detail=lambda row, v: (f"domain {row['domain']!r}: {row['no_call']} of {row['count']} episodes answer without "
                               f"a call ({row['share']:.3f}); validate.no_call.warn_share={v.no_call.warn_share} needs "
                               f"{row['needed']}, {row['needed'] - row['no_call']} more (ingest.irrelevance_pool adds "
                               "them)")),
    "split_unique_id": Rule("(splits) an episode id appears in one split only", "splits", _unique("id"),
                            lambda row, v: f"id {row['id']!r} is in more than one split"),
    "split_leakage": Rule(
        "(splits) no user text (lowercased, punctuation stripped, whitespace collapsed) appears in two splits, "
        "except for the patterns in validate.leakage_exempt_patterns (neither flagged nor counted against "
        "others: a removed-tool twin may share its single request's text)", "splits", _null("leak_error"),
        lambda row, v: f"{row['pattern']} episode whose user text (key {row['key']}) is also in split(s) "
                       f"{row['leak_error']}"),
}
RECORD_RULES = tuple(name for name, rule in RULES.items() if rule.frame is None)
EPISODE_RULES = {name: rule.check for name, rule in RULES.items() if rule.check is not None}


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
    status: Literal["passed", "failed", "skipped", "warned"]
    failure: RuleFailure | None = None
    note: str = ""


class ValidationFailed(DataError):
    """The file broke one or more rules; `.failures` lists them, the message has one line per rule."""

    def __init__(self, path: Path, failures: list[RuleFailure]) -> None:
        self.path = path
        self.failures = list(failures)
        lines = [f"{path}: {len(self.failures)} rule(s) failed"] + [f"  - {f.summary()}" for f in self.failures]
        super().__init__("\n".join(lines))


def failure_of(rule: str, items: list[tuple[str, str]]) -> RuleFailure:
    """A `RuleFailure` from all (record, detail) pairs that break `rule`."""
    return RuleFailure(rule, len(items), tuple(r for r, _ in items[:SHOWN]), tuple(d for _, d in items[:SHOWN]))


def in_report_order(rules: dict[str, Any]) -> list[str]:
    """The rule names of `rules` in the order of `RULES`."""
    return sorted(rules, key=list(RULES).index)


def frame_rules(*frames: str) -> list[str]:
    """The names of the rules checked on these frames, in report order."""
    return [name for name, rule in RULES.items() if rule.frame in frames]


def episode_problems(episode: Episode) -> dict[str, str]:
    """Rule -> what breaks it, for every per-episode rule the episode breaks (empty when it is sound)."""
    return {rule: problem for rule, check in EPISODE_RULES.items() if (problem := check(episode))}
