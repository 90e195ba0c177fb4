"""Episode lines: parsing reads what `json.loads` reads and names the rule of a broken line; writing; the GC helpers."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest

from components.data.episode import DataError, Episode, parse_line, write_episodes
from components.data.fileio import gc_exempt, gc_paused, read_jsonl

WHERE = Path("episodes.jsonl")
GOOD = {"id": "e1", "domain": "d", "source": "s", "pattern": "single", "tools": [],
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        "expected": {"steps": []}}


def _line(goal_json: str) -> bytes:
    """A good record whose `expected.goal` is the given JSON text, verbatim."""
    text = json.dumps({**GOOD, "expected": {"steps": [], "goal": {}}})
    return text.replace('"goal": {}', f'"goal": {goal_json}').encode()


@pytest.mark.parametrize("goal", [
    '{"big": 18446744073709551616, "low": -9223372036854775809}',  # past 64 bits: still ints, not floats
    '{"tiny": 5e-324, "neg0": -0.0, "max": 1.7976931348623157e308}',
    '{"pair": "\\ud83d\\ude00", "nul": "\\u0000", "ls": "a\u2028b\u2029c\u0085d"}',  # a surrogate pair is one character
    '{"deep": ' + "[" * 90 + "]" * 90 + "}",  # within components.data.inputs.MAX_DEPTH
])
def test_parse_line_reads_what_json_loads_reads(goal):
    raw = _line(goal)
    expected = Episode.model_validate(json.loads(raw.decode()))
    assert repr(parse_line(raw, WHERE, 1).model_dump()) == repr(expected.model_dump())  # types, signs


@pytest.mark.parametrize("raw, message", [
    (b'{"id": "caf\xe9"}', "episodes.jsonl:3: rule 'utf8': not UTF-8 text (invalid continuation byte at byte 11)"),
    (b'{"id": "x", ', "episodes.jsonl:3: rule 'json': invalid JSON (Expecting property name enclosed in double quotes "
                     "at line 1 column 13)"),
    (b"[1, 2]", "episodes.jsonl:3: rule 'record_schema': a record must be a JSON object"),
    (json.dumps({**GOOD, "pattern": "odd"}).encode(), "episodes.jsonl:3 (id e1): rule 'record_schema': pattern: "),
    (_line('{"nan": NaN}'), "episodes.jsonl:3: rule 'json_number': NaN is not a JSON number"),
    (_line('{"inf": -Infinity}'), "episodes.jsonl:3: rule 'json_number': -Infinity is not a JSON number"),
    (_line('{"huge": 1e400}'), "episodes.jsonl:3: rule 'json_number': 1e400 is too large for a float"),
    (_line('{"a": 1, "a": 2}'), "episodes.jsonl:3: rule 'duplicate_key': key 'a' appears twice in one object"),
    (_line('{"lone": "\\ud800"}'), "episodes.jsonl:3: rule 'unicode': a lone surrogate escape (\\ud800)"),
    (_line("[" * 101 + "]" * 101), "episodes.jsonl:3: rule 'json_depth': arrays/objects nested deeper than 100"),
    (_line("[" * 5000 + "]" * 5000), "episodes.jsonl:3: rule 'json_depth': arrays/objects nested deeper than 100"),
    (_line("9" * 5000), "episodes.jsonl:3: rule 'number_size': an integer has more than 4300 digits"),
])
def test_broken_line_names_its_rule(raw, message):
    with pytest.raises(DataError) as info:
        parse_line(raw, WHERE, 3)
    assert str(info.value).startswith(message), str(info.value)
    assert (info.value.where, info.value.rule) == (message.split(": rule")[0], message.split("'")[1])


def test_written_episodes_read_back_as_their_json_dump(tmp_path):
    episode = Episode.model_validate(GOOD)
    episode.expected.goal = {"nan": float("nan"), "inf": float("inf"), "big": 2**80, "small": 1e-7, "pair": (1, 2),
                             "text": "caf\u00e9\u2028\u0000"}  # U+2028 inside a line is no line break for JSONL
    path = tmp_path / "episodes.jsonl"
    assert write_episodes(path, [episode, episode]) == 2
    expected = episode.model_dump(mode="json", exclude_none=True)  # NaN and infinities become null
    assert [repr(row) for row in read_jsonl(path)] == [repr(expected)] * 2


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError), gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("the block failed")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_gc_exempt_freezes_what_it_built_until_the_block_ends():
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    with gc_exempt(lambda: [{"n": k} for k in range(1000)]) as built:
        assert len(built) == 1000 and gc.isenabled()  # the collector runs, on new objects only
        assert gc.get_freeze_count() >= len(built)
    assert gc.get_freeze_count() == 0
    earlier = [[]]  # frozen by someone else before the block: it stays frozen (out of every generation) after it
    gc.freeze()
    try:
        with gc_exempt(list):
            pass
        assert not _in_a_generation(earlier)  # a count would not do: other threads free frozen objects meanwhile
    finally:
        gc.unfreeze()
    assert _in_a_generation(earlier)


def _in_a_generation(obj: object) -> bool:
    """Whether the collector's generations hold `obj` (a frozen object is in none of them)."""
    return any(o is obj for g in range(3) for o in gc.get_objects(generation=g))
