"""Reward-model pairs (components/training/pairs.py and breakers.py) on real built-in episodes of both domains: each
error class's breaker yields exactly that class of the shared scorer on every episode it applies to, with values a
model would pass; held-out pairs share no episode (and no piece of one) with training pairs; output is a function of
the episodes and the seed."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import cache

import pytest

from components import build, domains, ingest, toolcalls
from components.config import PATTERNS, Build
from components.data.episode import read_episodes
from components.data.fileio import read_jsonl
from components.domains.phrasing import DATE_FORMATS
from components.training import pairs
from components.training.breakers import BREAKERS, spoken, strings

CALLS = {"single", "parallel", "chain", "recovery", "multi_turn"}
# Where each class applies in the built-in generators: every episode of these patterns gets a pair of it, no episode of
# the others (None: no statement about the others).
APPLIES: dict[str, tuple[set[str], set[str] | None]] = {
    "hallucinated_tool": (CALLS, {"irrelevance"}), "wrong_tool": (CALLS, {"irrelevance"}),
    "wrong_value": (CALLS, {"irrelevance"}), "missing_required_argument": (CALLS, {"irrelevance"}),
    "unknown_argument": (CALLS, {"irrelevance"}), "redundant_call": (CALLS, {"irrelevance"}),
    "no_call": (CALLS, {"irrelevance"}),
    "wrong_call_count": (CALLS, {"irrelevance"}),  # one call short in a parallel step, one call more anywhere
    "missing_step": ({"chain", "multi_turn"}, {"single", "parallel", "recovery", "irrelevance"}),
    "wrong_order": ({"chain", "multi_turn"}, {"single", "parallel", "recovery", "irrelevance"}),
    "premature_stop": ({"chain", "recovery", "multi_turn"}, {"single", "parallel", "irrelevance"}),
    "call_when_irrelevant": ({"irrelevance"}, CALLS),
    "wrong_type": (set(), {"irrelevance"}),  # travel: every call episode; finance: not enum-only calls (below)
    "unexpected_argument": (set(), CALLS | {"irrelevance"}),  # no built-in tool has an optional parameter
}


@cache
def episodes(domain: str) -> tuple:
    return tuple(domains.get(domain).generate(240, {p: 1.0 for p in PATTERNS}, 0.25, 3))


@cache
def broken(domain: str, kind: str) -> dict[str, tuple]:
    """Episode id -> (episode, case, rejected, errors) for every episode `kind` breaks."""
    eps = episodes(domain)
    cases = {e.id: pairs.case_of(e) for e in eps}
    pool = pairs.pool_of(cases.values())
    out = {}
    for ep in eps:
        got = pairs.break_case(ep, cases[ep.id], kind, pool, __import__("random").Random(f"7:{kind}:{ep.id}"))
        if got is not None:
            out[ep.id] = (ep, cases[ep.id], *got)
    return out


def test_the_params_literal_names_every_breaker_and_every_breaker_a_scorer_class():
    literal = Build.model_fields["pair_kinds"].annotation.__args__[0].__args__
    assert set(literal) == set(BREAKERS) == set(pairs.CLASSES)
    doc = toolcalls.__doc__
    assert all(f"- {kind}:" in doc for kind in BREAKERS)


@pytest.mark.parametrize("domain", ["travel", "finance"])
@pytest.mark.parametrize("kind", sorted(BREAKERS))
def test_breaker_yields_its_class_on_every_episode_it_applies_to(domain, kind):
    eps = episodes(domain)
    assert all(pairs.case_of(e) is not None for e in eps)  # the generators' own trajectories pass the scorer
    made = broken(domain, kind)
    must, never = APPLIES[kind]
    assert {e.id for e in eps if e.pattern in must} <= set(made), f"{kind} skipped episodes it applies to"
    assert not {made[i][0].pattern for i in made} & (never or set())
    if kind == "wrong_type":
        calls = [e for e in eps if e.pattern in CALLS]
        assert len(made) == len(calls) if domain == "travel" else len(made) >= 0.6 * len(calls)
    for ep, case, rejected, errors in made.values():
        assert kind in errors and set(errors) <= {kind} | pairs.COMPANIONS.get(kind, frozenset())
        assert errors == pairs.verdict(ep, case, rejected) and rejected != case.rest
        assert toolcalls.score_episode(toolcalls.steps_of_messages(case.rest), pairs._gold(ep), case.tools).exact


@pytest.mark.parametrize("domain", ["travel", "finance"])
def test_mistakes_use_values_a_model_would_pass(domain):
    """No placeholder: every argument of a rejected call is a value the episode set's calls or tool results hold, a
    schema enum member, a real date or a number; invented tool names are near the real one; wrong tools are real."""
    eps = episodes(domain)
    catalog = toolcalls.tool_index(domains.get(domain).catalog())
    known = {json.dumps(v) for e in eps for s in e.expected.steps for c in s for v in c.arguments.values()}
    known |= {json.dumps(v) for schema in catalog.values() for p in schema["properties"].values()
              for v in p.get("enum", [])}
    for kind in sorted(BREAKERS):
        for ep, case, rejected, _ in broken(domain, kind).values():
            results = " ".join(m.get("content") or "" for m in case.rest if m["role"] == "tool")
            for call in (c for step in toolcalls.steps_of_messages(rejected) for c in step):
                for value in call["arguments"].values():
                    assert _plausible(value, known, results), (kind, ep.id, call)
                if kind == "hallucinated_tool" and call["name"] not in catalog:
                    assert any(_words(call["name"]) & _words(n) for n in catalog), call["name"]
                elif kind != "hallucinated_tool":
                    assert call["name"] in catalog, (kind, call)


def test_a_wrong_or_extra_call_passes_the_requests_own_dates_and_gets_a_result_for_them():
    """The SFT model's wrong and extra calls reuse the request's values (a car-hire request answered with the
    weather for its city and dates), so the rejected calls do too: a date the request names, in whatever format it
    writes it (the 3rd of June, Wed 3 Jun), and a result borrowed from another episode names the call's values."""
    named = other = 0
    for kind in ("wrong_tool", "wrong_call_count", "call_when_irrelevant"):
        for ep, case, rejected, _ in broken("travel", kind).values():
            dates = _dates_named(case.user)
            good = {json.dumps(c, sort_keys=True) for step in case.steps for c in step}
            for call, result in _calls_with_results(rejected):
                if json.dumps(call, sort_keys=True) in good:
                    continue
                for value in (v for v in call["arguments"].values() if dates and _is_date(v)):
                    named, other = named + (value in dates), other + (value not in dates)
                if kind != "wrong_tool" and isinstance(result, dict):  # a borrowed result, rebound
                    assert all(result[k] == v for k, v in call["arguments"].items()
                               if isinstance(v, str) and isinstance(result.get(k), str)), (ep.id, call, result)
    assert named > 1000 and other <= 0.01 * (named + other), (named, other)


