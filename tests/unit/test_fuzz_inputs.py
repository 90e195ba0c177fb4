"""Hostile variants of every importable format, made by seeded mutation, through the real CLI.

The named bad inputs of tests/fixtures/bad_inputs each check one rule. This test asks the general question
for inputs nobody wrote down: whatever a file holds, `tooltune ingest`, `tooltune stage validate` and
`tooltune score` either succeed or end with one `error:` line naming the file and exit code 2, never a
traceback, and never hang. Each case starts from a good
fixture and puts one hostile value at a random place of one record (also inside JSON-encoded strings such as
xLAM's `tools`): huge or deeply nested numbers and arrays, NaN, lone surrogates, wrong types, remote `$ref`s,
exponential regex patterns, deep BFCL type strings, or byte-level damage (truncation, NUL, BOM, U+2028).
"""

from __future__ import annotations

import faulthandler
import json
import random
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main as cli
from tests.conftest import write_params

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"
EPISODES = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs" / "good.jsonl"  # canonical episodes
FORMATS = {"openai": "openai.jsonl", "sharegpt": "sharegpt.json", "hermes": "hermes.jsonl", "xlam": "xlam.json",
           "bfcl": "bfcl_questions.jsonl"}
CASES_PER_FORMAT = 40
VALIDATE_CASES = 12  # a validate run costs seconds (Great Expectations), an import milliseconds
SECONDS_PER_CASE = 20  # a case that takes longer is a hang (an exponential regex, a quadratic walk)
USER_ERROR = 2

# Raw JSON text put in place of a placeholder string after serialisation (json.dumps cannot write these).
RAW = {
    "@@BIGINT@@": "9" * 5000,
    "@@DEEP_ARRAY@@": "[" * 6000 + "]" * 6000,
    "@@DEEP_OBJECT@@": '{"a":' * 3000 + "1" + "}" * 3000,
    "@@NAN@@": "NaN",
    "@@INF@@": "-Infinity",
    "@@SURROGATE@@": '"\\ud800"',
    "@@DUPKEY@@": '{"name": "a", "name": "b"}',
}
VALUES: list[Any] = [
    *RAW, None, True, 5, -1, 1e308, "", "x" * 100_000, [], {}, [[[]]], {"$ref": "https://example.invalid/s.json"},
    {"$ref": "#/$defs/missing"}, {"$ref": "other.json#/x"}, {"type": "string", "pattern": "(a+)+$"},
    "List[" * 5000, "Dict[" * 300 + "str", "{[1]: 2}", "[{'name': {1: 2}, 'arguments': {[]: 1}}]", "a" * 40 + "!",
    {"type": "object", "properties": 5}, {"type": ["string", 7]}, {"enum": 3}, "\u2028", "\x00", "<tool_call>",
]


