"""No-call episodes for every domain: the shipped off-domain pool (never a held-out text in training), its share
in ingest's file for built-in and catalog domains, removed-tool and voice twins of catalog requests, the irrelevance kinds
from params, the default file unchanged when the pool is off, and the validate gate's `no_call_share` rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from components import ingest, validate
from components.config import ConfigError
from components.data.episode import DataError, Tool, read_episodes, user_text
from components.domains import generation, no_call, offdomain, phrasing, travel

# sha256 of the default params' travel and finance episodes (2400, seed 0) with the pool off: the generator's own
# file, unchanged by the pool. Pinned again when each episode got a random stream of its own (generation.streams) and
# travel four more training date formats; before, on main before the pool: caaec313... and 80dadb46...
MAIN_SHA = {"travel": "2f8a3ed55adba06f7b66dde4daa9f91c7d9cd05ea474898254573aaf4efdebf2",
            "finance": "35c7dfb01d2e9ec9a53af5dbe5f5dde7355bdb41dd32c6817a735da2db9cc9c7"}
OFF = {"share": 0.0, "removed_tool": 0.0, "builtin": False}
CLINIC = [
    {"name": "book_appointment", "description": "Book a visit with a doctor at the clinic.",
     "parameters": {"type": "object", "properties": {"doctor": {"type": "string"}, "day": {"type": "string"}},
                    "required": ["doctor", "day"]}},
    {"name": "find_doctor", "description": "Find doctors of a specialty.",
     "parameters": {"type": "object", "properties": {"specialty": {"type": "string"}}, "required": ["specialty"]}},
    {"name": "get_lab_results", "description": "Lab results of a patient.",
     "parameters": {"type": "object", "properties": {"patient": {"type": "string"}}, "required": ["patient"]}},
]
ASKS = {"book_appointment": ("Book me in with {x} on Monday", {"doctor": "{x}", "day": "Monday"}),
        "find_doctor": ("Which {x} doctors work here?", {"specialty": "{x}"}),
        "get_lab_results": ("Are the lab results for {x} back?", {"patient": "{x}"})}


@pytest.mark.parametrize("domain", ["travel", "finance"])
def test_default_episodes_are_byte_identical_with_the_pool_off(params_factory, domain):
    params = params_factory(None, project={"domain": domain}, ingest={"workers": 1, "irrelevance_pool": OFF})
    ingest.run(params)
    assert hashlib.sha256(params.path("raw").read_bytes()).hexdigest() == MAIN_SHA[domain]


def test_irrelevance_kinds_come_from_params(params_factory):
    kinds = {}
    for chat in (1.0, 0.7):
        params = params_factory(ingest={"n_episodes": 300, "irrelevance_pool": OFF, "irrelevance_kinds": {
            "chat": chat, "nearmiss": round((1 - chat) * 2 / 3, 6), "missing": round((1 - chat) / 3, 6)}})
        ingest.run(params)
        kinds[chat] = {e.id.split("-")[-1] for e in read_episodes(params.path("raw")) if e.pattern == "irrelevance"}
    assert not kinds[1.0] & {"nearmiss", "missing"} and {"nearmiss", "missing"} <= kinds[0.7]


def test_pool_never_puts_a_heldout_text_in_training():
    tools = [Tool.model_validate(t) for t in travel.catalog()]
    episodes = no_call.pool_episodes("travel", tools, 6000, 0.3, seed=2)
    train = {user_text(e) for e in episodes if e.split == "train"}
    held = {user_text(e) for e in episodes if e.split == "test"}
    assert len(train) > 2500 and len(held) > 600  # thousands of distinct texts (normalised) through composition
    assert not train & held
    # stronger than these draws: no held-out template (its words before the values) is a training one
    for topic in offdomain.TOPICS.values():
        assert not set(topic.templates[0]) & set(topic.templates[1])
    assert all(e.expected.steps == [] and e.pattern == "irrelevance" for e in episodes)
    # weather is a travel tool: its requests are not off-domain there
    assert not any(e.id.endswith(("-weather", "-travel")) for e in episodes)
    assert "get weather" in episodes[0].messages[-1].content  # the reply says what the agent can do


def test_builtin_domain_gets_the_pool_at_its_share_only_when_asked(params_factory):
    default = params_factory(ingest={"n_episodes": 100})
    assert default.ingest.irrelevance_pool.share > 0 and "source_irrelevance_pool" not in ingest.run(default).metrics
    params = params_factory(ingest={"n_episodes": 400,
                                    "irrelevance_pool": {"share": 0.1, "removed_tool": 0.0, "builtin": True}})
    result = ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    pool = [e for e in episodes if e.source == "irrelevance_pool"]
    assert len(pool) == round(0.1 / 0.9 * 400) == result.metrics["source_irrelevance_pool"]
    assert len(episodes) == 400 + len(pool) and abs(len(pool) / len(episodes) - 0.1) < 0.005
    held_texts = {user_text(e) for e in episodes if e.split == "test"}
    assert not {user_text(e) for e in pool if e.split == "train"} & held_texts


def test_builtin_domain_gets_removed_tool_twins_of_training_requests_only(params_factory):
    off = params_factory(ingest={"n_episodes": 400, "irrelevance_pool": OFF})
    ingest.run(off)
    before = read_episodes(off.path("raw"))
    params = params_factory(ingest={"n_episodes": 400, "irrelevance_pool": {**OFF, "removed_tool_builtin": 0.5}})
    result = ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    assert episodes[:len(before)] == before  # the generated episodes unchanged, the twins after them
    twins = episodes[len(before):]
    singles = {e.id: e for e in before if e.pattern == "single" and e.split != "test"}
    assert 0.3 * len(singles) < len(twins) < 0.7 * len(singles)
    assert result.metrics["source_removed_tool"] == len(twins)
    for twin in twins:
        source = singles[twin.id.split("-removed-")[0]]  # a training single, never a held-out one
        needed = source.expected.steps[0][0].name
        assert needed not in {t.function.name for t in twin.tools} and len(twin.tools) == len(source.tools) - 1
        assert twin.expected.steps == [] and twin.split == source.split and user_text(twin) == user_text(source)


def test_builtin_domain_gets_aside_contrast_pairs_of_training_requests_only(params_factory):
    """Each chosen training single gets a pair after the generated episodes: the same request and call after a
    statement that asks for nothing, and that statement alone, answered without a call; held-out episodes none."""
    off = params_factory(ingest={"n_episodes": 400, "irrelevance_pool": OFF})
    ingest.run(off)
    before = read_episodes(off.path("raw"))
    params = params_factory(ingest={"n_episodes": 400, "irrelevance_pool": OFF, "aside_twins": 0.5})
    result = ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    assert episodes[:len(before)] == before
    twins = episodes[len(before):]
    singles = {e.id: e for e in before if e.pattern == "single" and e.split != "test"}
    assert 0.3 * len(singles) < len(twins) / 2 < 0.7 * len(singles)
    assert result.metrics["source_aside_twin"] == len(twins)
    for with_request, alone in zip(twins[::2], twins[1::2]):
        source = singles[with_request.id.removesuffix("-aside")]
        assert alone.id == f"{source.id}-aside-alone" and with_request.split == alone.split == source.split
        assert with_request.expected == source.expected and with_request.messages[1:] == source.messages[1:]
        aside = user_text(with_request).removesuffix(user_text(source)).strip()
        assert aside and user_text(with_request).endswith(user_text(source))
        words = aside.rstrip(".!").split()  # the same statement, dressed (opener, closer, at most one typo)
        assert len(set(words) & set(user_text(alone).split())) >= len(words) - 1 and alone.expected.steps == []
        assert alone.pattern == "irrelevance" and [m.role for m in alone.messages] == ["user", "assistant"]
    general = params_factory(project={"domain": "general"}, ingest={
        "n_episodes": 60, "aside_twins": 0.5, "shares": {"single": 0.6, "parallel": 0.2, "irrelevance": 0.2}})
    written = general.path("raw").read_bytes()
    with pytest.raises(ConfigError, match="aside_twins"):  # a generator without asides
        ingest.run(general)
    assert general.path("raw").read_bytes() == written  # the earlier output intact

def _clinic(folder: Path, n: int = 240) -> None:
    """A clinic catalog (no generator, no simulator) and `n` single-call OpenAI records for it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalog.json").write_text(json.dumps(CLINIC))
    rows = []
    for i in range(n):
        name = sorted(ASKS)[i % 3]
        text, args = ASKS[name]
        value = f"case{i}"
        call = {"id": "c0", "type": "function", "function": {
            "name": name, "arguments": json.dumps({k: v.replace("{x}", value) for k, v in args.items()})}}
        rows.append({"id": f"clinic-{i}", "messages": [
            {"role": "user", "content": text.replace("{x}", value)},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c0", "content": "{\"ok\": true}"},
            {"role": "assistant", "content": "Done."}]})
    (folder / "trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _clinic_params(params_factory, tmp_path, pool: dict, voice: float = 0.0):
    _clinic(tmp_path / "data" / "imports")
    return params_factory(project={"domain": "clinic", "catalog": "data/imports/catalog.json"},
                          ingest={"source": "none", "irrelevance_pool": pool, "voice_twins": voice, "imports": [
                              {"source": "openai", "path": "data/imports/trajectories.jsonl", "domain": "clinic",
                               "heldout_fraction": 0.3}]})


def test_catalog_domain_gets_pool_and_removed_tool_episodes(params_factory, tmp_path):
    before = _clinic_params(params_factory, tmp_path, OFF)
    ingest.run(before)
    assert not [e for e in read_episodes(before.path("raw")) if not e.expected.steps]  # nothing without a call

    params = _clinic_params(params_factory, tmp_path, {"share": 0.1, "removed_tool": 0.25})
    ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    by_id = {e.id: e for e in episodes}
    twins = [e for e in episodes if e.source == "removed_tool"]
    assert 0.15 * 240 < len(twins) < 0.35 * 240
    for twin in twins:
        source = by_id[twin.id.split("-removed-")[0]]
        needed = source.expected.steps[0][0].name
        assert needed not in {t.function.name for t in twin.tools} and len(twin.tools) == len(CLINIC) - 1
        assert twin.expected.steps == [] and twin.split == source.split and user_text(twin) == user_text(source)
        assert needed.replace("_", " ") not in twin.messages[-1].content
    pool = [e for e in episodes if e.source == "irrelevance_pool"]
    assert len(pool) == round(0.1 / 0.9 * (240 + len(twins))) and all(e.domain == "clinic" for e in pool)
    assert not any(e.id.endswith("-almost_booking") for e in pool)  # the clinic books appointments
    assert "book appointment" in pool[0].messages[-1].content


def test_voice_twins_frame_training_requests_and_leave_the_test_as_written(params_factory, tmp_path):
    params = _clinic_params(params_factory, tmp_path, OFF, voice=0.5)
    ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    by_id = {e.id: e for e in episodes}
    twins = [e for e in episodes if e.id.endswith("-voice")]
    train_side = [e for e in episodes if e.split != "test" and not e.id.endswith("-voice")]
    assert 0.35 * len(train_side) < len(twins) < 0.65 * len(train_side)
    for twin in twins:
        source = by_id[twin.id.removesuffix("-voice")]
        assert source.split != "test" and twin.split == source.split
        framed, asked = twin.messages[0].content, source.messages[0].content
        assert framed != asked and asked in framed  # the request itself is kept whole: the gold call copies it
        at = framed.index(asked)  # an opener and a closer of the training side around it
        assert framed[:at] in phrasing.OPENERS[0] and framed[at + len(asked):] in phrasing.CLOSERS[0]
        assert twin.source == "voice_twin" and twin.expected == source.expected and twin.tools == source.tools
        assert twin.messages[1:] == source.messages[1:]
    assert not [e for e in episodes if e.split == "test" and e.id.endswith("-voice")]
    # the same seed gives the same twins; off writes none
    ingest.run(params)
    assert [user_text(e) for e in read_episodes(params.path("raw")) if e.id.endswith("-voice")] == \
        [user_text(e) for e in twins]
    off = _clinic_params(params_factory, tmp_path, OFF)
    ingest.run(off)
    assert not [e for e in read_episodes(off.path("raw")) if e.id.endswith("-voice")]


def test_pool_is_the_same_for_any_number_of_workers(params_factory, monkeypatch):
    monkeypatch.setattr(generation, "CHUNK", 25)
    monkeypatch.setattr(generation, "CHUNKS_PER_WORKER", 1)
    files = []
    for workers in (1, 2):
        params = params_factory(ingest={"n_episodes": 150, "workers": workers,
                                        "irrelevance_kinds": {"chat": 0.2, "nearmiss": 0.4, "missing": 0.4},
                                        "irrelevance_pool": {"share": 0.2, "removed_tool": 0.0, "builtin": True}})
        ingest.run(params)
        files.append(params.path("raw").read_bytes())
    assert files[0] == files[1] and b"-pool-" in files[0] and b"-missing\"" in files[0]


def _validate_rows(params_factory, irrelevance: float, n: int = 100):
    shares = {"single": 1 - irrelevance, "irrelevance": irrelevance}
    params = params_factory(ingest={"shares": shares}, validate={"min_pattern_share": 0.0, "min_tool_share": 0.0})
    episodes = generation.generate("travel", n, shares, 0.0, 3)
    path = params.path("raw")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(e.model_dump_json(exclude_none=True) + "\n" for e in episodes))
    return params, path


def test_gate_warns_below_warn_share_with_the_number_needed(params_factory):
    params, path = _validate_rows(params_factory, 0.03)  # 3 of 100; warn_share 0.05 needs 5
    outcomes, metrics = validate.validate_file(path, params)
    rule = next(o for o in outcomes if o.rule == "no_call_share")
    assert rule.status == "warned" and "3 of 100" in rule.failure.detail and "needs 5, 2 more" in rule.failure.detail
    assert metrics["no_call_needed"] == 2
    ok, _ = validate.validate_file(_validate_rows(params_factory, 0.06)[1], params)
    assert next(o for o in ok if o.rule == "no_call_share").status == "passed"


def test_gate_fails_below_fail_share_in_one_line(params_factory):
    params, path = _validate_rows(params_factory, 0.01)  # 1 of 100 < fail_share 0.02
    with pytest.raises(DataError) as info:
        validate.validate_file(path, params)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: rule 'no_call_share': domain 'travel': 1 of 100")
    assert "needs 5, 4 more" in message and "fail_share=0.02" in message