def test_an_extra_call_after_a_search_takes_the_flight_the_search_found():
    """The SFT model books (or plans an itinerary on) the flight it was only asked to find: an extra call that
    takes an identifier passes one the tool results before it show, never another episode's."""
    shown = other = 0
    for ep, case, rejected, _ in broken("travel", "wrong_call_count").values():
        good = {json.dumps(c, sort_keys=True) for step in case.steps for c in step}
        seen = ""
        for m in rejected:
            if m["role"] == "tool":
                seen += m["content"]
            for tc in m.get("tool_calls") or []:
                call = {"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
                if json.dumps(call, sort_keys=True) in good:
                    continue
                for value in call["arguments"].values():
                    if isinstance(value, str) and re.search(r"\d", value) and not _is_date(value):
                        shown, other = shown + (f'"{value}"' in seen), other + (f'"{value}"' not in seen)
    assert shown > 100 and other == 0, (shown, other)


@cache
def _dates_named(user: str) -> frozenset[str]:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=d) for d in range(365)]
    forms = [(d.isoformat(), render(d).lower()) for d in days for render in DATE_FORMATS.values()]
    return frozenset(d for d, form in forms
                     if form in user and re.search(rf"(?<!\w){re.escape(form)}(?!\w)", user))


def _is_date(value) -> bool:
    try:
        return isinstance(value, str) and bool(dt.date.fromisoformat(value))
    except ValueError:
        return False


