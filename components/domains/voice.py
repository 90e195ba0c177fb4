"""Voice twins: an imported training request again, framed the way users frame requests.

A bring-your-own catalog's records are often written in one voice (a team's tickets, one script's output). A
model trained on them learns that voice as part of the request: on a message that opens with "Morning." or ends
with "cheers!" it may no longer call the tool, and the call gate reads the framing as small talk. A voice twin is
a training episode's copy whose first user message gets an opener and a closer from the project's phrasing pools
(`phrasing.OPENERS`, `phrasing.CLOSERS`, training side only), so that the framing around a request stops telling
calls and no-calls apart. The request itself is never touched: the gold call copies values out of it.

Aside twins do the same for a built-in domain's generated requests, as contrast pairs: a statement about the domain
that asks for nothing ("I read an article about NVDA today.") before a training request, answered with the same
call, and the same statement alone, answered without a call. Small talk that names a ticker or a city then stops
looking like a request, and a request after small talk stays one.
"""

from __future__ import annotations

import random

from components.data.episode import Episode
from components.domains import no_call, phrasing, sim
from components.domains.tasks import Builders


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


def aside_twins(episode: Episode, b: Builders, rate: float, seed: int) -> list[Episode]:
    """For a share `rate` of training-side single-call episodes (by a stable hash of the id), a contrast pair: the
    episode with an aside (one of `b.asides`, filled with training-side values) before its request, id `<id>-aside`,
    and the aside alone, dressed in a voice like the generator's small talk and answered with the domain's no-call
    reply, id `<id>-aside-alone`; source `aside_twin`. An empty list for the other episodes and for the test split
    (it stays the one measured without them)."""
    if (rate <= 0 or not b.asides or episode.split == "test" or episode.pattern != "single"
            or sim.stable_share("aside", seed, episode.id) >= rate):
        return []
    first = next(i for i, m in enumerate(episode.messages) if m.role == "user")
    rng = random.Random(f"aside/{seed}/{episode.id}")
    voice, template, slots = phrasing.Voice.draw(rng, False, b.contexts), rng.choice(b.asides), b.slots(rng, False)
    request = episode.messages[first]
    messages = list(episode.messages)
    messages[first] = request.model_copy(update={"content": f"{voice.fill(template, slots)} {request.content}"})
    alone = [m.model_dump(exclude_none=True) for m in episode.messages[:first]] + [
        {"role": "user", "content": voice.fill(voice.say(template), slots)},
        {"role": "assistant", "content": b.spec.no_call_reply}]
    return [episode.model_copy(update={"id": f"{episode.id}-aside", "source": "aside_twin", "messages": messages}),
            no_call.no_call_episode(f"{episode.id}-aside-alone", episode.domain, "aside_twin", episode.tools, alone,
                                    episode.split)]
