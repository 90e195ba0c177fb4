"""Reading input files: the one JSON-lines reader, strict JSON with limits, JSON-array files, paths under the workdir.

Every JSONL input (episodes files, splits, imported datasets) is read here, one line at a time (memory bounded by
the longest line, not the file): lines end at b"\\n" only (U+2028, U+2029 and U+0085 inside strings are text); a
UTF-8 byte order mark at the start of a file is skipped (Windows tools write one); blank lines are skipped.
Each line must be UTF-8 JSON, parsed strictly, and a broken line is a `DataError` naming `file:line` and the rule:

- `utf8`: not UTF-8 text; `json`: not JSON; `line_size`: a line over `MAX_LINE_BYTES`;
- `json_depth`: arrays/objects nested deeper than `MAX_DEPTH` (every later step walks them recursively);
- `number_size`: an integer of more digits than Python converts (4300); `json_number`: NaN, Infinity or a number
  too large for a float (not JSON; it would be written back as null);
- `duplicate_key`: a key twice in one object (which value was meant is ambiguous);
- `unicode`: a lone UTF-16 surrogate escape (`"\\ud800"`): no UTF-8 text holds it, so writing it would fail.

A JSON-array file (some datasets ship one) is parsed whole, so it is bounded by `MAX_ARRAY_BYTES` (rule
`array_size`): convert a bigger one to JSON lines (`jq -c '.[]' in.json > in.jsonl`).
Reads: whatever file it is given. Writes: nothing.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

MAX_DEPTH = 100  # nesting levels of arrays and objects; real records (schemas included) stay under 30
MAX_LINE_BYTES = 64 << 20  # one record; a longer line is refused without being held whole
MAX_ARRAY_BYTES = 256 << 20  # a JSON-array file is parsed whole: past this, JSON lines (streamed) are required
BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a surrogate can only come from an escape: check those lines


class DataError(ValueError):
    """Bad input data: `where` (file, file:line or file record N, with the record id when known), the `rule`
    broken and the `detail`; `str(err)` is "<where>: rule '<rule>': <detail>".

    `DataError(message)` (a message only) stays valid for errors without a rule.
    """

    def __init__(self, message: str = "", *, where: str = "", rule: str = "", detail: str = "") -> None:
        if not message:
            message = f"{where}: rule '{rule}': {detail}" if rule else f"{where}: {detail}"
        super().__init__(message)
        self.where, self.rule, self.detail = where, rule, detail


class JsonError(ValueError):
    """JSON text refused by `loads`: the rule it breaks and what is wrong (the caller knows where it is)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule, self.detail = rule, detail


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise JsonError("duplicate_key", f"key {key!r} appears twice in one object")
    return obj


def _constant(name: str) -> float:
    raise JsonError("json_number", f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonError("json_number", f"{text[:40]} is too large for a float")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)


def loads(text: str) -> Any:
    """Strict `json.loads` (see the module docstring for the rules).

    Raises:
        JsonError: The text breaks one of the rules.
    """
    return raw_decode(text, 0, whole=True)[0]


