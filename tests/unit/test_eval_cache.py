"""Evaluation reuse (components/evaluation/cache.py through evaluate.run): real tiny models on disk, real rollouts;
`rollout.run_episodes` is wrapped (the real function still runs) only to count how often generation happens."""

import json
import os

import pytest

from components import evaluate
from components.data.fileio import write_jsonl
from components.domains import generation
from components.evaluation import cache, rollout
from components.evaluation.verdict import Verdict
from components.training import models
from tests.unit.test_evaluate import SHARES, _tiny_chat_model

EVALUATE = {"models": ["base", "sft"], "batch_size": 8, "max_new_tokens": 4, "max_turns": 1,
            "compare_champion": False, "samples": 1, "reuse": True, "handwritten": None}


@pytest.fixture
def counted(monkeypatch):
    """The episodes `rollout.run_episodes` was asked to roll out, one list per call (the real loop still runs)."""
    calls, real = [], rollout.run_episodes

    def wrapper(model, tok, episodes, *args, **kwargs):
        calls.append([e.id for e in episodes])
        return real(model, tok, episodes, *args, **kwargs)

    monkeypatch.setattr(rollout, "run_episodes", wrapper)
    return calls


def _setup(params, seeds=(0, 1), split_seed=6):
    """Tiny base and sft models on disk (random weights from `seeds`) and a 4-episode test split."""
    for key, seed in zip(("base", "sft_model"), seeds):
        model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=seed)
        models.save(model, tok, params.path(key), {"spec": "tiny", "seed": seed})
    write_jsonl(params.path("splits") / "test.jsonl",
                [e.model_dump(mode="json") for e in generation.generate("travel", 4, SHARES, 0.0, seed=split_seed)])


def _entries(params):
    """Cache entry folder -> the mtimes of its files (nanoseconds)."""
    root = params.path("eval_cache")
    return {d.name: {f.name: f.stat().st_mtime_ns for f in d.iterdir()} for d in sorted(root.iterdir())
            if not d.name.startswith(".")} if root.is_dir() else {}


def test_second_run_reads_both_models_from_the_cache_without_generating(params_factory, counted):
    params = params_factory(evaluate=EVALUATE)
    _setup(params)
    first = evaluate.run(params).metrics
    assert len(counted) == 2 and first["base.cached"] == first["sft.cached"] == 0.0
    entries = _entries(params)
    assert len(entries) == 2 and all(set(files) == {"entry.json", "rows.jsonl"} for files in entries.values())
    rollouts = (params.path("reports") / "evaluate" / "base_rollouts.jsonl").read_text()
    (params.path("reports") / "evaluate" / "base_rollouts.jsonl").unlink()

    second = evaluate.run(params).metrics
    assert len(counted) == 2  # no generation at all on the second run
    assert second["base.cached"] == second["sft.cached"] == 1.0
    assert {k: v for k, v in second.items() if not k.endswith(".cached")} == {
        k: v for k, v in first.items() if not k.endswith(".cached")}  # same numbers, same paired tests
    assert _entries(params) == entries  # read, never rewritten
    assert (params.path("reports") / "evaluate" / "base_rollouts.jsonl").read_text() == rollouts
    md = (params.path("reports") / "evaluate.md").read_text()
    assert "Read from the evaluation cache (artifacts/eval_cache), not recomputed: base (test split), sft (test " \
           "split)." in md


def test_a_changed_model_or_test_split_is_recomputed_and_reuse_false_recomputes_all(params_factory, counted):
    params = params_factory(evaluate=EVALUATE)
    _setup(params)
    evaluate.run(params)
    assert len(counted) == 2

    _setup(params, seeds=(0, 2))  # a retrained sft: new weights; the base is rewritten with the same ones
    after_sft = evaluate.run(params).metrics
    assert len(counted) == 3 and (after_sft["base.cached"], after_sft["sft.cached"]) == (1.0, 0.0)
    assert len(_entries(params)) == 3  # the old sft's entry stays, for a rollback to it

    _setup(params, seeds=(0, 2), split_seed=7)  # a new test split: every model is recomputed on it
    new_split = evaluate.run(params).metrics
    assert len(counted) == 5 and new_split["base.cached"] == new_split["sft.cached"] == 0.0
    assert counted[-1] == [json.loads(line)["id"] for line in
                           (params.path("splits") / "test.jsonl").read_text().splitlines()]

    off = params_factory(evaluate=EVALUATE | {"reuse": False})
    entries = _entries(off)
    assert evaluate.run(off).metrics["base.cached"] == 0.0 and len(counted) == 7
    assert _entries(off) == entries  # reuse off: nothing read, nothing written


@pytest.mark.parametrize("damage", ["truncated_rows", "bad_entry_json", "no_rows", "other_key", "empty_folder"])
def test_a_corrupt_or_half_written_entry_is_recomputed_not_trusted(params_factory, counted, damage):
    params = params_factory(evaluate=EVALUATE | {"models": ["base"]})
    _setup(params)
    first = evaluate.run(params).metrics
    (folder,) = [params.path("eval_cache") / name for name in _entries(params)]
    rows, meta = folder / "rows.jsonl", folder / "entry.json"
    if damage == "truncated_rows":
        rows.write_text(rows.read_text()[:-40])  # a write cut short: the last line is broken JSON
    elif damage == "bad_entry_json":
        meta.write_text(meta.read_text()[:30])
    elif damage == "no_rows":
        rows.unlink()
    elif damage == "other_key":
        meta.write_text(json.dumps(json.loads(meta.read_text()) | {"key": "0" * 64}))
    else:
        for f in folder.iterdir():
            f.unlink()
    again = evaluate.run(params).metrics
    assert len(counted) == 2 and again["base.cached"] == 0.0  # recomputed
    assert again["base.exact"] == first["base.exact"] and again["base.n"] == first["base.n"]
    assert cache.load(params.path("eval_cache"), folder.name, evaluate.read_episodes(
        params.path("splits") / "test.jsonl")) is not None  # and stored whole again
    assert evaluate.run(params).metrics["base.cached"] == 1.0 and len(counted) == 2


