"""The frames the validate stage's Great Expectations suites check.

Reads: parsed records (`validation.records.read_records`) and, for build's cross-split check, the split files.
Writes: nothing. One row per episode (`episode_frame`: id and each per-episode rule's verdict; the validate stage
adds the token length), per call made or expected (`call_frame`: the scorer's unknown-tool and argument verdicts),
per pattern and per catalog tool (`share_frames`), and per episode of every split (`split_frame`: id and user-text
key). A verdict column holds the error text, None when the row is sound; each rule's `detail`
(`validation.rules.RULES`) turns a failing row into the report's words.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from components.data.episode import Episode
from components.toolcalls import schema_errors, tool_index
from components.validation.checks import tool_schema_problem, user_text_key
from components.validation.records import read_records
from components.validation.rules import EPISODE_RULES, SPLITS

def _where(path: Path, line: int, episode: Episode) -> str:
    return f"{path}:{line} (id {episode.id})"


def episode_frame(path: Path, records: list[tuple[int, Episode]]) -> pd.DataFrame:
    """One row per episode: id and `<rule>_error` per episode rule (None when sound). The validate stage adds
    the rendered length, `n_tokens`, when there is a tokenizer."""
    columns = [f"{rule}_error" for rule in EPISODE_RULES]
    rows = [(_where(path, line, ep), ep.id, *(check(ep) for check in EPISODE_RULES.values())) for line, ep in records]
    return pd.DataFrame(rows, columns=["record", "id", *columns])


def call_frame(path: Path, records: list[tuple[int, Episode]]) -> pd.DataFrame:
    """One row per call, made (`messages`) or expected (`expected`), with the scorer's verdicts.

    Verdicts are memoised per (catalog, call): an expected call usually repeats the call made, and
    generated data repeats argument sets, so the JSON-schema checks run once per distinct call.
    """
    rows = []
    indexes: dict[int, dict[str, dict[str, Any]]] = {}  # id(catalog) -> tool_index (catalogs are shared)
    verdicts: dict[tuple, tuple[str | None, str | None]] = {}
    for line, ep in records:
        if tool_schema_problem(ep):
            continue  # the `tool_schema` rule reports it; its calls cannot be checked against that schema
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
    """A memo key for a call with scalar arguments (types included: 1, 1.0 and True differ), else None.

    The arguments keep their order: the scorer reports errors in that order, and a verdict names the first.
    """
    key = catalog, name, tuple((k, type(v), v) for k, v in arguments.items())
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


def domain_frame(records: list[tuple[int, Episode]], warn_share: float) -> pd.DataFrame:
    """One row per domain: its episodes, those answered without a call (no expected step), their share, and how
    many `warn_share` needs."""
    counts, no_call = Counter(ep.domain for _, ep in records), Counter(ep.domain for _, ep in records
                                                                       if not ep.expected.steps)
    rows = [{"record": f"domain {d!r}", "domain": d, "count": n, "no_call": no_call[d], "share": no_call[d] / n,
             "needed": math.ceil(warn_share * n - 1e-9)} for d, n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["record", "domain", "count", "no_call", "share", "needed"])


def split_frame(split_dir: Path, exempt: list[str], shown_as: Path) -> pd.DataFrame:
    """One row per episode of every split file: id, user-text key and the other splits that hold that key in an
    episode of a pattern not in `exempt` (exempt episodes are neither flagged nor counted against others)."""
    rows = []
    for name in SPLITS:
        shown = shown_as / f"{name}.jsonl"
        rows += [(_where(shown, line, ep), name, ep.id, ep.pattern, user_text_key(ep))
                 for line, ep in read_records(split_dir / f"{name}.jsonl", allow_empty=True)]
    held: dict[str, set[str]] = {}
    for _, name, _, pattern, key in rows:
        if pattern not in exempt:  # an exempt text (a removed-tool twin of a single request) leaks nothing
            held.setdefault(key, set()).add(name)
    frame = pd.DataFrame(rows, columns=["record", "split", "id", "pattern", "key"])
    frame["leak_error"] = [None if pattern in exempt else (", ".join(sorted(held[key] - {name})) or None)
                           for _, name, _, pattern, key in rows]
    return frame