def raw_decode(text: str, pos: int, whole: bool = False) -> tuple[Any, int]:
    """The strict JSON value starting at `pos` and where it ends (`json.JSONDecoder.raw_decode`); `whole`: the
    value must fill the text (surrounding whitespace aside).

    Raises:
        JsonError: The value breaks one of the rules (see the module docstring).
    """
    try:
        if whole:
            value = _DECODER.decode(text)
            end = len(text)
        else:
            value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as err:
        raise JsonError("json", f"invalid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise JsonError("json_depth", f"arrays/objects nested deeper than {MAX_DEPTH} levels") from None
    except JsonError:
        raise
    except ValueError:  # the only other one: an integer past the interpreter's int/str conversion limit
        raise JsonError("number_size", f"an integer has more than {sys.get_int_max_str_digits()} digits") from None
    part = text[pos:end]
    if part.count("[") + part.count("{") > MAX_DEPTH:  # only then can it nest too deep
        if too_deep(value, MAX_DEPTH):
            raise JsonError("json_depth", f"arrays/objects nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(part):  # a lone surrogate can only come from an escape
        _check_strings(value)
    return value, end


def too_deep(value: Any, limit: int) -> bool:
    """Whether a JSON value nests arrays/objects more than `limit` levels (walked level by level, containers only,
    without recursion: deep input cannot overflow the stack)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for item in level
                 for child in (item.values() if type(item) is dict else item if type(item) is list else ())
                 if type(child) is dict or type(child) is list]
    return False


def _check_strings(value: Any) -> None:
    """No string (key or value) holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as err:
                raise JsonError("unicode", f"a lone surrogate escape (\\u{ord(item[err.start]):04x}) is no "
                                           "Unicode text") from None


def parse(raw: bytes, where: str) -> Any:
    """The JSON value of one line (bytes).

    Raises:
        DataError: naming `where` and the rule: `utf8` or any rule of `loads`.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(where=where, rule="utf8", detail=f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        return loads(text)
    except JsonError as err:
        raise DataError(where=where, rule=err.rule, detail=err.detail) from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes | DataError]]:
    """(line number, bytes) of every non-blank line of a file, or the `line_size` error of an over-long line.

    Raises:
        DataError: The file does not exist (rule `file`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(where=str(path), rule="file", detail="file not found")
    with path.open("rb") as handle:
        lineno = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the line without holding it
                yield lineno, DataError(where=f"{path}:{lineno}", rule="line_size",
                                        detail=f"a line longer than {MAX_LINE_BYTES} bytes")
            elif raw.strip():
                yield lineno, raw


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, Any | DataError]]:
    """(line number, its JSON value or the `DataError` it raises) for every non-blank line, one at a time: the
    caller decides whether a bad line stops the read (the default everywhere) or is reported and skipped.

    Raises:
        DataError: The file does not exist.
    """
    for lineno, raw in iter_lines(path):
        if isinstance(raw, DataError):
            yield lineno, raw
            continue
        try:
            yield lineno, parse(raw, f"{path}:{lineno}")
        except DataError as err:
            yield lineno, err


def starts_with_array(path: str | Path) -> bool:
    """Whether the file's first non-blank byte (after a BOM) opens a JSON array."""
    with Path(path).open("rb") as handle:
        chunk = handle.read(1 << 16).removeprefix(BOM)
        while chunk and not chunk.strip():
            chunk = handle.read(1 << 16)
    return chunk.lstrip()[:1] == b"["


def read_array(path: str | Path) -> list[Any]:
    """The items of a file holding one JSON array.

    Raises:
        DataError: The file is over `MAX_ARRAY_BYTES` (`array_size`), or breaks a rule of `parse`.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_ARRAY_BYTES:
        raise DataError(where=str(path), rule="array_size",
                        detail=f"a JSON-array file of {size} bytes is over {MAX_ARRAY_BYTES} (it is parsed whole); "
                               "convert it to JSON lines, which are streamed: jq -c '.[]' in.json > in.jsonl")
    value = parse(path.read_bytes().removeprefix(BOM), str(path))
    if not isinstance(value, list):
        raise DataError(where=str(path), rule="json", detail="a file starting with '[' must hold one JSON array")
    return value


def workdir_path(workdir: str | Path, given: str, what: str) -> Path:
    """`given` (from the params) resolved under `workdir`; an absolute path is the user's own choice and kept.

    Raises:
        DataError: A relative path (through `..` or a symlink) leads outside the workdir (`path_outside_workdir`).
    """
    if Path(given).is_absolute():
        return Path(given)
    path = Path(workdir) / given
    root = Path(workdir).resolve()
    if not path.resolve().is_relative_to(root):
        raise DataError(where=str(path), rule="path_outside_workdir",
                        detail=f"{what} {given!r} leads outside project.workdir ({root}); give an absolute path "
                               "to read a file elsewhere")
    return path


def schema_error(err: ValidationError, where: str) -> DataError:
    """The `record_schema` DataError of a pydantic error (its first one, located by field path); `detail` is
    "<field path>: <message>"."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    return DataError(where=where, rule="record_schema", detail=f"{loc}: {first['msg']}")