def _calls_with_results(messages: list[dict]) -> list[tuple[dict, object]]:
    results = {m.get("tool_call_id"): json.loads(m["content"]) for m in messages if m["role"] == "tool"}
    return [({"name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}, results.get(tc.get("id")))
            for m in messages for tc in m.get("tool_calls") or []]


def _plausible(value, known: set[str], results: str) -> bool:
    if json.dumps(value) in known or (isinstance(value, str) and f'"{value}"' in results):
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if isinstance(value, list):  # a lone value wrapped in a list (wrong_type)
        return len(value) == 1 and _plausible(value[0], known, results)
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
            return True
        except ValueError:
            return value.replace(".", "", 1).isdigit() or value in ("true", "false")  # a retyped number or bool
    return False


def _words(name: str) -> set[str]:
    return {w.lower().rstrip("s") for w in re.findall(r"[A-Z]?[a-z]+", name)} - {"get"}


def test_unexpected_argument_passes_an_optional_parameter_the_request_gives_no_reason_for():
    eps = [e for e in episodes("travel") if e.pattern == "single"][:5]
    cabin = {"type": "string", "enum": ["economy", "business"], "description": "Cabin class."}
    changed = []
    for ep in eps:
        tools = [t.model_copy(deep=True) for t in ep.tools]
        for t in tools:
            t.function.parameters["properties"]["cabin"] = cabin  # optional: not in `required`
        changed.append(ep.model_copy(update={"tools": tools}))
    rows = pairs.make_pairs(changed, ["unexpected_argument"], "sys", 0, None)
    assert len(rows) == len(changed)
    for row in rows:
        call = toolcalls.steps_of_messages(row["rejected"])[0][0]
        assert call["arguments"]["cabin"] in cabin["enum"] and row["errors"] == ["unexpected_argument"]


@pytest.mark.parametrize("domain, least", [("travel", 0.45), ("finance", 0.2)])
def test_wrong_value_swaps_two_values_of_a_call_in_a_large_share_of_its_pairs(domain, least):
    """A swapped origin and destination is the wrong value only the request tells apart: a large share of the
    class's pairs (travel's calls have more same-typed pairs of values than finance's), the rest one value replaced."""
    kinds = []
    for ep, case, rejected, _ in broken(domain, "wrong_value").values():
        good = [c for step in toolcalls.steps_of_messages(case.rest) for c in step]
        bad = [c for step in toolcalls.steps_of_messages(rejected) for c in step]
        g, b = next((g, b) for g, b in zip(good, bad) if g != b)
        changed = sorted(k for k in g["arguments"] if g["arguments"][k] != b["arguments"].get(k))
        swapped = len(changed) == 2 and g["arguments"][changed[0]] == b["arguments"][changed[1]] \
            and g["arguments"][changed[1]] == b["arguments"][changed[0]]
        assert swapped or len(changed) == 1, (ep.id, g, b)
        kinds.append(swapped)
    share = sum(kinds) / len(kinds)
    assert least <= share <= 0.75, share


def test_make_pairs_is_a_function_of_episodes_and_seed_capped_per_class():
    eps = list(episodes("finance"))
    first = pairs.make_pairs(eps, pairs.CLASSES, "sys", 5, 7)
    assert first == pairs.make_pairs(list(reversed(eps)), pairs.CLASSES, "sys", 5, 7)  # input order does not matter
    assert first != pairs.make_pairs(eps, pairs.CLASSES, "sys", 6, 7)
    counts = {k: sum(r["kind"] == k for r in first) for k in pairs.CLASSES}
    assert counts == {k: 0 if k == "unexpected_argument" else 7 for k in pairs.CLASSES}
    assert all(r["prompt"][0] == {"role": "system", "content": "sys"} for r in first)


def test_shortened_requests_keep_every_value_and_the_word_before_it_and_drop_others_at_the_rate():
    import random

    text = "Hi there, could you find me a room in Amman from June 14th until 2026-06-15? Thanks a lot, cheers!"
    values = ["Amman", "2026-06-14", "2026-06-15"]
    kept_words = {"in", "Amman", "from", "June", "14th", "until", "2026-06-15?"}
    others = [w for w in text.split() if w not in kept_words]
    dropped = 0
    for i in range(400):
        short = pairs.shortened(text, values, 0.4, random.Random(i))
        words = short.split()
        assert [w for w in words if w in kept_words] == [w for w in text.split() if w in kept_words]
        rest = iter(text.split())
        assert all(w in rest for w in words)  # a subsequence: words keep their order, nothing added
        dropped += len(text.split()) - len(words)
    assert dropped / (400 * len(others)) == pytest.approx(0.4, abs=0.03)
    assert pairs.shortened(text, values, 0.0, random.Random(0)) == text and dropped
    assert pairs.shortened("Write a haiku", [], 0.99, random.Random(0)) in ("Write a haiku", "Write", "a", "haiku")


def _but_user_text(messages: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if m["role"] != "user" or k != "content"} for m in messages]


def test_a_share_of_training_pairs_have_their_user_turns_shortened_alike_in_both_trajectories():
    eps = [e for e in episodes("travel") if e.pattern in ("multi_turn", "single", "irrelevance")]
    plain = pairs.make_pairs(eps, pairs.CLASSES, "sys", 5, 6)
    assert plain == pairs.make_pairs(eps, pairs.CLASSES, "sys", 5, 6, (0.0, 0.4))  # share 0: as before
    short = pairs.make_pairs(eps, pairs.CLASSES, "sys", 5, 6, (0.5, 0.4))
    assert short == pairs.make_pairs(eps, pairs.CLASSES, "sys", 5, 6, (0.5, 0.4))  # seeded
    assert [r["id"] for r in short] == [r["id"] for r in plain]
    changed = [(a, b) for a, b in zip(plain, short) if b.get("shortened")]
    assert 0.3 < len(changed) / len(short) < 0.7
    for old, new in changed:
        users = {k: [m["content"] for m in new[k] if m["role"] == "user"] for k in ("prompt", "chosen", "rejected")}
        assert users["chosen"] == users["rejected"]  # a follow-up reads the same in both trajectories
        assert new["errors"] == old["errors"] and new["kind"] == old["kind"]
        assert all(_but_user_text(new[k]) == _but_user_text(old[k]) for k in ("prompt", "chosen", "rejected"))
        said = " ".join(users["prompt"] + users["chosen"]).lower()
        was = " ".join(m["content"] for m in old["prompt"] + old["chosen"] if m["role"] == "user").lower()
        values = {v for m in old["chosen"] for c in m.get("tool_calls") or []
                  for v in strings(c["function"]["arguments"]) if len(v) > 1}
        for v in (v for v in values if any(f in was for f in spoken(v))):
            assert any(f in said for f in spoken(v)), (new["id"], v)  # a value the user said stays said
    assert sum(len(" ".join(m["content"] for m in b["prompt"] if m["role"] == "user"))
               < len(" ".join(m["content"] for m in a["prompt"] if m["role"] == "user")) for a, b in changed) \
        > 0.9 * len(changed)


def test_heldout_pairs_never_share_an_episode_with_training_pairs(params_factory):
    params = params_factory()
    ingest.run(params)
    result = build.run(params)
    out = params.path("splits")
    ids = {name: {e.id for e in read_episodes(out / f"{name}.jsonl")} for name in ("train", "val", "test")}
    train, heldout = read_jsonl(out / "pairs.jsonl"), read_jsonl(out / "heldout_pairs.jsonl")
    assert {r["episode"] for r in train} <= ids["train"]
    assert {r["episode"] for r in heldout} <= ids["val"] | ids["test"]
    assert {r["kind"] for r in heldout} == {r["kind"] for r in train} == set(pairs.CLASSES) - {"unexpected_argument"}
    # nothing of a training episode inside a held-out pair: every string of a tool result is one of the val or test
    # episodes' results, where a value their calls pass may stand in for another (a borrowed result rebound to the
    # values its call passes: "Hotel Lima Central" from "Hotel Oslo Central")
    held = [e for name in ("val", "test") for e in read_episodes(out / f"{name}.jsonl")]
    values = {s for e in held for step in e.expected.steps for c in step for s in strings(c.arguments) if len(s) > 1}
    slot = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
    held_shapes = {slot.sub("<v>", s) for e in held for m in e.messages if m.role == "tool"
                   for s in strings(json.loads(m.content))} | {"<v>"}
    for r in heldout:
        for m in (m for m in r["rejected"] if m["role"] == "tool"):
            assert {slot.sub("<v>", s) for s in strings(json.loads(m["content"]))} <= held_shapes, (r["id"], m)
    assert result.metrics["heldout_pairs_no_call"] == min(params.build.heldout_pairs_per_class,
                                                          sum(r["kind"] == "no_call" for r in heldout))
    before = {name: (out / name).read_bytes() for name in ("pairs.jsonl", "heldout_pairs.jsonl")}
    build.run(params)
    assert {name: (out / name).read_bytes() for name in before} == before  # same seed, same files
    # build.shorten_requests: a share of the training pairs shortened, the held-out ones never
    assert result.metrics["pairs_shortened"] == 0.0
    shorten = params.build.shorten_requests.model_copy(update={"share": 0.5})
    result = build.run(params.model_copy(update={"build": params.build.model_copy(
        update={"shorten_requests": shorten})}))
    short = read_jsonl(out / "pairs.jsonl")
    assert result.metrics["pairs_shortened"] == sum(bool(r.get("shortened")) for r in short)
    assert 0.4 < result.metrics["pairs_shortened"] / len(short) < 0.6 and len(short) == len(train)
    assert (out / "heldout_pairs.jsonl").read_bytes() == before["heldout_pairs.jsonl"]


@pytest.mark.parametrize("name", ["pairs.jsonl", "heldout_pairs.jsonl"])
@pytest.mark.parametrize("change, rule, field", [
    (lambda r: r.pop("kind"), "record_schema", "kind"),
    (lambda r: r.update(chosen="a reply"), "record_schema", "chosen"),
    (lambda r: r.update(prompt=[{"content": "no role"}]), "record_schema", "prompt.0.role"),
    (lambda r: r.update(rejected=r["chosen"]), "identical_pair", None),
    (lambda r: r.update(id="first"), "duplicate_id", None),
])
def test_a_bad_pair_is_refused_before_training_naming_file_line_id_and_rule(params_factory, name, change, rule, field):
    from components import reward_model
    from components.data.fileio import write_jsonl
    from components.data.inputs import DataError

    params = params_factory()
    splits = params.path("splits")
    rows = pairs.make_pairs(list(episodes("travel")[:40]), ["wrong_tool"], "sys", 6, 3)
    rows[0]["id"] = "first"
    for each in ("pairs.jsonl", "heldout_pairs.jsonl"):
        write_jsonl(splits / each, rows)
    assert reward_model.read_pairs(splits / name) == rows
    change(rows[2])
    write_jsonl(splits / name, rows)
    with pytest.raises(DataError) as err:
        reward_model.run(params)  # refused before any model is loaded (no base model in this workdir)
    assert err.value.where.startswith(f"{splits / name}:3 (id ") and err.value.rule == rule
    assert field is None or err.value.detail.startswith(f"{field}:")


def test_the_report_ranks_wrong_pairs_worst_first_and_keeps_its_tables_intact_whatever_the_ids(tmp_path):
    from components import reward_model

    scored = [{"id": i, "kind": k, "chosen": c, "rejected": r, "margin": c - r, "episode": e} for i, k, c, r, e in [
        ("a|b", "wrong_value", 0.1, 0.9, "e1"), ("line\nbreak", "wrong_value", 0.5, 0.6, "e2"),
        ("ok", "no_call", 2.0, -1.0, "e1"), ("tie", "no_call", 0.0, 0.0, "e1")]]
    table = reward_model.per_class(scored)
    assert [table[k]["requests"] for k in ("no_call", "wrong_value", "all")] == [1, 2, 2]  # distinct episodes
    assert table["wrong_value"]["accuracy"] == 0 and table["no_call"]["accuracy"] == 0.5  # a tie is not a win
    assert table["all"]["n"] == 4 and table["all"]["margin"] == pytest.approx((-0.8 - 0.1 + 3.0 + 0.0) / 4)
    md, png, csv = tmp_path / "rm.md", tmp_path / "rm.png", tmp_path / "rm.csv"
    reward_model.write_report(table, scored, md, png, csv)
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert {len(re.split(r"(?<!\\)\|", line)) for line in rows[:5]} == {7}  # class table: 5 cells each
    assert rows[2].startswith("| no_call | 2 | 1 | 50.0% [")
    assert {len(re.split(r"(?<!\\)\|", line)) for line in rows[5:]} == {6}  # ranked wrong: 4 cells each
    assert [line.split(" | ")[0] for line in rows[7:]] == ["| a\\|b", "| line break", "| tie"]  # worst margin first
    assert csv.read_text().splitlines()[1].startswith('a|b,wrong_value,0.1,0.9,')
    assert csv.read_text().splitlines()[1].endswith(',e1')
    assert png.stat().st_size > 0


def test_on_policy_pairs_put_each_distinct_failure_of_a_request_against_a_success():
    from components.training.selection import Attempts

    made = list(broken("travel", "wrong_value").values())[:3]
    system = {"role": "system", "content": "sys"}

    def conv(ep, rest):
        return [system, *ep.prompt_messages(), *rest]

    (ep1, case1, bad1, err1), (ep2, case2, bad2, _), (ep3, case3, bad3, _) = made
    other = [{"role": "assistant", "content": "I cannot help with that."}]
    attempts = [  # mixed, a failure sampled twice; always solved; never solved
        Attempts({}, [True, False, False, False], [conv(ep1, case1.rest), conv(ep1, bad1), conv(ep1, bad1),
                                                   conv(ep1, other)], [(), tuple(err1), tuple(err1), ("no_call",)]),
        Attempts({}, [True, True], [conv(ep2, case2.rest)] * 2, [(), ()]),
        Attempts({}, [False, False], [conv(ep3, bad3), conv(ep3, other)], [("wrong_value",), ("no_call",)])]
    rows = pairs.on_policy_pairs([ep1, ep2, ep3], attempts, "train")
    assert [(r["episode"], r["kind"], r["split"]) for r in rows] == [(ep1.id, "on_policy", "train")] * 2
    assert [r["errors"] for r in rows] == [list(err1), ["no_call"]]
    assert [r["rejected"] for r in rows] == [bad1, other]
    assert all(r["prompt"] == [system, *ep1.prompt_messages()] and r["chosen"] == case1.rest for r in rows)
    assert len({r["id"] for r in rows}) == 2 and rows[0]["tools"] == ep1.tool_dicts()


@pytest.mark.parametrize("setting, on_policy", [("reward_model.on_policy", True), ("reward_model.start sft", False)])
def test_the_reward_model_stops_before_any_work_when_a_setting_needs_the_sft_model_and_there_is_none(
        params_factory, setting, on_policy):
    from components import reward_model
    from components.config import ConfigError
    from components.data.fileio import write_jsonl

    params = params_factory(reward_model={"start": "base" if on_policy else "sft",
                                          "on_policy": {"episodes": 4 * on_policy, "heldout_episodes": 0}})
    rows = pairs.make_pairs(list(episodes("travel")[:40]), ["wrong_tool"], "sys", 6, 3)
    for name in ("pairs.jsonl", "heldout_pairs.jsonl"):
        write_jsonl(params.path("splits") / name, rows)
    with pytest.raises(ConfigError, match=f"{setting} needs the SFT model, and {params.path('sft_model')} holds none"):
        reward_model.run(params)
    assert not params.path("reward_model").exists()
    assert not (params.path("reports") / "reward_model_on_policy.jsonl").exists()


def test_an_on_policy_success_must_complete_the_task_not_only_call_right():
    """Right calls followed by an answer that states none of the tool's results are exact but not complete: RL's
    prompt choice counts them a success (`exact`); the reward model's on-policy pairs put them below an attempt that
    states the results, as a failure of class `incomplete`."""
    from components.domains import generation
    from components.evaluation import rollout
    from components.training import selection
    from tests.rollouts import gold_rollout

    domain = domains.get("travel")
    chain = next(ep for ep in generation.generate("travel", 40, {"chain": 1.0}, 0.0, seed=3)
                 if ep.expected.outputs)

    vague = gold_rollout(chain, domain)
    vague.messages = [m if m["role"] != "assistant" or m.get("tool_calls") else {**m, "content": "Sorry, I can't."}
                      for m in vague.messages]
    stopped = gold_rollout(chain, domain)  # the first call's result, then no more calls and no answer
    stopped.steps, stopped.final = stopped.steps[:1], None
    stopped.messages = stopped.messages[:1 + next(i for i, m in enumerate(stopped.messages) if m["role"] == "tool")]
    judged = [rollout.judge(ro, chain) for ro in (gold_rollout(chain, domain), vague, stopped)]
    assert judged[1].exact and judged[1].completion is False and not judged[2].exact
    verdicts = [(v, v.rollout["messages"]) for v in judged]
    (loose,) = selection.attempts([chain], verdicts, 3)
    (strict,) = selection.attempts([chain], verdicts, 3, complete=True)
    assert loose.successes == [True, True, False] and strict.successes == [True, False, False]
    assert strict.errors[:2] == [(), ("incomplete",)] and strict.errors[2] == judged[2].errors
    rows = pairs.on_policy_pairs([chain], [strict], "heldout")
    assert [r["errors"] for r in rows] == [["incomplete"], list(judged[2].errors)]
    assert rows[0]["rejected"][-1]["content"] == "Sorry, I can't."
    assert all("Sorry" not in json.dumps(r["chosen"]) for r in rows)
    assert len(pairs.on_policy_pairs([chain], [loose], "heldout")) == 1  # loose: the vague one is a success
