"""Chunked synthetic generation: the same episodes in one process or several, requests unique across chunks,
ingest's file independent of `ingest.workers`, and a failing child process named in the error."""

import pytest

from components.data import child
from components import ingest
from components.domains import finance, finance_tasks, tasks, travel_tasks
from components.data.episode import Episode, Tool, read_episodes

ALL = {"single": 0.3, "parallel": 0.15, "chain": 0.15, "recovery": 0.15, "irrelevance": 0.1, "multi_turn": 0.15}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 25 episodes and a worker for every chunk, so a few hundred episodes use child processes."""
    monkeypatch.setattr(tasks, "CHUNK", 25)
    monkeypatch.setattr(tasks, "CHUNKS_PER_WORKER", 1)


def test_children_draw_the_episodes_one_process_draws(small_chunks):
    episodes = travel_tasks.generate(240, ALL, 0.25, seed=4)
    alone = travel_tasks.generate_lines(240, ALL, 0.25, seed=4, workers=1)
    spread = travel_tasks.generate_lines(240, ALL, 0.25, seed=4, workers=3)
    assert spread == alone == [tasks.Generated.of(e) for e in episodes]
    assert [Episode.model_validate_json(g.line) for g in spread] == episodes
    assert [e.id for e in episodes] == [f"travel-{'h' if e.split == 'test' else 't'}-{i:06d}"
                                        for i, e in enumerate(episodes)]
    assert {e.pattern for e in episodes} == set(ALL) and 0.1 < sum(g.held for g in spread) / 240 < 0.4


def test_unique_requests_hold_across_chunks(small_chunks):
    shares = {"single": 0.6, "parallel": 0.2, "irrelevance": 0.2}
    tools = [Tool.model_validate(t) for t in finance.catalog()]
    patterns = tasks._patterns(400, shares, 9)
    chunks = [e for c in range(0, 400, 25)
              for e in tasks._chunk(finance_tasks.make_episode, tools, patterns, c, c + 25, 0.2, 9, True)]
    drawn_keys = [tasks.request_key(e) for e in chunks if tasks.request_key(e)]
    assert len(set(drawn_keys)) < len(drawn_keys)  # the chunks alone repeat requests: the test has teeth

    lines = finance_tasks.generate_lines(400, shares, 0.2, seed=9, workers=2)
    assert lines == [tasks.Generated.of(e) for e in finance_tasks.generate(400, shares, 0.2, seed=9)]
    keys = [g.key for g in lines if g.key]
    assert len(keys) == len(set(keys)) and len(lines) == 400
    redrawn = [i for i, (g, e) in enumerate(zip(lines, chunks)) if g != tasks.Generated.of(e)]
    assert redrawn and all(lines[i].held == (chunks[i].split == "test") for i in redrawn)  # splits kept


def test_ingest_file_is_the_same_for_any_number_of_workers(params_factory, small_chunks):
    files = []
    for workers in (1, 2):
        params = params_factory(ingest={"n_episodes": 150, "workers": workers})
        result = ingest.run(params)
        files.append(params.path("raw").read_bytes())
        assert result.metrics["episodes"] == 150 and result.metrics["source_synthetic"] == 150
    assert files[0] == files[1]
    episodes = read_episodes(params.path("raw"))
    assert sum(e.split == "test" for e in episodes) == result.metrics["heldout_episodes"]


def test_a_failing_child_is_named_with_its_last_error_lines(tmp_path):
    with child.started("components.domains.tasks", [str(tmp_path / "missing.pkl"), str(tmp_path / "out.pkl")],
                       "generating episodes (test)") as wait:
        with pytest.raises(RuntimeError, match=r"generating episodes \(test\) failed \(exit 1\): .*missing\.pkl"):
            wait()
    assert not (tmp_path / "out.pkl").exists()
