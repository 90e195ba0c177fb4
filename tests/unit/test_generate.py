"""Chunked synthetic generation: one `generate(domain, ...)` for every built-in domain, the same episodes in one
process or several, requests unique across chunks, ingest's file independent of `ingest.workers`, and a failing
child process named in the error."""

import pytest

from components.data import child
from components import ingest
from components.domains import finance, generation, phrasing
from components.data.episode import Episode, Tool, read_episodes

ALL = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.15, "irrelevance": 0.1, "multi_turn": 0.15}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 25 episodes and a worker for every chunk, so a few hundred episodes use child processes."""
    monkeypatch.setattr(generation, "CHUNK", 25)
    monkeypatch.setattr(generation, "CHUNKS_PER_WORKER", 1)


@pytest.mark.parametrize("domain", ["travel", "finance"])
def test_children_draw_the_episodes_one_process_draws(small_chunks, domain):
    episodes = generation.generate(domain, 240, ALL, 0.25, seed=4)
    alone = generation.generate_lines(domain, 240, ALL, 0.25, seed=4, workers=1)
    spread = generation.generate_lines(domain, 240, ALL, 0.25, seed=4, workers=3)
    assert spread == alone == [generation.Generated.of(e) for e in episodes]
    assert [Episode.model_validate_json(g.line) for g in spread] == episodes
    assert [e.id.split("-")[:3] for e in episodes] == [[domain, "h" if e.split == "test" else "t", f"{i:06d}"]
                                                       for i, e in enumerate(episodes)]
    assert {e.pattern for e in episodes} == set(ALL) and 0.1 < sum(g.held for g in spread) / 240 < 0.4
    assert all(e.domain == domain for e in episodes)


def test_same_seed_same_episodes_other_seed_others():
    first = generation.generate("travel", 120, ALL, 0.25, seed=11)
    assert generation.generate("travel", 120, ALL, 0.25, seed=11) == first
    other = generation.generate("travel", 120, ALL, 0.25, seed=12)
    assert sum(a.messages[0].content == b.messages[0].content for a, b in zip(first, other)) < 10


@pytest.mark.parametrize("domain", ["travel", "general"])
def test_a_training_side_change_leaves_the_test_split_as_it_was(monkeypatch, domain):
    """A new training-only date format changes training episodes, not the held-out ones: models trained before and
    after the change compare on the same test episodes."""
    if domain == "general":
        from components.config import load_params
        from components.domains import general
        from components.domains.general import draw as general_draw
        from tests.conftest import REPO

        settings = general.settings_of(load_params(REPO / "params.yaml", profile="general").general)
        draw = lambda: general_draw.generate(settings, 300, {"single": 0.5, "parallel": 0.5}, 0.3, seed=5)  # noqa: E731
    else:
        draw = lambda: generation.generate("travel", 300, ALL, 0.3, seed=5)  # noqa: E731
    before = draw()
    train_dates, held_dates = phrasing.DATES
    monkeypatch.setattr(phrasing, "DATES", (["day_mon"] * 3 + train_dates, held_dates))
    after = draw()
    test = [e for e in before if e.split == "test"]
    assert len(test) > 40 and test == [e for e in after if e.split == "test"]
    changed = [(a, b) for a, b in zip(before, after) if a.split != "test" and a != b]
    assert len(changed) > 40 and [a.split for a, _ in changed] == [b.split for _, b in changed]


def test_domain_registry_binds_the_shared_generator():
    from components import domains

    for name in ("travel", "finance"):
        assert domains.get(name).generate(30, ALL, 0.2, 3) == generation.generate(name, 30, ALL, 0.2, 3)
    with pytest.raises(KeyError, match="unknown domain"):
        generation.generate("clinic", 10, ALL, 0.2, 3)


def test_unique_requests_hold_across_chunks(small_chunks, monkeypatch):
    # Terse requests only ("AAPL price?"): few enough phrasings that chunks repeat requests (the varied voices
    # of the default pools rarely do at this size). In-process only: child processes would not see the patch.
    monkeypatch.setattr(phrasing, "STYLES", (["terse"], ["terse"]))
    shares = {"single": 0.6, "parallel": 0.2, "irrelevance": 0.2}
    tools = [Tool.model_validate(t) for t in finance.catalog()]
    patterns = generation.pattern_list(400, shares, 9)
    chunks = [e for c in range(0, 400, 25)
              for e in generation._chunk("finance", tools, patterns, c, c + 25, 0.2, 9)]
    drawn_keys = [generation.request_key(e) for e in chunks if generation.request_key(e)]
    assert len(set(drawn_keys)) < len(drawn_keys)  # the chunks alone repeat requests: the test has teeth

    lines = [generation.Generated.of(e) for e in generation.generate("finance", 400, shares, 0.2, seed=9)]
    keys = [g.key for g in lines if g.key]
    assert len(keys) == len(set(keys)) and len(lines) == 400
    redrawn = [i for i, (g, e) in enumerate(zip(lines, chunks)) if g != generation.Generated.of(e)]
    assert redrawn and all(lines[i].held == (chunks[i].split == "test") for i in redrawn)  # splits kept


def test_ingest_file_is_the_same_for_any_number_of_workers(params_factory, small_chunks):
    files = []
    for workers in (1, 2):
        params = params_factory(ingest={"n_episodes": 150, "workers": workers})
        result = ingest.run(params)
        files.append(params.path("raw").read_bytes())
        assert result.metrics["episodes"] == 150 and result.metrics["source_synthetic"] == 150  # no pool: built in
    assert files[0] == files[1]
    episodes = read_episodes(params.path("raw"))
    assert sum(e.split == "test" for e in episodes) == result.metrics["heldout_episodes"]


def test_a_failing_child_is_named_with_its_last_error_lines(tmp_path):
    with child.started("components.domains.generation", [str(tmp_path / "missing.pkl"), str(tmp_path / "out.pkl")],
                       "generating episodes (test)") as wait:
        with pytest.raises(RuntimeError, match=r"generating episodes \(test\) failed \(exit 1\): .*missing\.pkl"):
            wait()
    assert not (tmp_path / "out.pkl").exists()
