"""build: held-out test split, SFT rows, preference pairs broken in named ways and verified wrong (more on the pairs:
test_pairs.py)."""

import json
from collections import Counter

from components import build, ingest
from components.data.episode import read_episodes
from components.data.fileio import read_jsonl


def test_build_splits_and_datasets(params_factory):
    params = params_factory()
    ingest.run(params)
    result = build.run(params)
    out = params.path("splits")
    test = read_episodes(out / "test.jsonl")
    train = read_episodes(out / "train.jsonl")
    assert {e.split for e in test} == {"test"} and {e.split for e in train} == {"train"}
    assert not {e.id for e in test} & {e.id for e in train}
    wanted = params.build.test_size
    assert {p: sum(e.pattern == p for e in test) for p in wanted} == wanted
    train_users = {e.messages[0].content for e in train}
    assert not any(e.messages[0].content in train_users for e in test if e.pattern != "irrelevance")
    sft = read_jsonl(out / "sft.jsonl")
    assert sft[0]["messages"][0] == {"role": "system", "content": params.base.system_prompt}
    assert isinstance(sft[0]["tools"], str) and json.loads(sft[0]["tools"])[0]["type"] == "function"
    pairs = read_jsonl(out / "pairs.jsonl")
    # every class but unexpected_argument (no built-in tool has an optional parameter)
    assert {p["kind"] for p in pairs} == set(params.build.pair_kinds) - {"unexpected_argument"}
    assert all(p["chosen"] != p["rejected"] and p["kind"] in p["errors"] for p in pairs)
    assert result.metrics["pairs_wrong_value"] == sum(p["kind"] == "wrong_value" for p in pairs) > 0
    rl = read_jsonl(out / "rl.jsonl")
    assert len(rl) == params.build.rl_prompts and rl[0]["prompt"][-1]["role"] == "user"
    assert result.metrics["test_episodes"] == sum(wanted.values())


def test_rl_prompts_are_stratified_by_pattern(params_factory):
    params = params_factory()
    ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    # a pool where a plain draw of 12 often misses the rare pattern: 40 single, 6 chain, 2 parallel
    by = {p: [e for e in episodes if e.pattern == p] for p in ("single", "chain", "parallel")}
    pool = by["single"][:40] + by["chain"][:6] + by["parallel"][:2]
    counts = {p: len(items) for p, items in by.items()}
    assert counts["single"] >= 40 and counts["chain"] >= 6 and counts["parallel"] >= 2, counts
    for seed in range(5):
        rows = build.rl_prompts(pool, 12, "sys", seed)
        # shares 10.0, 1.5, 0.5 of 12: floors 10, 1, 0; the one left goes to chain (a tie, by name); parallel,
        # at 0, takes one from single
        assert Counter(r["pattern"] for r in rows) == {"single": 9, "chain": 2, "parallel": 1}
        assert len({r["id"] for r in rows}) == 12
    assert build.rl_prompts(pool, 12, "sys", 0) == build.rl_prompts(pool, 12, "sys", 0)
    assert build.rl_prompts(pool, 12, "sys", 0) != build.rl_prompts(pool, 12, "sys", 1)
    assert len(build.rl_prompts(pool, 100, "sys", 0)) == len(pool)  # asked for more than there are: all of them


def test_failed_build_keeps_previous_output(params_factory):
    params = params_factory()
    ingest.run(params)
    build.run(params)
    before = (params.path("splits") / "test.jsonl").read_bytes()
    big = params_factory(build={"test_size": {"single": 10_000}})
    try:
        build.run(big)
    except Exception as err:  # DataError naming the rule
        assert "test_size" in str(err) and "episodes.jsonl" in str(err)
    else:
        raise AssertionError("build accepted an impossible test size")
    assert (params.path("splits") / "test.jsonl").read_bytes() == before


def test_default_params_fill_a_test_split_of_300_with_40_of_every_pattern(params_factory):
    """The default ingest (2400 episodes, a quarter held out) holds enough of every pattern for build.test_size, in
    both built-in domains; the held-out test is >= 300 episodes, >= 40 of every pattern."""
    from components import domains

    for name in ("travel", "finance"):
        params = params_factory(profile=None, project={"domain": name})
        wanted, cfg = params.build.test_size, params.ingest
        assert sum(wanted.values()) >= 300 and min(wanted.values()) >= 40 and set(wanted) == set(cfg.shares)
        episodes = domains.get(name).generate(cfg.n_episodes, cfg.shares, cfg.heldout_fraction, params.project.seed)
        test = build.split(episodes, params)["test"]
        assert {p: sum(e.pattern == p for e in test) for p in wanted} == wanted


def test_training_only_episodes_leave_the_test_split_as_it_was(params_factory):
    """Twins or a pool's training requests added to the training side draw no other test sample: each side is
    shuffled by its own random stream (the test sample before and after is the same list, in the same order)."""
    params = params_factory()
    ingest.run(params)
    episodes = read_episodes(params.path("raw"))
    extra = [e.model_copy(update={"id": f"{e.id}-extra"}) for e in episodes if e.split != "test"][:50]
    assert extra, "the quick profile's ingest wrote no training episodes"
    before = build.split(episodes, params)
    after = build.split(episodes + extra, params)
    assert [e.id for e in after["test"]] == [e.id for e in before["test"]]
    assert len(after["train"]) + len(after["val"]) == len(before["train"]) + len(before["val"]) + len(extra)
