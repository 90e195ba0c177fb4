"""The off-domain request pool: requests that no tool of a catalog should answer, composed from parts.

Each `Topic` holds request templates and the words that tie it to a kind of tool (`keywords`): a topic whose
keywords a catalog mentions is left out for that catalog (weather requests are off-domain for a clinic, not for
travel). Topics come in groups (small talk, general knowledge, arithmetic, other assistants' tools, "almost"
requests that sound actionable but that no ordinary catalog does), each drawn at its `GROUPS` weight.

Every part is a pair (training side, held-out side), as in components/domains/phrasing.py: templates, slot
values, openers, closers and styles. A held-out request uses only held-out templates, so no held-out text can be
written on the training side; the composition (template x values x opener x closer x style) gives thousands of
distinct texts per side. `components.domains.no_call` turns the texts into episodes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from components.domains.phrasing import Pool, side

GROUPS = {"small_talk": 0.25, "knowledge": 0.2, "arithmetic": 0.1, "other_tools": 0.3, "almost": 0.15}


@dataclass(frozen=True)
class Topic:
    group: str
    keywords: frozenset[str]  # a catalog that mentions one of these has a tool for it: the topic is left out
    templates: Pool


def _t(group: str, keywords: str, train: list[str], held: list[str]) -> Topic:
    return Topic(group, frozenset(keywords.split()), (train, held))


TOPICS = {
    "greeting": _t("small_talk", "", [
        "hi", "hello", "good morning", "hey there, how are you?", "how's your day going?", "nice to meet you",
        "are you a robot?", "what's your name?", "who made you?"],
        ["yo, what's up", "good evening to you", "how have you been?", "are you a real person?"]),
    "thanks": _t("small_talk", "", [
        "thanks, that's all", "ok bye", "you're great", "never mind", "that was helpful, thank you", "see you later"],
        ["cheers, that'll be it", "all good, talk soon", "much appreciated, goodbye"]),
    "chitchat": _t("small_talk", "joke story poem", [
        "tell me a joke", "I'm bored, entertain me", "what's your favourite colour?", "do you like {animal}s?",
        "write me a short poem about {animal}s", "what's the meaning of life?", "can you sing?"],
        ["say something funny", "what's your favourite animal?", "would you rather be a {animal} or a bird?"]),
    "capital": _t("knowledge", "capital country geography", [
        "what's the capital of {country}?", "which city is the capital of {country}?",
        "what language do they speak in {country}?", "how many people live in {country}?"],
        ["name the capital city of {country}", "what's the national dish of {country}, just curious?"]),
    "facts": _t("knowledge", "history science fact wiki", [
        "who wrote {book}?", "when was {book} published?", "who painted the Mona Lisa?", "how far is the Moon?",
        "why is the sky blue?", "explain {concept} in simple terms", "what is {concept}?",
        "how many bones does a human body have?"],
        ["give me a one-line summary of {book}", "ELI5: {concept}", "how hot is the surface of the Sun?"]),
    "math": _t("arithmetic", "calculate calculator math arithmetic compute sum multiply", [
        "what's {a} times {b}?", "what is {a} plus {b}?", "how much is {a} minus {b}?", "what's {a} divided by {b}?",
        "is {a} a prime number?", "what's the square root of {a}?", "what's {b} percent of {a}?"],
        ["multiply {a} by {b} for me", "add {a} and {b} together", "{a} squared is what?"]),
    "units": _t("arithmetic", "unit convert conversion", [
        "how many centimetres are in {b} inches?", "convert {a} grams to ounces", "what's {b} miles in kilometres?"],
        ["how many feet is {a} metres?"]),
    "weather": _t("other_tools", "weather forecast temperature rain climate", [
        "what's the weather in {city} today?", "will it rain in {city} tomorrow?", "how cold is it outside?"],
        ["is it sunny in {city} right now?"]),
    "music": _t("other_tools", "music song play playlist track album artist spotify", [
        "play {song}", "put on some jazz", "skip this song", "add {song} to my playlist", "turn the volume up"],
        ["queue up {song} next", "shuffle my liked songs"]),
    "email": _t("other_tools", "email mail message inbox send sms text", [
        "send an email to {person} saying I'll be late", "read my latest emails",
        "text {person} that I'm on my way", "reply to {person}'s message with a thumbs up"],
        ["draft a note to {person} about tomorrow", "any new mail from {person}?"]),
    "cooking": _t("other_tools", "recipe cook cooking food meal ingredient kitchen", [
        "how do I make {dish}?", "give me a recipe for {dish}", "how long do I boil an egg?",
        "what can I cook with rice and {food}?"],
        ["what goes well with {dish}?", "suggest a dinner with {food} in it"]),
    "calendar": _t("other_tools", "calendar meeting event schedule reminder agenda", [
        "add a meeting with {person} on {day}", "what's on my calendar for {day}?", "remind me to call {person}"],
        ["move my {day} meeting to the afternoon"]),
    "timer": _t("other_tools", "timer alarm clock stopwatch", [
        "set a timer for {a} minutes", "wake me up at 7", "set an alarm for 6:30"],
        ["start a {a}-minute countdown"]),
    "home": _t("other_tools", "light lamp thermostat device home heating", [
        "turn off the lights in the {room}", "set the thermostat to 21 degrees", "lock the front door"],
        ["dim the {room} lights a bit"]),
    "translate": _t("other_tools", "translate translation language", [
        "translate 'good morning' into {language}", "how do you say 'thank you' in {language}?"],
        ["what's 'where is the station' in {language}?"]),
    "sports": _t("other_tools", "sport score match game team league", [
        "who won the game last night?", "what's the score of the {team} match?", "when do {team} play next?"],
        ["how did {team} do this season?"]),
    "news": _t("other_tools", "news headline article", [
        "what's in the news today?", "give me the latest headlines"], ["any big news this morning?"]),
    "travel": _t("other_tools", "flight hotel travel trip airline booking", [
        "book me a flight to {city}", "find a hotel in {city} for the weekend"],
        ["get me a cheap flight to {city} next month"]),
    "stocks": _t("other_tools", "stock share quote ticker market price portfolio invest", [
        "how is the stock market doing?", "what's the share price of {company}?"],
        ["should I buy {company} shares?"]),
    "almost_account": _t("almost", "account password login profile user", [
        "reset my password", "delete my account", "change the email on my profile"],
        ["log me out of every device"]),
    "almost_order": _t("almost", "order purchase refund delivery shop cart product", [
        "where's my order?", "I want a refund for my last purchase", "order me a new phone charger"],
        ["cancel the parcel I ordered yesterday"]),
    "almost_booking": _t("almost", "appointment salon haircut reservation restaurant table", [
        "book me a haircut on {day}", "reserve a table for two tonight"], ["get me a spa slot on {day}"]),
    "almost_ride": _t("almost", "taxi ride car driver uber transport", [
        "call me a taxi", "get me a ride to the station"], ["how long until my driver arrives?"]),
}

VALUES: dict[str, Pool] = {
    "country": (["France", "Japan", "Brazil", "Kenya", "Canada", "Norway", "India", "Peru"],
                ["Vietnam", "Chile", "Ghana", "Finland"]),
    "city": (["Paris", "Tokyo", "Lagos", "Denver", "Oslo", "Madrid"], ["Hanoi", "Quito", "Perth"]),
    "book": (["Hamlet", "Pride and Prejudice", "1984", "Don Quixote", "The Hobbit"], ["Dracula", "Beloved"]),
    "concept": (["photosynthesis", "inflation", "gravity", "a black hole", "machine learning", "evolution"],
                ["entropy", "plate tectonics", "supply and demand"]),
    "animal": (["cat", "dog", "penguin", "horse", "owl"], ["otter", "fox"]),
    "song": (["Bohemian Rhapsody", "Hey Jude", "Imagine", "Yesterday"], ["Wonderwall", "Hallelujah"]),
    "person": (["Anna", "Tom", "my boss", "Mum", "Priya", "Carlos"], ["Kenji", "my landlord", "Grandpa"]),
    "dish": (["lasagne", "pancakes", "a curry", "banana bread", "risotto"], ["paella", "dumplings"]),
    "food": (["chicken", "tofu", "spinach", "beans"], ["mushrooms", "salmon"]),
    "day": (["Monday", "Friday", "tomorrow", "the 12th"], ["Thursday", "next Tuesday"]),
    "room": (["kitchen", "bedroom", "living room"], ["hallway", "office"]),
    "language": (["Spanish", "German", "Japanese", "French"], ["Swahili", "Polish"]),
    "team": (["Arsenal", "the Lakers", "Real Madrid"], ["the Yankees", "Ajax"]),
    "company": (["Apple", "Tesla", "Nestle"], ["Siemens", "Toyota"]),
    "a": ([str(n) for n in range(12, 400, 7)], [str(n) for n in range(15, 400, 11)]),
    "b": ([str(n) for n in range(2, 30, 3)], [str(n) for n in range(4, 30, 5)]),
}
OPENERS: Pool = (["", "", "", "Hey, ", "Hi! ", "Quick question: ", "Sorry, ", "Excuse me, ", "Hello there. ",
                  "So ", "Can you help? "], ["Um, ", "Hiya, ", "Random question, but ", "Off topic: "])
CLOSERS: Pool = (["", "", "", " Thanks!", " Please.", " thx", " :)", " Cheers."], [" Ta.", " Thank you so much!",
                                                                                     " (asking for a friend)"])
STYLES: Pool = (["plain", "plain", "lower", "capital"], ["plain", "bare", "lower"])
_SLOT = re.compile(r"\{(\w+)\}")


def words(text: str) -> set[str]:
    """The lowercased words of `text`, with a plural `s` cut (`flights` -> `flight`), split at `_` and camelCase."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).replace("_", " ").lower()
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in re.findall(r"[a-z]+", spaced)}


