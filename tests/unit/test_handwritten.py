"""The hand-written test sets (components/domains/handwritten): both load, are big enough, cover every pattern,
every gold call is valid and runs, bad records are refused with their rule, and no request repeats a generated one."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache

import pytest
import yaml

from components import toolcalls
from components.data.episode import DataError, Episode, Message, user_text
from components.domains import finance, get, handwritten, travel
from tests.conftest import REPO

DOMAINS = ("travel", "finance")
PATTERNS = ("single", "parallel", "chain", "recovery", "irrelevance", "multi_turn")
MIN_EPISODES = 60
GENERATED = 2400  # generated episodes a domain's hand-written requests are compared with
BAD = REPO / "tests" / "fixtures" / "handwritten" / "bad_travel.jsonl"


@lru_cache(maxsize=None)
def _loaded(domain: str) -> tuple[Episode, ...]:
    return tuple(handwritten.episodes(domain))


@pytest.mark.parametrize("domain", DOMAINS)
def test_set_loads_with_every_pattern(domain):
    episodes = _loaded(domain)
    counts = Counter(e.pattern for e in episodes)
    print(domain, len(episodes), dict(counts))
    assert len(episodes) >= MIN_EPISODES
    assert {p: counts[p] for p in PATTERNS if counts[p] < 3} == {}  # every pattern, at least 3 episodes
    assert counts["single"] >= len(episodes) // 3  # most requests are plain single calls
    assert all(e.source == "handwritten" and e.split == "test" and e.domain == domain for e in episodes)
    ids = [e.id for e in episodes]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"hw-{domain}-") for i in ids)


@pytest.mark.parametrize("domain", DOMAINS)
def test_irrelevance_has_near_misses_and_questions_for_missing_arguments(domain):
    no_call = [e for e in _loaded(domain) if e.pattern == "irrelevance"]
    asks = [e for e in no_call if e.messages[-1].content.rstrip().endswith("?")]
    assert len(asks) >= 3 and len(no_call) - len(asks) >= 6
    assert all(not e.expected.steps for e in no_call)


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_gold_call_fits_its_schema_and_runs_in_the_simulator(domain):
    spec = get(domain)
    index = toolcalls.tool_index(spec.catalog())
    for episode in _loaded(domain):
        env = spec.env()
        first_recovery_step = 0 if episode.pattern == "recovery" else None
        for k, step in enumerate(episode.expected.steps):
            for call in step:
                plain = {"name": call.name, "arguments": call.arguments}
                assert toolcalls.schema_errors(plain, index) == [], (episode.id, plain)
                for key, values in (call.accept or {}).items():
                    assert values[0] == call.arguments[key]  # the gold value comes first
                    for value in values:
                        assert toolcalls.schema_errors({**plain, "arguments": {**call.arguments, key: value}},
                                                       index) == [], (episode.id, key, value)
                content, ok = spec.execute(env, plain)
                assert ok == (k != first_recovery_step), (episode.id, k, content)
        assert spec.goal_reached(env, [[c.model_dump(exclude_none=True) for c in s] for s in episode.expected.steps],
                                 episode.expected.goal), episode.id


def test_recovery_errors_name_the_value_the_corrected_call_uses():
    for domain in DOMAINS:
        for episode in (e for e in _loaded(domain) if e.pattern == "recovery"):
            error = json.loads(next(m.content for m in episode.messages if m.role == "tool"))["error"]
            fixed = episode.expected.steps[1][0].arguments
            assert any(f"'{v}'" in error for v in fixed.values() if isinstance(v, str)), (episode.id, error)


def test_values_mix_held_out_and_training_cities_and_symbols():
    cities = {c.arguments[k] for e in _loaded("travel") for s in e.expected.steps for c in s
              for k in ("city", "origin", "destination") if k in c.arguments}
    symbols = {c.arguments["symbol"] for e in _loaded("finance") for s in e.expected.steps for c in s
               if "symbol" in c.arguments}
    assert len(cities & set(travel.CITIES_TEST)) >= 5 and len(cities & set(travel.CITIES_REAL)) >= 20
    assert len(symbols & set(finance.SYMBOLS_TEST)) >= 5 and len(symbols & set(finance.SYMBOLS_TRAIN)) >= 10


@pytest.mark.parametrize("line", range(1, len(BAD.read_text().splitlines()) + 1))
def test_bad_record_is_refused_naming_file_line_and_rule(tmp_path, line):
    good = (handwritten.path_of("travel").read_text().splitlines()[0])
    bad = BAD.read_text().splitlines()[line - 1]
    rule = json.loads(bad)["id"].removeprefix("bad-").split("-")[0]
    path = tmp_path / "travel.jsonl"
    path.write_text(f"{good}\n{bad}\n")
    with pytest.raises(DataError) as err:
        handwritten.episodes("travel", path)
    assert err.value.rule == rule, str(err.value)
    assert str(err.value).startswith(f"{path}:2"), str(err.value)


def test_repeated_id_is_refused(tmp_path):
    good = handwritten.path_of("travel").read_text().splitlines()[0]
    path = tmp_path / "travel.jsonl"
    path.write_text(f"{good}\n{good}\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:2 \(id hw-travel-001\): rule 'duplicate_id'"):
        handwritten.episodes("travel", path)


def test_domain_without_a_set_has_none(tmp_path):
    assert handwritten.episodes("weather") == []
    assert handwritten.episodes("travel", tmp_path / "missing.jsonl") == []


def _normalised(text: str) -> str:
    """One message normalised as `user_text` normalises an episode's requests."""
    return user_text(Episode.model_construct(messages=[Message(role="user", content=text)]))


def _messages(episodes) -> list[str]:
    return [_normalised(m.content or "") for e in episodes for m in e.messages if m.role == "user"]


def _masked(names: tuple[str, ...]):
    """A function masking a normalised request's slot values (the given names, any number or date): two requests
    with one mask are the same template filled in."""
    words = sorted({_normalised(n) for n in names}, key=len, reverse=True)
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")
    return lambda text: re.sub(r"\d+", "#", pattern.sub("<v>", text))


@pytest.mark.parametrize("domain", DOMAINS)
def test_no_request_repeats_or_fills_in_a_generated_one(domain):
    shares = yaml.safe_load((REPO / "params.yaml").read_text())["ingest"]["shares"]
    generated = _messages(get(domain).generate(GENERATED, shares, 0.25, seed=0))
    written = _messages(_loaded(domain))
    assert len(written) > MIN_EPISODES and len(generated) > GENERATED
    assert set(written) & set(generated) == set()
    mask = _masked(travel.CITIES if domain == "travel" else finance.SYMBOLS + tuple(finance.USD_VALUE))
    templates = {mask(t) for t in generated}
    assert [t for t in written if mask(t) in templates] == []
