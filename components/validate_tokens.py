"""Token lengths for the validate stage's `max_tokens` rule, with the base model's tokenizer.

Reads: the tokenizer saved in `paths.base` (`load_tokenizer`). Writes: nothing.
`token_counts` gives each episode's length rendered with the tokenizer's chat template, tools included: what
`len(apply_chat_template(episode))` gives, computed in batches that a worker thread encodes while the next one
is rendered.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from components.episode import Episode

TOKEN_BATCH = 512  # episodes rendered and tokenized per call of the tokenizer
QUEUED_BATCHES = 4  # rendered batches waiting for the encoder thread at most (bounds the texts held)
CUT_CHECKS = 16  # episodes of each batch also encoded whole, to check the shared-prefix cut


def load_tokenizer(folder: Path) -> Any | None:
    """The base model's tokenizer saved in `folder`, or None when the folder does not exist."""
    if not folder.is_dir():
        return None
    from transformers import AutoTokenizer  # heavy import, only when there is a tokenizer to load

    return AutoTokenizer.from_pretrained(str(folder))


def count_tokens(tokenizer: Any, episode: Episode) -> int:
    """Length of the episode rendered with the tokenizer's chat template, tools included."""
    return token_counts(tokenizer, [episode])[0]


def token_counts(tokenizer: Any, episodes: list[Episode]) -> list[int]:
    """Rendered length of each episode, tools included: what `len(apply_chat_template(episode))` gives.

    Episodes that share a catalog are rendered in batches (the tool dicts built once per catalog) and
    encoded in one call per batch. The rendered text shared by a batch (the system turn listing the tools,
    about half of a short episode) is encoded once: `_shared_prefix` cuts it right before a special token,
    where the tokenizer splits its input anyway, and the cut is checked on the first episodes.

    Rendering is Python and holds the GIL; a fast tokenizer encodes in Rust and releases it. So a worker
    thread encodes each batch while the next one is rendered, and the two overlap on two cores; each count
    goes to its episode's index, so the result does not depend on timing.
    """
    counts = [0] * len(episodes)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-counts") as encoder:
        queued: deque[tuple[list[int], Future[list[int]]]] = deque()
        for batch, texts in _rendered_batches(tokenizer, episodes):
            queued.append((batch, encoder.submit(_lengths, tokenizer, texts)))
            if len(queued) > QUEUED_BATCHES:
                _store(counts, *queued.popleft())
        while queued:
            _store(counts, *queued.popleft())
    return counts


def _rendered_batches(tokenizer: Any, episodes: list[Episode]) -> Iterator[tuple[list[int], list[str]]]:
    """(episode indexes, their texts rendered with the chat template) per batch of episodes sharing a catalog."""
    groups: dict[int, list[int]] = {}
    for i, ep in enumerate(episodes):
        groups.setdefault(id(ep.tools), []).append(i)
    for members in groups.values():
        tools = episodes[members[0]].tool_dicts()
        for batch in _chunks(members, TOKEN_BATCH):
            yield batch, tokenizer.apply_chat_template([episodes[i].message_dicts() for i in batch], tools=tools,
                                                       tokenize=False)


def _store(counts: list[int], batch: list[int], lengths: Future[list[int]]) -> None:
    """Put a batch's counts at its episodes' indexes (raises what the encoder thread raised)."""
    for i, n in zip(batch, lengths.result()):
        counts[i] = n


def _lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts of rendered texts (`add_special_tokens=False`, as `apply_chat_template` encodes them)."""
    cut = _shared_prefix(tokenizer, texts)
    whole = _encode_lengths(tokenizer, texts[:CUT_CHECKS])
    if cut:
        shared = _encode_lengths(tokenizer, [texts[0][:cut]])[0]
        lengths = [shared + n for n in _encode_lengths(tokenizer, [t[cut:] for t in texts])]
        if lengths[:CUT_CHECKS] == whole:
            return lengths
    return whole + _encode_lengths(tokenizer, texts[CUT_CHECKS:])


def _shared_prefix(tokenizer: Any, texts: list[str]) -> int:
    """Length of the text all `texts` start with, cut right before a special token (0: no such cut).

    The tokenizer splits its input at added tokens before anything else, so the parts before and after
    such a token are encoded independently; only tokens that do not strip or normalise their left side qualify.
    """
    if len(texts) <= CUT_CHECKS:
        return 0
    common = os.path.commonprefix(texts)
    special = [t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values()
               if t.special and not t.lstrip and not t.normalized]
    return max([common.rfind(token) for token in special] + [0])


def _encode_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Token counts; a fast tokenizer skips the offsets (`encode_batch_fast`: the same ids)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [len(e) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

