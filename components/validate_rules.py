"""The validate stage's rules: their catalogue, how a broken rule is reported, the record rules and the
per-episode rules.

Reads: an episodes JSONL file (`read_records`, through `components.inputs.iter_json_lines`: the record rules
`non_empty`, `utf8`, `json` (and the reader's limits: `json_depth`, `number_size`, `json_number`, `duplicate_key`,
`unicode`, `line_size`), `record_schema`, `arguments_json`; every broken line of the file is reported together).
Writes: nothing. A broken rule becomes a `RuleFailure` (rule, count, first failing records), raised inside
`ValidationFailed`. The per-episode rules (`role_order`, `tool_result`, `dependency_order`, `tool_schema`) are
plain functions `Episode -> problem or None`; `validate_frames` puts their verdicts into the columns the GX suites check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from components.episode import DataError, Episode, Tool, episode_of, gc_paused, record_object, user_text
from components.inputs import iter_json_lines
from components.toolcalls import parameters_problem, same_call

RULES = {  # rule name -> what it checks, in report order
    "non_empty": "the file holds at least one episode",
    "utf8": "every line is UTF-8 text",
    "json": "every line is valid JSON",
    "line_size": "every line fits components.inputs.MAX_LINE_BYTES",
    "json_depth": "no line nests arrays/objects deeper than components.inputs.MAX_DEPTH",
    "number_size": "every integer converts to text (at most 4300 digits)",
    "json_number": "no NaN, Infinity or number too large for a float (not JSON)",
    "duplicate_key": "no key appears twice in one object (which value counts is ambiguous)",
    "unicode": "no lone surrogate escape (\\ud800): every string is Unicode text",
    "record_schema": "every record satisfies the Episode model (fields, types, roles)",
    "arguments_json": "every call's `arguments` is a JSON object, not a (JSON-encoded or broken) string",
    "unique_id": "episode ids are unique",
    "role_order": "user speaks first (after any system message); an assistant message ends the episode",
    "tool_result": "every tool message answers a call of the assistant turn before it (by tool_call_id and "
                   "name when given); every call gets exactly one result before the conversation moves on",
    "tool_schema": "every tool's parameters are a usable JSON Schema: an object, nested at most 64 levels, "
                   "local $refs that resolve, patterns RE2 compiles (rules schema_depth, schema_ref, schema_pattern)",
    "known_tool": "every called and every expected tool is in the episode's own `tools` catalog",
    "arguments_match_schema": "every call's arguments match the tool's JSON schema (types, required, "
                              "no unknown parameter, enums)",
    "dependency_order": "expected.depends_on links existing steps (later > earlier) and the conversation makes "
                        "a step's calls in a later turn than the calls of the steps it depends on",
    "pattern_share": "every pattern reaches validate.min_pattern_share; every pattern of ingest.shares is present",
    "tool_share": "every catalog tool is used in at least validate.min_tool_share of the calls",
    "max_tokens": "every episode, rendered with the base tokenizer's chat template, fits validate.max_tokens",
    "split_unique_id": "(splits) an episode id appears in one split only",
    "split_leakage": "(splits) no user text (lowercased, punctuation stripped, whitespace collapsed) appears in two "
                     "splits, except for the patterns in validate.leakage_exempt_patterns",
}
RECORD_RULES = ("non_empty", "utf8", "json", "line_size", "json_depth", "number_size", "json_number", "duplicate_key",
                "unicode", "record_schema", "arguments_json")
RULE_FRAME = {"unique_id": "episodes", "role_order": "episodes", "tool_result": "episodes",
              "dependency_order": "episodes", "tool_schema": "episodes", "max_tokens": "episodes",
              "known_tool": "calls", "arguments_match_schema": "calls",
              "pattern_share": "patterns", "tool_share": "tools",
              "split_unique_id": "splits", "split_leakage": "splits"}
SPLITS = ("train", "val", "test")
SHOWN = 3  # failing records quoted per rule
_ARGUMENTS_LOC = re.compile(r"^[\w.]*\barguments: ")  # a record_schema error located at a call's `arguments`


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


def failure_of(rule: str, items: list[tuple[str, str]]) -> RuleFailure:
    """A `RuleFailure` from all (record, detail) pairs that break `rule`."""
    return RuleFailure(rule, len(items), tuple(r for r, _ in items[:SHOWN]), tuple(d for _, d in items[:SHOWN]))


def in_report_order(rules: dict[str, Any]) -> list[str]:
    """The rule names of `rules` in the order of `RULES`."""
    return sorted(rules, key=list(RULES).index)


# ------------------------------------------------------------------------------------------ records


def read_records(path: Path, allow_empty: bool = False) -> list[tuple[int, Episode]]:
    """Parse every line of an episodes file, collecting all record-rule failures.

    Episodes with equal catalogs share one `tools` list (`SharedCatalogs`), so 100k episodes hold one copy of
    the catalog and per-catalog work (schema index, template rendering of the tools) can be keyed on
    `id(ep.tools)`.

    Args:
        path: The episodes file.
        allow_empty: Accept a file without episodes (a split may be empty); the raw file may not be.

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
    with gc_paused():  # every episode stays alive: no collection need walk them as they are built
        for lineno, item in iter_records(path):
            if isinstance(item, DataError):
                rule, record, detail = _parse_failure(item, f"{path}:{lineno}")
                broken.setdefault(rule, []).append((record, detail))
            else:
                records.append((lineno, item))
    if not records and not broken and not allow_empty:
        broken["non_empty"] = [(str(path), "the file holds no episode")]
    if broken:
        raise ValidationFailed(path, [failure_of(r, broken[r]) for r in in_report_order(broken)])
    return records