def _nodes(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a parsed JSON value."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _nodes(value, (*path, i))
    return found


def _replace(node: Any, path: tuple, value: Any, rng: random.Random) -> Any:
    """`node` with the value at `path` replaced; a JSON-encoded string on the way is decoded, mutated, re-encoded."""
    if not path:
        if isinstance(node, str) and rng.random() < 0.5:
            try:
                inner = json.loads(node)
            except ValueError:
                return value
            inner_paths = _nodes(inner)
            return json.dumps(_replace(inner, rng.choice(inner_paths), value, rng))
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {k: (_replace(v, rest, value, rng) if k == head else v) for k, v in node.items()}
    return [(_replace(v, rest, value, rng) if i == head else v) for i, v in enumerate(node)]


def _serialise(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    for placeholder, raw in RAW.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text


def _mutate(text: str, is_array: bool, rng: random.Random) -> bytes:
    """One hostile variant of a fixture's text."""
    if rng.random() < 0.2:  # byte-level damage
        data = text.encode("utf-8")
        cut = rng.randrange(1, len(data))
        kind = rng.choice(["truncate", "nul", "bom", "ls", "latin1"])
        return {"truncate": data[:cut], "nul": data[:cut] + b"\x00" + data[cut:],
                "bom": b"\xef\xbb\xbf" + data, "ls": data[:cut] + "\u2028".encode() + data[cut:],
                "latin1": data[:cut] + b"\xe9" + data[cut:]}[kind]
    records = json.loads(text) if is_array else [json.loads(line) for line in text.splitlines() if line.strip()]
    i = rng.randrange(len(records))
    records[i] = _replace(records[i], rng.choice(_nodes(records[i])), rng.choice(VALUES), rng)
    body = "[\n" + ",\n".join(_serialise(r) for r in records) + "\n]\n" if is_array else \
        "".join(_serialise(r) + "\n" for r in records)
    return body.encode("utf-8", errors="surrogatepass")


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang(f"no answer within {SECONDS_PER_CASE} s")


def _cases() -> list[tuple[str, int]]:
    return [(source, seed) for source in FORMATS for seed in range(CASES_PER_FORMAT)]


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> Path:
    return write_params(tmp_path_factory.mktemp("fuzz"), "quick")


def _run_bounded(argv: list[str]) -> int:
    """`tooltune ARGV` in this process, failing the test past `SECONDS_PER_CASE`."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE)
    # the alarm cannot interrupt C code (a regex match): past twice the time, end the run with the stacks shown
    faulthandler.dump_traceback_later(2 * SECONDS_PER_CASE, exit=True, file=sys.__stderr__)
    try:
        return cli(argv)
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _assert_clean_end(code: int, err: str, *named: Path) -> None:
    """Success, or one `error:` line naming one of the `named` files, exit code 2, no traceback."""
    assert code in (0, USER_ERROR), err
    if code:
        assert "Traceback" not in err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and any(str(path) in errors[0] for path in named), err


@pytest.mark.parametrize(("source", "seed"), _cases())
def test_hostile_import_ends_cleanly(source, seed, params, tmp_path, capsys):
    rng = random.Random(f"{source}-{seed}")
    fixture = FIXTURES / FORMATS[source]
    bad = tmp_path / fixture.name
    bad.write_bytes(_mutate(fixture.read_text(encoding="utf-8"), fixture.suffix == ".json", rng))
    out = tmp_path / "out.jsonl"
    argv = ["ingest", "--source", source, "--path", str(bad), "--out", str(out), "--params", str(params)]
    if source == "bfcl":
        argv += ["--answers", str(FIXTURES / "bfcl_answers.jsonl")]
    code = _run_bounded(argv)
    _assert_clean_end(code, capsys.readouterr().err, bad)
    assert not code or not out.exists()  # nothing half-written


@pytest.mark.parametrize("seed", range(CASES_PER_FORMAT))
def test_hostile_score_tasks_end_cleanly(seed, tmp_path, capsys):
    """Hostile canonical episodes as `tooltune score` tasks, against predictions of their own calls."""
    bad = tmp_path / "tasks.jsonl"
    bad.write_bytes(_mutate(EPISODES.read_text(encoding="utf-8"), False, random.Random(f"score-{seed}")))
    predictions = tmp_path / "predictions.jsonl"
    rows = [json.loads(line) for line in EPISODES.read_text(encoding="utf-8").splitlines() if line.strip()]
    predictions.write_text("".join(json.dumps({"id": r["id"], "result": [
        {"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
        for m in r["messages"] if m["role"] == "assistant" for tc in m.get("tool_calls") or []]}) + "\n"
        for r in rows))
    out = tmp_path / "report.json"
    code = _run_bounded(["score", "--tasks", str(bad), "--predictions", str(predictions), "--out", str(out)])
    # a damaged task id leaves its prediction without a task: that is named at the prediction's line
    _assert_clean_end(code, capsys.readouterr().err, bad, predictions)


@pytest.mark.parametrize("seed", range(VALIDATE_CASES))
def test_hostile_episodes_fail_validate_cleanly(seed, tmp_path, capsys):
    bad = tmp_path / "episodes.jsonl"
    bad.write_bytes(_mutate(EPISODES.read_text(encoding="utf-8"), False, random.Random(f"validate-{seed}")))
    shares = {"single": 0.4, "parallel": 0.2, "chain": 0.2, "irrelevance": 0.2}  # what good.jsonl holds
    params = write_params(tmp_path, "quick", paths={"raw": str(bad)}, ingest={"shares": shares})
    code = _run_bounded(["stage", "validate", "--params", str(params)])
    _assert_clean_end(code, capsys.readouterr().err, bad)