def topics_for(catalog_words: set[str]) -> dict[str, Topic]:
    """The topics no tool of a catalog whose text holds `catalog_words` (see `words`) is about."""
    return {name: t for name, t in TOPICS.items() if not (words(" ".join(t.keywords)) & catalog_words)}


def draw(rng: random.Random, held: bool, topics: dict[str, Topic]) -> tuple[str, str]:
    """(topic name, request text) from one side of every part: a topic of a group drawn at its `GROUPS` weight.

    Raises:
        ValueError: `topics` is empty.
    """
    if not topics:
        raise ValueError("no off-domain topic is left for this catalog")
    groups = sorted({t.group for t in topics.values()})
    group = rng.choices(groups, [GROUPS[g] for g in groups])[0]
    name = rng.choice(sorted(n for n, t in topics.items() if t.group == group))
    template = rng.choice(side(topics[name].templates, held))
    core = _SLOT.sub(lambda m: rng.choice(side(VALUES[m.group(1)], held)), template)
    return name, _dress(rng, held, core)


def _dress(rng: random.Random, held: bool, core: str) -> str:
    """The request in the user's voice: an opener, a closer and a style (case, punctuation)."""
    style = rng.choice(side(STYLES, held))
    opener, closer = rng.choice(side(OPENERS, held)), rng.choice(side(CLOSERS, held))
    text = core[0].upper() + core[1:] if style == "capital" or opener.endswith((". ", "! ", "? ", ": ")) or not opener \
        else core
    if style == "bare":
        text = text.rstrip("?.!")
    text = f"{opener}{text}{closer}".strip()
    return text.lower() if style == "lower" else text
