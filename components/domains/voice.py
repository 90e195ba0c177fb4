"""Voice twins: an imported training request again, framed the way users frame requests.

A bring-your-own catalog's records are often written in one voice (a team's tickets, one script's output). A
model trained on them learns that voice as part of the request: on a message that opens with "Morning." or ends
with "cheers!" it may no longer call the tool, and the call gate reads the framing as small talk. A voice twin is
a training episode's copy whose first user message gets an opener and a closer from the project's phrasing pools
(`phrasing.OPENERS`, `phrasing.CLOSERS`, training side only), so that the framing around a request stops telling
calls and no-calls apart. The request itself is never touched: the gold call copies values out of it.
"""

from __future__ import annotations

import random

from components.data.episode import Episode
from components.domains import phrasing, sim


def dressed(rng: random.Random, text: str) -> str:
    """`text` with an opener and a closer (never both empty), the text itself unchanged between them."""
    while True:
        opener, closer = rng.choice(phrasing.OPENERS[0]), rng.choice(phrasing.CLOSERS[0])
        if opener or closer:
            return f"{opener}{text.strip()}{closer}"


def voice_twin(episode: Episode, rate: float, seed: int) -> Episode | None:
    """For a share `rate` of training-side episodes (by a stable hash of the id), the episode with its first user
    message framed anew (`dressed`), source `voice_twin`, id `<id>-voice`; None for the others and for test-split
    episodes (the user's test stays as written)."""
    if rate <= 0 or episode.split == "test" or sim.stable_share("voice", seed, episode.id) >= rate:
        return None
    first = next((i for i, m in enumerate(episode.messages) if m.role == "user" and m.content), None)
    if first is None:
        return None
    messages = list(episode.messages)
    rng = random.Random(f"voice/{seed}/{episode.id}")
    messages[first] = messages[first].model_copy(update={"content": dressed(rng, messages[first].content)})
    return episode.model_copy(update={"id": f"{episode.id}-voice", "source": "voice_twin", "messages": messages})
