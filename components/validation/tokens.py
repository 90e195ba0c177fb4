"""Token lengths for the validate stage's `max_tokens` rule, with the base model's tokenizer.

Reads: the tokenizer saved in `paths.base` (`load_tokenizer`). Writes: nothing.
`token_counts` gives each episode's length rendered with the tokenizer's chat template, tools included: what
`len(apply_chat_template(episode))` gives, computed in batches that a worker thread encodes while the next one
is rendered. `counting_in_background` counts an episodes file's tokens that way in a child process, so the
validate stage checks its other rules meanwhile; `python -m components.validation.tokens EPISODES TOKENIZER OUT`
is that child.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.data import child
from components.data.episode import DataError, Episode
from components.toolcalls import render

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


def file_token_counts(path: Path, folder: Path) -> list[int]:
    """`token_counts` of every episode of an episodes file, in file order, streamed from the file, with the
    tokenizer saved in `folder`. Lines that break a record rule are skipped: the validate stage reports them.

    Raises:
        DataError: `folder` holds no tokenizer.
    """
    from components.validation.records import iter_records

    tokenizer = load_tokenizer(folder)
    if tokenizer is None:
        raise DataError(f"{folder}: no tokenizer folder")
    return token_counts(tokenizer, (ep for _, ep in iter_records(path) if not isinstance(ep, DataError)))


@contextmanager
def counting_in_background(path: Path, folder: Path) -> Iterator[Callable[[], list[int]] | None]:
    """Count the tokens of every episode of `path` (`file_token_counts`) in a child process while the caller
    goes on; yields the function that waits for the counts, or None when `folder` holds no tokenizer.

    Rendering holds the GIL, so the validate stage's own checks could not overlap it in a thread. The child
    reads the file itself: nothing large crosses between the processes, and it holds a batch per catalog at a
    time. Leaving the block stops a child still running (`child.started`).

    The waiting function raises RuntimeError when the child failed: a bug or a broken tokenizer folder, not bad
    episodes (the caller reports those from its own reading).
    """
    if not Path(folder).is_dir():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="tooltune-tokens-") as scratch:
        out = Path(scratch) / "counts.json"
        with child.started(__name__, [str(path), str(folder), str(out)], f"counting the tokens of {path}") as wait:

            def counts() -> list[int]:
                wait()
                return json.loads(out.read_text(encoding="utf-8"))

            yield counts


def token_counts(tokenizer: Any, episodes: Iterable[Episode]) -> list[int]:
    """Rendered length of each episode, tools included: what `len(apply_chat_template(episode))` gives.

    Episodes that share a catalog are rendered in batches (the tool dicts built once per catalog) and
    encoded in one call per batch. The rendered text shared by a batch (the system turn listing the tools,
    about half of a short episode) is encoded once: `_shared_prefix` cuts it right before a special token,
    where the tokenizer splits its input anyway, and the cut is checked on the first episodes.

    Rendering is Python and holds the GIL; a fast tokenizer encodes in Rust and releases it. So a worker
    thread encodes each batch while the next one is rendered, and the two overlap on two cores; each count
    goes to its episode's index, so the result does not depend on timing. `episodes` is read once, in order,
    and only a batch per catalog is held at a time: it may stream from a file.
    """
    counts: dict[int, int] = {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-counts") as encoder:
        queued: deque[tuple[list[int], Future[list[int]]]] = deque()
        for batch, texts in _rendered_batches(tokenizer, episodes):
            queued.append((batch, encoder.submit(_lengths, tokenizer, texts)))
            if len(queued) > QUEUED_BATCHES:
                _store(counts, *queued.popleft())
        while queued:
            _store(counts, *queued.popleft())
    return [counts[i] for i in range(len(counts))]


def _rendered_batches(tokenizer: Any, episodes: Iterable[Episode]) -> Iterator[tuple[list[int], list[str]]]:
    """(episode indexes, their texts rendered with the chat template) per batch of episodes sharing a catalog."""
    groups: dict[int, tuple[Episode, list[int], list[list[dict[str, Any]]]]] = {}  # catalog id -> its batch
    for i, ep in enumerate(episodes):
        # a group keeps its first episode, hence its catalog, alive: the id stays that catalog's while a stream
        # of episodes comes and goes
        first, batch, chats = groups.setdefault(id(ep.tools), (ep, [], []))
        batch.append(i)
        chats.append(ep.message_dicts())
        if len(batch) == TOKEN_BATCH:
            yield _rendered(tokenizer, first, batch, chats)
    for first, batch, chats in groups.values():
        if batch:
            yield _rendered(tokenizer, first, batch, chats)


def _rendered(tokenizer: Any, first: Episode, batch: list[int],
              chats: list[list[dict[str, Any]]]) -> tuple[list[int], list[str]]:
    """A batch's indexes and texts, rendered with the catalog of its `first` episode; empties the batch (the
    group fills the same lists again)."""
    texts = render.prompt(tokenizer, chats, first.tool_dicts(), generation=False)
    done = list(batch)
    batch.clear()
    chats.clear()
    return done, texts


def _store(counts: dict[int, int], batch: list[int], lengths: Future[list[int]]) -> None:
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


def main(argv: list[str] | None = None) -> None:
    """The child of `counting_in_background`: `python -m components.validation.tokens EPISODES TOKENIZER OUT`
    writes the token counts of EPISODES as a JSON list to OUT."""
    path, folder, out = map(Path, sys.argv[1:] if argv is None else argv)
    out.write_text(json.dumps(file_token_counts(path, folder)), encoding="utf-8")


if __name__ == "__main__":
    main()
