"""No-call episodes for any domain, without the user writing them: off-domain requests from the shipped pool
(`components.domains.offdomain`) and, for a bring-your-own catalog, requests whose tool is not offered.

- `pool_episodes`: `n` off-domain requests for a catalog, each answered by `no_call_reply` (what the agent can do,
  from the catalog's tool names). The topics the catalog has a tool for are left out (`offdomain.topics_for`).
  Held-out episodes (`split: test`) draw only from the pool's held-out parts, so no held-out text is trained on.
- `removed_tool_twin`: a single-call episode's request with its tool dropped from the offered tools: the model
  must not call a tool it was not given. The twin keeps its source's split, so its text stays on that side.

The ingest stage mixes both in at `ingest.irrelevance_pool` (components/ingest.py).
"""

from __future__ import annotations

import random
import re
from typing import Any

from components.data.episode import Episode, Tool
from components.domains import offdomain, sim

MAX_LISTED = 6  # tools named in the no-call reply; more are counted


def humanise(name: str) -> str:
    """A tool name as words: `search_flights` and `searchFlights` -> `search flights`."""
    return " ".join(re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ").lower().split())


def no_call_reply(tools: list[Tool], chat: bool = False) -> str:
    """The short polite answer to a request no offered tool fits (`chat`: to small talk): what the agent can do,
    by tool name."""
    names = [humanise(t.function.name) for t in tools]
    listed = names[:MAX_LISTED] + ([f"{len(names) - MAX_LISTED} more"] if len(names) > MAX_LISTED else [])
    can = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    if chat:  # small talk: no apology, an offer
        return f"I'm here to help with these: {can}. What would you like to do?"
    return f"Sorry, I can't help with that: none of my tools does it. I can help you with these: {can}."


def catalog_words(tools: list[Tool]) -> set[str]:
    """The words of a catalog's tool names, descriptions and parameters (`offdomain.words`)."""
    return offdomain.words(" ".join(f"{t.function.name} {t.function.description or ''} {t.function.parameters}"
                                    for t in tools))


def pool_episodes(domain: str, tools: list[Tool], n: int, heldout_fraction: float, seed: int) -> list[Episode]:
    """`n` off-domain no-call episodes for `domain`'s catalog, a `heldout_fraction` share of them held out.

    The same `seed`, catalog and `n` give the same episodes; a larger `n` extends a smaller one's list.
    Ids: `<domain>-pool-<t|h>-<index>-<topic>`.

    Raises:
        ValueError: Every topic of the pool is one the catalog has a tool for.
    """
    rng = random.Random(f"irrelevance-pool/{seed}")
    topics = offdomain.topics_for(catalog_words(tools))
    episodes = []
    for i in range(n):
        held = rng.random() < heldout_fraction
        topic, text = offdomain.draw(rng, held, topics)
        reply = no_call_reply(tools, chat=offdomain.TOPICS[topic].group == "small_talk")
        messages = [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        episodes.append(no_call_episode(f"{domain}-pool-{'h' if held else 't'}-{i:06d}-{topic}", domain,
                                        "irrelevance_pool", tools, messages, "test" if held else "train"))
    return episodes


def removed_tool_twin(episode: Episode, rate: float, seed: int) -> Episode | None:
    """For a share `rate` of single-call episodes (by a stable hash of the id): the same request offered every
    tool but the one it needs, answered without a call; None for the others (and when no tool would be left)."""
    steps = episode.expected.steps
    if episode.pattern != "single" or len(steps) != 1 or len(steps[0]) != 1 or rate <= 0:
        return None
    if sim.stable_share("removed-tool", seed, episode.id) >= rate:
        return None
    needed = steps[0][0].name
    tools = [t for t in episode.tools if t.function.name != needed]
    first_user = next(i for i, m in enumerate(episode.messages) if m.role == "user")
    if not tools or first_user + 1 != _user_turn_end(episode):
        return None
    asked = [m.model_dump(exclude_none=True) for m in episode.messages[:first_user + 1]]
    return no_call_episode(f"{episode.id}-removed-{needed}", episode.domain, "removed_tool", tools,
                           asked + [{"role": "assistant", "content": no_call_reply(tools)}], episode.split)


def _user_turn_end(episode: Episode) -> int:
    """The index after the first user turn's messages (the first message that is no user or system message)."""
    return next((i for i, m in enumerate(episode.messages) if m.role not in ("user", "system")),
                len(episode.messages))


def no_call_episode(id_: str, domain: str, source: str, tools: list[Tool], messages: list[dict[str, Any]],
                    split: str | None) -> Episode:
    """An irrelevance episode: `messages` (up to the no-call answer), nothing expected."""
    return Episode.model_validate({"id": id_, "domain": domain, "source": source, "pattern": "irrelevance",
                                   "split": split, "tools": tools, "messages": messages,
                                   "expected": {"steps": []}})
