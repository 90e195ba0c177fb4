"""Stage `build`: train/val/test splits and the SFT, preference and RL datasets.

Reads: `paths.raw` (validated episodes), params `build`, `base.system_prompt`.
Writes: `paths.splits/` with train/val/test.jsonl (episodes), sft.jsonl (messages + tools JSON string),
pairs.jsonl (prompt/chosen/rejected/tools: a good trajectory and the same one with a mistake of one error class
of the scorer, from the train split; `build.shorten_requests.share` of them with words of the user turns dropped,
metric `pairs_shortened`), heldout_pairs.jsonl (the same from the val and test splits: the reward model's
held-out accuracy per class) and rl.jsonl (prompt, expected, goal).
The folder is written aside, checked across splits (`validate.validate_splits`: unique ids, no user text in two
splits) and only then swapped in, so a failure or a leak leaves the previous build intact. Exact duplicates (same
tools, messages and expected steps) are counted (metric `duplicate_episodes`) and, with `build.drop_duplicates`,
dropped before the split; val is carved in whole groups of the same request, as ingest holds imported requests out
(components/data/imports.py), so a repeated request never straddles two splits.
Run: `python -m components.build`.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

from components.config import Params
from components.data.episode import DataError, Episode, read_episodes, user_text, write_episodes
from components.data.draw import quotas
from components.data.fileio import atomic_dir, write_jsonl
from components.training.pairs import make_pairs
from components.result import StageResult
from components.validate import validate_splits


def split(episodes: list[Episode], params: Params) -> dict[str, list[Episode]]:
    """Test comes from held-out episodes (held-out templates and values); val and train from the rest, val taken as
    whole groups of episodes with the same request (`user_text`), so a repeated request never straddles them.
    Each side is shuffled by a random stream of its own, so episodes added to the training side (twins, a pool's
    training requests) leave the test split as it was and models trained on either dataset pair on one test."""
    pool = {"train": [e for e in episodes if e.split != "test"], "test": [e for e in episodes if e.split == "test"]}
    random.Random(params.project.seed).shuffle(pool["train"])
    random.Random(f"{params.project.seed}/test").shuffle(pool["test"])
    test = []
    for pattern, n in params.build.test_size.items():
        chosen = [e for e in pool["test"] if e.pattern == pattern][:n]
        if len(chosen) < n:
            raise DataError(f"{params.path('raw')}: rule 'test_size': {len(chosen)} held-out {pattern} episodes, "
                            f"build.test_size asks for {n}")
        test += chosen
    val, train = _carve(pool["train"], params.build.val_size, list(params.validate_.leakage_exempt_patterns))
    return {"train": [_tag(e, "train") for e in train], "val": [_tag(e, "val") for e in val],
            "test": [_tag(e, "test") for e in test]}


def _carve(episodes: list[Episode], n: int, exempt: list[str]) -> tuple[list[Episode], list[Episode]]:
    """(about `n` episodes, the rest), in their order, split between groups of the same request only (the first
    group that reaches `n` is taken whole); episodes of the `exempt` patterns, whose texts may repeat across splits
    (`validate.leakage_exempt_patterns`), are groups of one."""
    groups: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        groups[f"id:{e.id}" if e.pattern in exempt else user_text(e)].append(e)
    first, rest = [], []
    for group in groups.values():
        (first if len(first) < n else rest).extend(group)
    return first, rest


def duplicates(episodes: list[Episode]) -> list[Episode]:
    """The exact duplicates: episodes whose tools, messages and expected steps repeat an earlier one's (ids and
    split tags aside), in order."""
    seen: set[str] = set()
    out = []
    for e in episodes:
        key = e.model_dump_json(include={"tools", "messages", "expected"})
        if key in seen:
            out.append(e)
        seen.add(key)
    return out


def _tag(ep: Episode, name: str) -> Episode:
    return ep.model_copy(update={"split": name})


def sft_rows(episodes: list[Episode], system_prompt: str) -> list[dict]:
    """Conversational SFT rows (`Episode.sft_row`)."""
    return [e.sft_row(system_prompt) for e in episodes]


def rl_prompts(episodes: list[Episode], n: int, system_prompt: str, seed: int) -> list[dict]:
    """Prompts for GRPO with what the reward needs: the expected steps, goal state and outputs; `tools` (JSON) for the
    single-step fallback, which renders each prompt with its own catalog.

    Stratified by pattern: each pattern's count is its share of `episodes` (largest remainder), and a pattern whose
    share rounds to 0 takes one from the largest, so every pattern is in the pool while `n` allows; prompts are
    drawn at random within a pattern. (A plain draw of 64 of the default run's 1,741 episodes left 1 parallel prompt
    where its share is 7.)
    """
    rng = random.Random(seed)
    by: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        by[e.pattern].append(e)
    counts = quotas({p: len(items) for p, items in by.items()}, min(n, len(episodes)))
    for p in sorted(p for p, c in counts.items() if c == 0):
        largest = max(sorted(counts), key=counts.__getitem__)
        if counts[largest] > 1:
            counts[largest], counts[p] = counts[largest] - 1, 1
    chosen = [e for p in sorted(by) for e in rng.sample(by[p], counts[p])]
    rng.shuffle(chosen)
    return [{"id": e.id, "pattern": e.pattern,
             "prompt": [{"role": "system", "content": system_prompt}] + e.prompt_messages(),
             "expected": json.dumps([[c.model_dump() for c in s] for s in e.expected.steps]),
             "goal": json.dumps(e.expected.goal), "outputs": json.dumps(e.expected.outputs),
             "tools": json.dumps(e.tool_dicts())} for e in chosen]


def run(params: Params) -> StageResult:
    episodes = read_episodes(params.path("raw"))
    repeated = duplicates(episodes)
    if params.build.drop_duplicates and repeated:
        dropped = {id(e) for e in repeated}
        episodes = [e for e in episodes if id(e) not in dropped]
    parts = split(episodes, params)
    system = params.base.system_prompt
    cfg = params.build
    pairs = make_pairs(parts["train"], cfg.pair_kinds, system, params.project.seed, cfg.pairs_per_class,
                       (cfg.shorten_requests.share, cfg.shorten_requests.rate))
    heldout = make_pairs(parts["val"] + parts["test"], cfg.pair_kinds, system, params.project.seed,
                         cfg.heldout_pairs_per_class)
    out = params.path("splits")
    with atomic_dir(out) as tmp:
        for name, items in parts.items():
            write_episodes(tmp / f"{name}.jsonl", items)
        write_jsonl(tmp / "sft.jsonl", sft_rows(parts["train"], system))
        write_jsonl(tmp / "pairs.jsonl", pairs)
        write_jsonl(tmp / "heldout_pairs.jsonl", heldout)
        write_jsonl(tmp / "rl.jsonl", rl_prompts(parts["train"], params.build.rl_prompts, system, params.project.seed))
        validate_splits(tmp, params, out)  # a leak across splits fails here, before the folder is swapped in
    metrics = {f"{k}_episodes": float(len(v)) for k, v in parts.items()}
    metrics |= {"duplicate_episodes": float(len(repeated)),
                "dropped_duplicates": float(len(repeated) if params.build.drop_duplicates else 0)}
    metrics["pairs_shortened"] = float(sum(bool(p.get("shortened")) for p in pairs))
    for name, rows in (("pairs", pairs), ("heldout_pairs", heldout)):
        metrics |= {f"{name}_{k}": float(c) for k, c in sorted(Counter(p["kind"] for p in rows).items())}
    return StageResult(stage="build", outputs={"splits": str(out)}, metrics=metrics)


def main() -> None:
    from components.tracking import stage_main

    stage_main("build")


if __name__ == "__main__":
    main()
