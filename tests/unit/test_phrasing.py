"""Phrasing variety from composable parts: thousands of distinct training phrasings per tool, held-out parts and
styles that never reach training, dates without ambiguous numeric forms, and irrelevance that includes near
misses and requests lacking a required argument (no call; the reply asks for the detail)."""

import random
import re

import pytest

from components import domains
from components.domains import finance_tasks, generation, phrasing, travel_tasks

ALL = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.15, "irrelevance": 0.1, "multi_turn": 0.15}
MODULES = {"travel": travel_tasks, "finance": finance_tasks}


@pytest.fixture(scope="module", params=["travel", "finance"])
def drawn(request):
    return request.param, generation.generate(request.param, 900, ALL, 0.3, seed=5)


def _users(episodes, split):
    return [m.content.lower() for e in episodes if e.split == split for m in e.messages if m.role == "user"]


def _pattern(part: str) -> re.Pattern:
    """A part as a regex over lower-cased user text: a slot matches a value (a word; cities up to three)."""
    def slot(m: re.Match) -> str:
        return r"\S+(?: \S+){0,2}?" if m.group(1) in ("city", "origin") else r"\S+"

    return re.compile(re.sub(r"\\\{(\w+)\\\}", slot, re.escape(part.lower().strip())))


def _held_only_parts(domain: str) -> tuple[list[str], list[str]]:
    """(parts to search for, terse forms to match whole) that only the held-out side has: the shared pools and
    the domain's heads, slot phrases, near misses, small talk, contexts, follow-ups and chain templates."""
    module, b = MODULES[domain], generation.builders(domain)
    pools = [phrasing.OPENERS, phrasing.CLOSERS, phrasing.JOINS, b.near_misses, b.small_talk, b.contexts,
             *module.FOLLOW_UPS.values()]
    pools += [getattr(module, name) for name in ("CHAIN_PLAN", "CHAIN_BOOK") if hasattr(module, name)]
    pools += list(getattr(module, "CHAIN", {}).values())
    parts = [p for pool in pools for p in phrasing.held_only(pool)]
    parts += [prefix for prefix, _ in phrasing.held_only(phrasing.POLITE)]
    terse = []
    for intent in [*b.intents.values(), *b.extra_intents.values()]:
        parts += [text for text, _ in phrasing.held_only(intent.heads)]
        parts += [p for pool in intent.slots.values() for p in phrasing.held_only(pool)]
        terse += intent.terse
    # a part must say something of its own: "on {symbol}" alone would match any text
    distinctive = [p for p in parts if len(re.sub(r"\{\w+\}", "", p).strip(" .,?!")) >= 6]
    return distinctive, terse


def test_heldout_parts_and_styles_never_reach_training(drawn):
    domain, episodes = drawn
    parts, terse = _held_only_parts(domain)
    searched, whole = [_pattern(p) for p in parts], [_pattern(t) for t in terse]
    held_dates = [re.compile(r"\bthe \d{1,2}(st|nd|rd|th) of [a-z]+"), re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun) "
                                                                               r"\d{1,2} [a-z]{3}\b")]
    ramble = [r.lower().strip(", ") for r in phrasing.RAMBLE]
    abbreviations = [re.compile(rf"(^|\s){re.escape(a)}(\s|$)") for a in phrasing.ABBREVIATIONS[1].values()]
    train, test = _users(episodes, "train"), _users(episodes, "test")

    def leaks(text: str) -> list[str]:
        found = [p.pattern for p in searched + held_dates + abbreviations if p.search(text)]
        found += [p.pattern for p in whole if p.fullmatch(text.rstrip("?."))]
        return found + [r for r in ramble if r in text]

    assert not [(t, leaks(t)) for t in train if leaks(t)]
    # the check has teeth: held-out episodes do use these parts, styles and formats
    assert sum(bool(leaks(t)) for t in test) > len(test) / 2
    assert any(r in t for t in test for r in ramble) and (domain == "finance" or
                                                          any(p.search(t) for t in test for p in held_dates))
    assert any(p.fullmatch(t.rstrip("?.")) for t in test for p in whole)  # the terse style


def test_dates_are_2026_and_never_ambiguous_numbers(drawn):
    domain, episodes = drawn
    texts = _users(episodes, "train") + _users(episodes, "test")
    assert not [t for t in texts if re.search(r"\b\d{1,2}/\d{1,2}\b", t)]
    dates = [v for e in episodes for s in e.expected.steps for c in s for k, v in c.arguments.items()
             if k in ("start_date", "end_date", "date", "check_in", "check_out")]
    assert all(d.startswith("2026-") for d in dates) and (domain == "finance" or dates)
    if domain == "travel":  # several date formats in training, the ISO form among them
        train = " ".join(_users(episodes, "train"))
        assert re.search(r"2026-\d\d-\d\d", train) and re.search(r"\b[a-z]+ \d{1,2}(st|nd|rd|th)\b", train)
        assert re.search(r"\b\d{1,2} (january|february|march|april|may|june|july|august|september|october)", train)
        # the held-out formats' parts in other orders: "3rd June", "3 Jun", "Wed, Jun 3", "Wednesday 3 June"
        months, mons = "(january|february|march|april|may|june|july|august|september|october|november|december)", \
            "(jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec)"  # not may: "3 May" is an older format too
        assert re.search(rf"\b\d{{1,2}}(st|nd|rd|th) {months}", train) and re.search(rf"\b\d{{1,2}} {mons}\b", train)
        assert re.search(rf"\b(mon|tue|wed|thu|fri|sat|sun), {mons} \d{{1,2}}\b", train)
        assert re.search(rf"\b(mon|tues|wednes|thurs|fri|satur|sun)day \d{{1,2}} {months}", train)


def test_near_misses_and_missing_arguments_expect_no_call(drawn):
    _, episodes = drawn
    kinds = {}
    for e in (e for e in episodes if e.pattern == "irrelevance"):
        kind = e.id.rsplit("-", 1)[1]
        kinds.setdefault((kind, e.split), []).append(e)
        assert e.expected.steps == [] and [m.role for m in e.messages] == ["user", "assistant"]
    for kind in ("chat", "nearmiss", "missing"):
        assert kinds.get((kind, "train")) and kinds.get((kind, "test")), kind
    for e in kinds[("missing", "train")] + kinds[("missing", "test")]:
        assert "could you tell me " in e.messages[1].content
    near = {e.messages[0].content.lower() for e in kinds[("nearmiss", "train")]}
    assert any(word in " ".join(near) for word in ("car", "table", "train", "visa", "transfer", "mortgage", "bill"))


def test_missing_argument_requests_lack_the_value():
    """A flight request without its origin names no origin: the model cannot copy one, it must ask."""
    b = generation.builders("travel")

    for seed in range(200):
        voice = phrasing.Voice.draw(random.Random(seed), seed % 2 == 0, b.contexts)
        template = voice.ask(b.intents["search_flights"], ("origin",))
        assert "{origin}" not in template and "{city}" in template and "{d1}" in template


@pytest.mark.parametrize("domain", ["travel", "finance"])
def test_thousands_of_training_phrasings_per_tool(domain):
    counts = generation.phrasing_counts(domain, n=1500, seed=1)
    tools = {t["function"]["name"] for t in domains.get(domain).catalog()}
    assert set(counts) <= tools
    assert all(c["train"] >= 1000 and c["held"] >= 500 for c in counts.values()), counts
