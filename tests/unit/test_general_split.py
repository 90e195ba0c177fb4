"""Open-catalog data that repeats itself: imported records, each with its own tools, some of them repeating a
request (under another id, with the tools in another order, or as an exact copy). The held-out share is drawn per
request, build carves val per request, so the splits share no request; exact copies are counted and, with
`build.drop_duplicates`, dropped."""

from __future__ import annotations

import json
import random

from components import build, ingest, validate
from components.data.episode import read_episodes, user_text
from components.domains import general, sim
from components.domains.general import draw

SHARES = {"single": 0.5, "parallel": 0.3, "irrelevance": 0.2}


def _record(episode, rid: str, tools: list[dict]) -> dict:
    """An episode as an OpenAI chat record with its own tools (arguments as JSON text)."""
    messages = []
    for m in episode.message_dicts():
        if m.get("tool_calls"):
            m = {"role": "assistant", "content": None, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["function"]["name"],
                                                                "arguments": json.dumps(c["function"]["arguments"])}}
                for c in m["tool_calls"]]}
        messages.append(m)
    return {"id": rid, "messages": messages, "tools": tools}


def _write_records(path, params) -> tuple[int, list[dict]]:
    """180 requests of the general generator; a third repeated under a new id with the tools reordered (an exact copy
    where one tool is offered alone), a third copied exactly (another id only). Returns the number of exact copies
    (records equal to an earlier one but for the id) and the records."""
    episodes = draw.generate(general.settings_of(params.general), 180, SHARES, 0.0, 1)
    rng, records = random.Random(0), []
    for k, e in enumerate(episodes):
        tools = e.tool_dicts()
        records.append(_record(e, f"rec-{k}", tools))
        if k % 3 == 1:
            records.append(_record(e, f"again-{k}", tools[::-1]))
        elif k % 3 == 2:
            records.append(_record(e, f"copy-{k}", tools))
    copies, seen = 0, set()
    for r in records:
        key = json.dumps([r["messages"], r["tools"]], sort_keys=True)
        copies += key in seen
        seen.add(key)
    assert copies >= 60  # the third copied exactly, at least
    rng.shuffle(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return copies, records


def _params(params_factory, drop: bool = False):
    return params_factory(project={"domain": "general"},
                          ingest={"source": "none", "shares": SHARES, "imports": [
                              {"source": "openai", "path": "data/imports/mixed.jsonl", "domain": "general",
                               "heldout_fraction": 0.3}]},
                          validate={"min_tool_share": 0.0},
                          build={"val_size": 12, "test_size": {"single": 8, "parallel": 4, "irrelevance": 3},
                                 "drop_duplicates": drop})


def test_repeated_requests_never_straddle_splits_and_copies_are_counted(params_factory):
    params = _params(params_factory)
    copies, records = _write_records(params.path("raw").parents[1] / "imports" / "mixed.jsonl", params)
    # holding out by id would split repeated requests: the data does hold that trap
    by_text: dict[str, set[bool]] = {}
    for e in ingest.source_episodes(params, "openai", str(params.path("raw").parents[1] / "imports" / "mixed.jsonl"),
                                    "general"):
        by_text.setdefault(user_text(e), set()).add(sim.stable_hash(e.id) / 0xFFFFFFFF < 0.3)
    assert any(len(sides) == 2 for sides in by_text.values())

    assert ingest.run(params).metrics["episodes"] == len(records)
    validate.run(params)  # every record checked against its own tools
    result = build.run(params)
    assert result.metrics["duplicate_episodes"] == copies and result.metrics["dropped_duplicates"] == 0
    splits = {name: read_episodes(params.path("splits") / f"{name}.jsonl") for name in ("train", "val", "test")}
    texts = {name: {user_text(e) for e in eps} for name, eps in splits.items()}
    assert texts["train"].isdisjoint(texts["test"]) and texts["val"].isdisjoint(texts["test"])
    calling = {name: {user_text(e) for e in eps if e.expected.steps} for name, eps in splits.items()}
    assert calling["val"].isdisjoint(calling["train"])  # no-call texts may repeat there (leakage_exempt_patterns)
    assert len(splits["test"]) == 15 and len(splits["val"]) >= 12
    assert {len(e.tools) for e in splits["train"]} != {len(splits["train"][0].tools)}  # each record its own tools


def test_drop_duplicates_removes_exact_copies_before_the_split(params_factory):
    params = _params(params_factory, drop=True)
    copies, records = _write_records(params.path("raw").parents[1] / "imports" / "mixed.jsonl", params)
    ingest.run(params)
    result = build.run(params)
    assert result.metrics["dropped_duplicates"] == copies > 0
    raw = read_episodes(params.path("raw"))
    kept = sum(len(read_episodes(params.path("splits") / f"{n}.jsonl")) for n in ("train", "val"))
    trained_copies = sum(e.split != "test" for e in build.duplicates(raw))
    assert kept == sum(e.split != "test" for e in raw) - trained_copies and len(raw) == len(records)