def test_a_row_count_that_does_not_match_the_episodes_is_a_miss(params_factory):
    params = params_factory()
    episodes = generation.generate("travel", 3, SHARES, 0.0, seed=1)
    rows = [Verdict.from_row({"id": e.id, "pattern": e.pattern, "exact": True, "errors": []}) for e in episodes]
    root = params.path("eval_cache")
    cache.store(root, "k", cache.Entry({"exact": 1.0}, rows[:2]), {})
    assert cache.load(root, "k", episodes) is None  # a row lost: not the same evaluation
    cache.store(root, "k", cache.Entry({"exact": 1.0}, rows), {})
    assert cache.load(root, "k", episodes) == cache.Entry({"exact": 1.0}, rows)
    assert cache.load(root, "k", episodes[::-1]) is None and cache.load(root, "missing", episodes) is None


def test_a_stored_result_reads_back_and_a_damaged_or_foreign_one_is_a_miss(tmp_path):
    """`store_result` / `load_result` (the on-policy attempts): the value back as stored; a cut-short file, another
    key's file or no file is None, never an error."""
    root, result = tmp_path / "cache", {"rows": [{"id": "e1", "chosen": [{"role": "assistant"}]}], "outcomes": [True]}
    folder = cache.store_result(root, "k", result, {"what": "test"})
    assert cache.load_result(root, "k") == result and cache.load_result(root, "other") is None
    text = (folder / "result.json").read_text()
    (folder / "result.json").write_text(text[:-10])
    assert cache.load_result(root, "k") is None
    (folder / "result.json").write_text(json.dumps(json.loads(text) | {"key": "0" * 64}))
    assert cache.load_result(root, "k") is None
    cache.store_result(root, "k", [1, 2], {})  # replaced whole
    assert cache.load_result(root, "k") == [1, 2]


def test_key_parts_follow_what_changes_the_outputs(params_factory, tmp_path):
    params = params_factory()
    model, tok = _tiny_chat_model(params, "travel tools weather flights", seed=0)
    folder = tmp_path / "m"
    models.save(model, tok, folder, {"spec": "tiny"})
    before = cache.model_hash(folder)
    (folder / "tooltune.json").write_text('{"spec": "tiny", "note": "a description changes no output"}')
    assert cache.model_hash(folder) == before
    (folder / "tokenizer_config.json").write_text((folder / "tokenizer_config.json").read_text() + " ")
    assert cache.model_hash(folder) != before  # the tokenizer (and its chat template) shape the prompts
    assert cache.model_hash(tmp_path / "absent") is None and cache.model_hash(tmp_path) is None  # no weights: no key
    a, b = generation.generate("travel", 3, SHARES, 0.0, seed=1), generation.generate("travel", 3, SHARES, 0.0, seed=2)
    assert cache.episodes_hash(a) == cache.episodes_hash(list(a)) != cache.episodes_hash(b)
    edited = [a[0].model_copy(update={"id": a[0].id + "x"}), *a[1:]]
    assert cache.episodes_hash(edited) != cache.episodes_hash(a)
    assert cache.code_hash() == cache.code_hash() != cache.code_hash(("components/training/pairs.py",))
    k = cache.key("m", "e", {"max_new_tokens": 4}, "c")
    assert k == cache.key("m", "e", {"max_new_tokens": 4}, "c") != cache.key("m", "e", {"max_new_tokens": 5}, "c")
    assert len({k, cache.key("m2", "e", {"max_new_tokens": 4}, "c"), cache.key("m", "e2", {"max_new_tokens": 4}, "c"),
                cache.key("m", "e", {"max_new_tokens": 4}, "c2")}) == 4


def test_a_gpu_evaluation_is_keyed_apart_from_a_cpu_one(params_factory, monkeypatch):
    """bf16 on a GPU does not give the CPU's fp32 numbers: device and dtype are part of the key."""
    import torch

    params = params_factory()
    monkeypatch.setattr(models, "inference_device", lambda: torch.device("cpu"))
    assert cache.placement(params) == {"device": "cpu", "dtype": "torch.float32"}
    monkeypatch.setattr(models, "inference_device", lambda: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert cache.placement(params) == {"device": "cuda", "dtype": "torch.bfloat16"}


def test_evaluation_code_is_part_of_the_key(tmp_path, monkeypatch):
    """An edit to any file of cache.CODE (here a copy of the tree) changes the code hash."""
    import shutil

    root = tmp_path / "repo"
    for part in cache.CODE:
        src, dst = cache.ROOT / part, root / part
        shutil.copytree(src, dst) if src.is_dir() else (dst.parent.mkdir(parents=True, exist_ok=True),
                                                         shutil.copy(src, dst))
    monkeypatch.setattr(cache, "ROOT", root)
    before = cache.code_hash()
    scorer = next((root / "components" / "toolcalls").rglob("*.py"))
    scorer.write_text(scorer.read_text() + "\n# an edit\n")
    edited = cache.code_hash()
    assert edited != before
    os.utime(scorer, (1, 1))  # a touch alone (mtime) is no change: the hash reads content
    assert cache.code_hash() == edited