def iter_records(path: Path) -> Iterator[tuple[int, Episode | DataError]]:
    """(line number, its episode, or the `DataError` naming the record rule it breaks) for every non-blank line,
    one at a time; equal catalogs share one `tools` list (see `read_records`). The garbage collector keeps
    running: a caller that streams the episodes drops them (and whatever cycles its own work makes) as it goes."""
    catalogs = SharedCatalogs()
    for lineno, value in iter_json_lines(path):
        if isinstance(value, DataError):
            yield lineno, value
            continue
        where = f"{path}:{lineno}"
        try:
            obj = record_object(value, where)
            raw_tools = obj.get("tools")
            known = catalogs.known(raw_tools)
            if known is not None:
                obj["tools"] = known  # validated before: pydantic keeps model instances as they are
            episode = episode_of(obj, where)
        except DataError as err:
            yield lineno, err
            continue
        episode.tools = known if known is not None else catalogs.share(raw_tools, episode.tools)
        yield lineno, episode


def _parse_failure(err: DataError, where: str) -> tuple[str, str, str]:
    """(rule, record, detail) of a reader or `episode_of` error (its fields; `where` when it has none)."""
    if not err.rule:
        return "record_schema", where, str(err)
    rule, detail = err.rule, err.detail
    if rule == "record_schema" and _ARGUMENTS_LOC.match(detail):
        rule = "arguments_json"
        detail = f"{detail} (arguments must be a JSON object, never a JSON-encoded string)"
    return rule, err.where, detail


class SharedCatalogs:
    """The catalogs (`tools` lists) of the episodes read so far, each validated once and shared.

    A catalog equal to an earlier one (same tool names, then full equality of the validated tools) is replaced
    by that one. Before validating a record, `known` finds the shared catalog of an earlier record whose raw
    `tools` JSON was equal: that catalog validated, so it is reused instead of validating and comparing 100k
    copies of the same catalog (a third of the time of reading them).
    """

    def __init__(self) -> None:
        self._validated: dict[tuple[str, ...], list[list[Tool]]] = {}  # tool names -> shared catalogs
        self._raw: dict[tuple[Any, ...], list[tuple[list[Any], list[Tool]]]] = {}  # names -> (raw JSON, catalog)

    def known(self, raw_tools: Any) -> list[Tool] | None:
        """The shared catalog of an earlier record whose raw `tools` equal `raw_tools`, else None."""
        return next((tools for raw, tools in self._raw.get(_raw_names(raw_tools), ()) if raw == raw_tools), None)

    def share(self, raw_tools: Any, tools: list[Tool]) -> list[Tool]:
        """The first shared catalog equal to the validated `tools` (else `tools` itself, now shared)."""
        candidates = self._validated.setdefault(tuple(t.function.name for t in tools), [])
        shared = next((known for known in candidates if known == tools), None)
        if shared is None:
            candidates.append(shared := tools)
        key = _raw_names(raw_tools)
        if key is not None:
            self._raw.setdefault(key, []).append((raw_tools, shared))
        return shared


def _raw_names(raw_tools: Any) -> tuple[Any, ...] | None:
    """The tool names of a well-formed raw `tools` list (hashable), else None."""
    try:
        names = tuple(tool["function"]["name"] for tool in raw_tools)
        hash(names)
    except (TypeError, KeyError):
        return None
    return names


# ----------------------------------------------------------------------------------- episode rules


def role_problem(episode: Episode) -> str | None:
    """What breaks the speaker order of an episode (user first, assistant last), or None."""
    msgs = episode.messages
    first = next((m for m in msgs if m.role != "system"), None)
    if first is None or first.role != "user":
        return f"the first non-system message is {first.role if first else 'missing'}, not user"
    if msgs[-1].role != "assistant":
        return f"the last message is {msgs[-1].role}, not assistant"
    return None


