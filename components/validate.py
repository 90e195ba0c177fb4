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
`ValidationFailed`, which lists every broken rule with its count and first failing records. The build
stage calls `validate_splits` on the folder it is about to publish (ids and user texts unique across
splits).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from components.config import Params, Validate
from components.episode import DataError, Episode, Tool, atomic_dir, atomic_file, gc_paused, parse_line
from components.result import StageResult
from components.toolcalls import same_call, schema_errors, tool_index

RULES = {  # rule name -> what it checks, in report order
    "non_empty": "the file holds at least one episode",
    "utf8": "every line is UTF-8 text",
    "json": "every line is valid JSON",
    "record_schema": "every record satisfies the Episode model (fields, types, roles)",
    "arguments_json": "every call's `arguments` is a JSON object, not a (JSON-encoded or broken) string",
    "unique_id": "episode ids are unique",
    "role_order": "user speaks first (after any system message); an assistant message ends the episode",
    "tool_result": "every tool message answers a call of the assistant turn before it (by tool_call_id and "
                   "name when given); every call gets exactly one result before the conversation moves on",
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
RECORD_RULES = ("non_empty", "utf8", "json", "record_schema", "arguments_json")
RULE_FRAME = {"unique_id": "episodes", "role_order": "episodes", "tool_result": "episodes",
              "dependency_order": "episodes", "max_tokens": "episodes",
              "known_tool": "calls", "arguments_match_schema": "calls",
              "pattern_share": "patterns", "tool_share": "tools",
              "split_unique_id": "splits", "split_leakage": "splits"}
SPLITS = ("train", "val", "test")
SHOWN = 3  # failing records quoted per rule
TOKEN_BATCH = 512  # episodes rendered and tokenized per call of the tokenizer
CUT_CHECKS = 16  # episodes of each batch also encoded whole, to check the shared-prefix cut
_PARSE_ERROR = re.compile(r"^(?P<record>.*?): rule '(?P<rule>\w+)': (?P<detail>.*)$", re.DOTALL)
_ARGUMENTS_LOC = re.compile(r"^[\w.]*\barguments: ")  # a record_schema error located at a call's `arguments`
_PUNCTUATION = re.compile(r"[^\w\s]")


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


def _ordered(rules: dict[str, Any]) -> list[str]:
    return sorted(rules, key=list(RULES).index)


# ------------------------------------------------------------------------------------------ records


def read_records(path: Path, allow_empty: bool = False) -> list[tuple[int, Episode]]:
    """Parse every line of an episodes file, collecting all record-rule failures.

    Episodes with equal catalogs share one `tools` list, so 100k episodes hold one copy of the catalog
    and per-catalog work (schema index, template rendering of the tools) can be keyed on `id(ep.tools)`.

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
    catalogs: dict[tuple[str, ...], list[list[Tool]]] = {}
    with path.open("rb") as handle, gc_paused():
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                episode = parse_line(raw, path, lineno)
            except DataError as err:
                rule, record, detail = _parse_failure(err, f"{path}:{lineno}")
                broken.setdefault(rule, []).append((record, detail))
                continue
            episode.tools = _shared_catalog(episode.tools, catalogs)
            records.append((lineno, episode))
    if not records and not broken and not allow_empty:
        broken["non_empty"] = [(str(path), "the file holds no episode")]
    if broken:
        raise ValidationFailed(path, [_failure(r, broken[r]) for r in _ordered(broken)])
    return records


def _parse_failure(err: DataError, where: str) -> tuple[str, str, str]:
    """(rule, record, detail) of a `parse_line` error, "<file:line>: rule '<rule>': <detail>"."""
    match = _PARSE_ERROR.match(str(err))
    if not match:
        return "record_schema", where, str(err)
    rule, detail = match["rule"], match["detail"]
    if rule == "record_schema" and _ARGUMENTS_LOC.match(detail):
        rule = "arguments_json"
        detail = f"{detail} (arguments must be a JSON object, never a JSON-encoded string)"
    return rule, match["record"], detail


def _shared_catalog(tools: list[Tool], seen: dict[tuple[str, ...], list[list[Tool]]]) -> list[Tool]:
    """The first equal catalog seen before (same tool names, then full equality), else `tools` itself."""
    candidates = seen.setdefault(tuple(t.function.name for t in tools), [])
    for known in candidates:
        if known == tools:
            return known
    candidates.append(tools)
    return tools


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


EPISODE_RULES: dict[str, Callable[[Episode], str | None]] = {
    "role_order": role_problem, "tool_result": tool_result_problem, "dependency_order": dependency_problem}


def episode_problems(episode: Episode) -> dict[str, str]:
    """Rule -> what breaks it, for every per-episode rule the episode breaks (empty when it is sound)."""
    return {rule: problem for rule, check in EPISODE_RULES.items() if (problem := check(episode))}


def user_text_key(episode: Episode) -> str:
    """Hash of the episode's user turns, lowercased, punctuation stripped and whitespace collapsed."""
    text = " ".join(m.content or "" for m in episode.messages if m.role == "user")
    normal = " ".join(_PUNCTUATION.sub("", text.lower()).split())
    return hashlib.blake2b(normal.encode(), digest_size=8).hexdigest()


# ------------------------------------------------------------------------------------------- frames


def _where(path: Path, line: int, episode: Episode) -> str:
    return f"{path}:{line} (id {episode.id})"


def episode_frame(path: Path, records: list[tuple[int, Episode]], tokenizer: Any | None) -> pd.DataFrame:
    """One row per episode: id, `<rule>_error` per episode rule (None when sound) and, with a tokenizer,
    the rendered length."""
    columns = [f"{rule}_error" for rule in EPISODE_RULES]
    rows = [(_where(path, line, ep), ep.id, *(check(ep) for check in EPISODE_RULES.values())) for line, ep in records]
    frame = pd.DataFrame(rows, columns=["record", "id", *columns])
    if tokenizer is not None:
        frame["n_tokens"] = token_counts(tokenizer, [ep for _, ep in records])
    return frame


def call_frame(path: Path, records: list[tuple[int, Episode]]) -> pd.DataFrame:
    """One row per call, made (`messages`) or expected (`expected`), with the scorer's verdicts.

    Verdicts are memoised per (catalog, call): an expected call usually repeats the call made, and
    generated data repeats argument sets, so the JSON-schema checks run once per distinct call.
    """
    rows = []
    indexes: dict[int, dict[str, dict[str, Any]]] = {}  # id(catalog) -> tool_index (catalogs are shared)
    verdicts: dict[tuple, tuple[str | None, str | None]] = {}
    for line, ep in records:
        index = indexes.get(id(ep.tools))
        if index is None:
            index = indexes[id(ep.tools)] = tool_index(ep.tool_dicts())
        record = _where(path, line, ep)
        for where, steps in (("messages", _message_steps(ep)), ("expected", ep.expected.steps)):
            for k, step in enumerate(steps):
                for call in step:
                    key = _call_key(id(ep.tools), call.name, call.arguments)
                    verdict = verdicts.get(key) if key else None
                    if verdict is None:
                        verdict = _call_verdict(call.name, call.arguments, index)
                        if key:
                            verdicts[key] = verdict
                    rows.append((record, where, k, call.name, *verdict))
    return pd.DataFrame(rows, columns=["record", "where", "step", "tool_name", "tool_error", "args_error"])


def _call_verdict(name: str, arguments: dict[str, Any],
                  index: dict[str, dict[str, Any]]) -> tuple[str | None, str | None]:
    """(unknown-tool error, first argument error) of one call, each None when there is none."""
    errors = schema_errors({"name": name, "arguments": arguments}, index)
    tool = next((d for kind, d in errors if kind == "hallucinated_tool"), None)
    args = next((f"{kind}: {d}" for kind, d in errors if kind != "hallucinated_tool"), None)
    return tool, args


def _call_key(catalog: int, name: str, arguments: dict[str, Any]) -> tuple | None:
    """A memo key for a call with scalar arguments (types included: 1, 1.0 and True differ), else None."""
    key = catalog, name, tuple(sorted((k, type(v), v) for k, v in arguments.items()))
    try:
        hash(key)
    except TypeError:  # an unhashable value (list, dict): checked every time
        return None
    return key


def _message_steps(episode: Episode) -> list[list[Any]]:
    """The calls (`FunctionCall`s) of each assistant turn that calls tools."""
    return [[tc.function for tc in m.tool_calls] for m in episode.messages if m.role == "assistant" and m.tool_calls]


def share_frames(records: list[tuple[int, Episode]], calls: pd.DataFrame,
                 shares: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pattern shares (present or configured patterns) and tool shares (over the calls made)."""
    patterns = Counter(ep.pattern for _, ep in records)
    names = sorted(set(patterns) | {p for p, s in shares.items() if s > 0})
    pattern_rows = [{"record": f"pattern {p!r}", "count": patterns[p], "share": patterns[p] / len(records),
                     "configured": shares.get(p, 0.0)} for p in names]
    made = calls.loc[calls["where"] == "messages", "tool_name"]
    used, total = Counter(made), len(made)
    catalogs = {id(ep.tools): ep.tools for _, ep in records}
    catalog = sorted({t.function.name for tools in catalogs.values() for t in tools})
    tool_rows = [{"record": f"tool {t!r}", "count": used[t], "share": used[t] / total if total else 0.0,
                  "total": total} for t in catalog]
    return (pd.DataFrame(pattern_rows, columns=["record", "count", "share", "configured"]),
            pd.DataFrame(tool_rows, columns=["record", "count", "share", "total"]))


def split_frame(split_dir: Path, exempt: list[str], shown_as: Path) -> pd.DataFrame:
    """One row per episode of every split file: id, user-text key and the other splits that hold that key."""
    rows = []
    for name in SPLITS:
        shown = shown_as / f"{name}.jsonl"
        rows += [(_where(shown, line, ep), name, ep.id, ep.pattern, user_text_key(ep))
                 for line, ep in read_records(split_dir / f"{name}.jsonl", allow_empty=True)]
    held: dict[str, set[str]] = {}
    for _, name, _, _, key in rows:
        held.setdefault(key, set()).add(name)
    frame = pd.DataFrame(rows, columns=["record", "split", "id", "pattern", "key"])
    frame["leak_error"] = [None if pattern in exempt else (", ".join(sorted(held[key] - {name})) or None)
                           for _, name, _, pattern, key in rows]
    return frame


def load_tokenizer(folder: Path) -> Any | None:
    """The base model's tokenizer saved in `folder`, or None when the folder does not exist."""
    if not folder.is_dir():
        return None
    from transformers import AutoTokenizer  # heavy import, only when there is a tokenizer to load

    return AutoTokenizer.from_pretrained(str(folder))


def count_tokens(tokenizer: Any, episode: Episode) -> int:
    """Length of the episode rendered with the tokenizer's chat template, tools included."""
    return token_counts(tokenizer, [episode])[0]


def token_counts(tokenizer: Any, episodes: list[Episode]) -> list[int]:
    """Rendered length of each episode, tools included: what `len(apply_chat_template(episode))` gives.

    Episodes that share a catalog are rendered in batches (the tool dicts built once per catalog) and
    encoded in one call per batch. The rendered text shared by a batch (the system turn listing the tools,
    about half of a short episode) is encoded once: `_shared_prefix` cuts it right before a special token,
    where the tokenizer splits its input anyway, and the cut is checked on the first episodes.
    """
    counts = [0] * len(episodes)
    groups: dict[int, list[int]] = {}
    for i, ep in enumerate(episodes):
        groups.setdefault(id(ep.tools), []).append(i)
    for members in groups.values():
        tools = episodes[members[0]].tool_dicts()
        for batch in _chunks(members, TOKEN_BATCH):
            texts = tokenizer.apply_chat_template([episodes[i].message_dicts() for i in batch], tools=tools,
                                                  tokenize=False)
            for i, n in zip(batch, _lengths(tokenizer, texts)):
                counts[i] = n
    return counts


def _lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts of rendered texts (`add_special_tokens=False`, as `apply_chat_template` encodes them)."""
    cut = _shared_prefix(tokenizer, texts)
    whole = _encode_lengths(tokenizer, texts[:CUT_CHECKS])
    if cut:
        shared = _encode_lengths(tokenizer, [texts[0][:cut]])[0]
        lengths = [shared + n for n in _encode_lengths(tokenizer, [t[cut:] for t in texts])]
        if lengths[:CUT_CHECKS] == whole:
            return lengths
    return whole + _encode_lengths(tokenizer, texts[CUT_CHECKS:])


def _shared_prefix(tokenizer: Any, texts: list[str]) -> int:
    """Length of the text all `texts` start with, cut right before a special token (0: no such cut).

    The tokenizer splits its input at added tokens before anything else, so the parts before and after
    such a token are encoded independently; only tokens that do not strip or normalise their left side qualify.
    """
    if len(texts) <= CUT_CHECKS:
        return 0
    common = os.path.commonprefix(texts)
    special = [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values()
               if t.special and not t.lstrip and not t.normalized]
    return max([common.rfind(token) for token in special] + [0])


def _encode_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts; a fast tokenizer skips the offsets (`encode_batch_fast`: the same ids)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ----------------------------------------------------------------------------------- expectations

_DETAIL: dict[str, Callable[[pd.Series, Validate], str]] = {
    "unique_id": lambda row, v: f"id {row['id']!r} is used by more than one record",
    **{rule: (lambda row, v, column=f"{rule}_error": str(row[column])) for rule in EPISODE_RULES},
    "max_tokens": lambda row, v: f"{row['n_tokens']} tokens > validate.max_tokens={v.max_tokens}",
    "known_tool": lambda row, v: f"{row['tool_error']} ({row['where']} step {row['step']})",
    "arguments_match_schema": lambda row, v: f"{row['args_error']} ({row['where']} step {row['step']})",
    "pattern_share": lambda row, v: (
        f"share {row['share']:.3f} < validate.min_pattern_share={v.min_pattern_share}" if row["count"]
        else f"absent, though ingest.shares gives it {row['configured']}"),
    "tool_share": lambda row, v: (f"used in {row['count']} of {row['total']} calls ({row['share']:.3f}) "
                                  f"< validate.min_tool_share={v.min_tool_share}"),
    "split_unique_id": lambda row, v: f"id {row['id']!r} is in more than one split",
    "split_leakage": lambda row, v: (f"{row['pattern']} episode whose user text (key {row['key']}) is also in "
                                     f"split(s) {row['leak_error']}"),
}


def expectations(v: Validate, with_tokens: bool) -> dict[str, Any]:
    """The GX expectation of each file rule; each carries its rule name in `meta`."""
    import great_expectations.expectations as gxe

    low = v.min_pattern_share  # a configured pattern must be present even when the minimum is 0
    found = {
        "unique_id": gxe.ExpectColumnValuesToBeUnique(column="id"),
        **{rule: gxe.ExpectColumnValuesToBeNull(column=f"{rule}_error") for rule in EPISODE_RULES},
        "known_tool": gxe.ExpectColumnValuesToBeNull(column="tool_error"),
        "arguments_match_schema": gxe.ExpectColumnValuesToBeNull(column="args_error"),
        "pattern_share": gxe.ExpectColumnValuesToBeBetween(column="share", min_value=low, strict_min=low == 0),
        "tool_share": gxe.ExpectColumnValuesToBeBetween(column="share", min_value=v.min_tool_share),
    }
    if with_tokens:
        found["max_tokens"] = gxe.ExpectColumnValuesToBeBetween(column="n_tokens", max_value=v.max_tokens)
    return _tagged(found)


def split_expectations() -> dict[str, Any]:
    """The GX expectations of the cross-split rules."""
    import great_expectations.expectations as gxe

    return _tagged({"split_unique_id": gxe.ExpectColumnValuesToBeUnique(column="id"),
                    "split_leakage": gxe.ExpectColumnValuesToBeNull(column="leak_error")})


def _tagged(found: dict[str, Any]) -> dict[str, Any]:
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


def run_suites(frames: dict[str, pd.DataFrame], checks: dict[str, Any],
               docs: Path | None = None) -> dict[str, list[int]]:
    """Run the expectations of each rule on its frame (`RULE_FRAME`) in an ephemeral GX context.

    Args:
        frames: Frame name -> frame.
        checks: Rule -> its GX expectation.
        docs: Folder to build the GX Data Docs site in (HTML), or None for no site.

    Returns:
        Rule -> row indexes of its frame that break it (empty when the rule passed).

    Raises:
        RuntimeError: GX caught an exception inside an expectation: a bug in tooltune, not bad data.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # no tqdm noise in CI logs
    if docs is not None:
        ctx.variables.data_docs_sites = {"local_site": {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}}
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
    if docs is not None:
        ctx.build_data_docs()
    return unexpected


def _outcomes(frames: dict[str, pd.DataFrame], unexpected: dict[str, list[int]], rules: list[str],
              v: Validate, skip_note: str = "") -> list[RuleOutcome]:
    """The outcome of each frame rule: failed (with its first records), passed, or skipped when not run."""
    outcomes = []
    for rule in rules:
        if rule not in unexpected:
            outcomes.append(RuleOutcome(rule, "skipped", note=skip_note))
            continue
        frame = frames[RULE_FRAME[rule]]
        items = [(frame.at[i, "record"], _DETAIL[rule](frame.loc[i], v)) for i in unexpected[rule]]
        outcomes.append(RuleOutcome(rule, "failed", _failure(rule, items)) if items else RuleOutcome(rule, "passed"))
    return outcomes


def _raise_failures(path: Path, outcomes: list[RuleOutcome]) -> None:
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures:
        raise ValidationFailed(path, failures)


# ------------------------------------------------------------------------------------------- stage


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
    unexpected = run_suites(frames, expectations(params.validate_, tokenizer is not None), docs)
    file_rules = [r for r in _ordered(RULE_FRAME) if RULE_FRAME[r] != "splits"]
    outcomes = [RuleOutcome(rule, "passed") for rule in RECORD_RULES]
    outcomes += _outcomes(frames, unexpected, file_rules, params.validate_, f"no tokenizer at {base}")
    _raise_failures(path, outcomes)
    metrics = {"n_episodes": float(len(records)), "n_calls": float((calls["where"] == "messages").sum()),
               "rules_checked": float(sum(o.status != "skipped" for o in outcomes)), "rules_failed": 0.0}
    return outcomes, metrics


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
    unexpected = run_suites(frames, split_expectations())
    outcomes = _outcomes(frames, unexpected, ["split_unique_id", "split_leakage"], params.validate_)
    _raise_failures(shown, outcomes)
    return outcomes


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
        lines.append(f"| {o.rule} | {o.status} | {count} | {_cell(first)} |")
    lines += ["", "## Rules", ""] + [f"- `{rule}`: {what}" for rule, what in RULES.items()]
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