def tool_result_problem(episode: Episode) -> str | None:
    """What breaks the call/result pairing of an episode, or None when every call before the final turn gets
    exactly one result."""
    calls: list = []  # calls of the latest assistant turn
    open_calls: list = []  # those of them not answered yet
    for i, msg in enumerate(episode.messages):
        if msg.role == "tool":
            problem = _answer(i, msg, calls, open_calls)
            if problem:
                return problem
            continue
        if open_calls:
            return f"message {i}: {_names(open_calls)} got no tool result before this {msg.role} message"
        calls = list(msg.tool_calls or []) if msg.role == "assistant" else []
        open_calls = list(calls)
    return None  # calls of the final turn may stay unanswered: call-only targets (BFCL, xLAM) end there


def _answer(i: int, msg: Any, calls: list, open_calls: list) -> str | None:
    """Match tool message `i` to an open call (by id, else by name, else in order); remove it from `open_calls`."""
    if not calls:
        return f"message {i}: tool message without a preceding assistant tool call"
    if msg.tool_call_id is not None:
        call = next((c for c in open_calls if c.id == msg.tool_call_id), None)
        if call is None:
            again = any(c.id == msg.tool_call_id for c in calls)
            return (f"message {i}: tool_call_id {msg.tool_call_id!r} "
                    + ("is answered twice" if again else "answers no call of the preceding assistant turn"))
    else:
        call = next((c for c in open_calls if msg.name in (None, c.function.name)), None)
        if call is None:
            return f"message {i}: tool result {msg.name or ''} answers no open call of the preceding assistant turn"
    if msg.name is not None and msg.name != call.function.name:
        return f"message {i}: tool result named {msg.name!r} answers a call to {call.function.name!r}"
    open_calls.remove(call)
    return None


def _names(calls: list) -> str:
    return "call(s) " + ", ".join(repr(c.id or c.function.name) for c in calls)


def dependency_problem(episode: Episode) -> str | None:
    """What breaks `expected.depends_on` (bad step indexes, or a step called before one it depends on)."""
    steps, edges = episode.expected.steps, episode.expected.depends_on
    for later, earlier in edges:
        if not 0 <= earlier < later < len(steps):
            return f"depends_on ({later}, {earlier}) needs 0 <= earlier < later < {len(steps)} (the number of steps)"
    if not edges:
        return None
    turns = [[{"name": tc.function.name, "arguments": tc.function.arguments} for tc in m.tool_calls]
             for m in episode.messages if m.role == "assistant" and m.tool_calls]
    turn_of = [next((t for t, made in enumerate(turns) if any(same_call(c, s.model_dump()) for c in made
                                                               for s in step)), None) for step in steps]
    for later, earlier in edges:
        if None not in (turn_of[later], turn_of[earlier]) and turn_of[later] <= turn_of[earlier]:
            return (f"step {later} depends on step {earlier}, but the conversation makes its call in turn "
                    f"{turn_of[later]}, not after turn {turn_of[earlier]}")
    return None


_SCHEMA_VERDICTS: dict[int, tuple[list[Tool], str | None]] = {}  # id(catalog) -> (that catalog, its verdict)


def tool_schema_problem(episode: Episode) -> str | None:
    """What makes a tool's parameters unusable (`toolcalls.parameters_problem`, its rule named), or None.

    Catalogs are shared (`SharedCatalogs`), so the verdict is kept per catalog list; the entry holds the list
    itself, so its id cannot be reused by another list while the entry lives.
    """
    cached = _SCHEMA_VERDICTS.get(id(episode.tools))
    if cached is not None and cached[0] is episode.tools:
        return cached[1]
    verdict = next((f"{p[0]}: tool {t.function.name!r}: {p[1]}" for t in episode.tools
                    if (p := parameters_problem(t.function.parameters))), None)
    if len(_SCHEMA_VERDICTS) >= 4096:
        _SCHEMA_VERDICTS.clear()
    _SCHEMA_VERDICTS[id(episode.tools)] = (episode.tools, verdict)
    return verdict


EPISODE_RULES: dict[str, Callable[[Episode], str | None]] = {
    "role_order": role_problem, "tool_result": tool_result_problem, "dependency_order": dependency_problem,
    "tool_schema": tool_schema_problem}


def episode_problems(episode: Episode) -> dict[str, str]:
    """Rule -> what breaks it, for every per-episode rule the episode breaks (empty when it is sound)."""
    return {rule: problem for rule, check in EPISODE_RULES.items() if (problem := check(episode))}


def user_text_key(episode: Episode) -> str:
    """Hash of the episode's user turns, lowercased, punctuation stripped and whitespace collapsed."""
    return hashlib.blake2b(user_text(episode).encode(), digest_size=8).hexdigest()

