"""Composable phrasing: a user request assembled from parts, so that training sees thousands of distinct phrasings
per tool instead of a few dozen templates.

A request is a head ("find me flights", "what's {symbol} trading at") plus the phrases of its slots ("from
{origin}", "on {d1}") in some order, with an optional politeness prefix, opener, context sentence ("I'm going
with my kids.") and closer, written in a style, with dates and amounts in a format, and with abbreviations and
typos in the filler words (never inside a slot value: the gold call copies those). Every kind of part is a pool
(training side, held-out side); held-out episodes draw only from the second side. Some parts exist only on the
held-out side: the `terse` and `rambling` styles, the "the 3rd of June" and "Wed 3 Jun" date formats, the
`swap` typo, a few abbreviations and slot orders, so the test split measures generalisation to them.

Templates keep their slots as `{name}` until `Voice.fill`: the text before filling, with the date format, is
what `phrasing_key` counts as one phrasing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.domains import sim

Pool = tuple[list, list]  # (training side, held-out side)
Head = tuple[str, str]  # (text, form): form "do" (imperative, may take politeness), "ask" (a question), "say"
SLOT = re.compile(r"(\{\w+\})")


def heads(form: str, *texts: str) -> list[Head]:
    """Request heads of one `form` ("do", "ask" or "say"; see `Head`)."""
    return [(t, form) for t in texts]


DATE_SLOTS = ("d1", "d2")
AMOUNT_SLOTS = ("amount", "budget")
SYMBOL_SLOTS = ("symbol", "symbol2", "held")


def side(pool: Pool, held: bool) -> list:
    """The held-out or the training side of a pool."""
    return pool[1] if held else pool[0]


def held_only(pool: Pool) -> list:
    """The parts of a pool that training never sees."""
    return [p for p in pool[1] if p not in pool[0]]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# Dates stay in 2026 and the system prompt says so: no format needs a year, and none is an ambiguous 03/06.
DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "iso": lambda d: d.isoformat(),
    "month_ordinal": lambda d: f"{d:%B} {_ordinal(d.day)}",  # June 3rd
    "day_month": lambda d: f"{d.day} {d:%B}",  # 3 June
    "mon_day": lambda d: f"{d:%b} {d.day}",  # Jun 3
    "month_day": lambda d: f"{d:%B} {d.day}",  # June 3
    "weekday_month_day": lambda d: f"{d:%A}, {d:%B} {d.day}",  # Wednesday, June 3
    "ordinal_month": lambda d: f"{_ordinal(d.day)} {d:%B}",  # 3rd June
    "day_mon": lambda d: f"{d.day} {d:%b}",  # 3 Jun
    "wkd_mon_day": lambda d: f"{d:%a}, {d:%b} {d.day}",  # Wed, Jun 3
    "weekday_day_month": lambda d: f"{d:%A} {d.day} {d:%B}",  # Wednesday 3 June
    "nth_of_month": lambda d: f"the {_ordinal(d.day)} of {d:%B}",  # the 3rd of June (held-out only)
    "wkd_day_mon": lambda d: f"{d:%a} {d.day} {d:%b}",  # Wed 3 Jun (held-out only)
}
DATES: Pool = (["iso", "iso", "month_ordinal", "day_month", "mon_day", "month_day", "weekday_month_day", "ordinal_month",
                "day_mon", "wkd_mon_day", "weekday_day_month"],
               ["iso", "nth_of_month", "wkd_day_mon"])
AMOUNT_FORMATS: dict[str, Callable[[float], str]] = {
    "plain": lambda a: f"{a:g}", "comma": lambda a: f"{a:,.0f}" if a == int(a) else f"{a:,}",
    "decimal": lambda a: f"{a:.2f}",  # 500.00 (held-out only)
}
AMOUNTS: Pool = (["plain", "comma"], ["plain", "decimal"])
SYMBOL_FORMATS: dict[str, Callable[[str], str]] = {"plain": str, "cashtag": lambda s: f"${s}"}
SYMBOLS: Pool = (["plain"], ["plain", "cashtag"])  # $AAPL: held-out only
STYLES: Pool = (["plain", "plain", "plain", "casual"], ["plain", "plain", "terse", "rambling"])
OPENERS: Pool = (["", "", "", "Hi! ", "Hello, ", "Hey, ", "Quick question: ", "Good morning. ", "Hi there, ",
                  "Hey there! ", "Hello! ", "OK, ", "So, "],
                 ["", "Yo, ", "Greetings. ", "Howdy! ", "Hello again, ", "Right, "])
CLOSERS: Pool = (["", "", "", " Thanks!", " Thank you.", " Cheers.", " Thanks in advance.", " Appreciate it.",
                  " Thanks a lot."],
                 ["", " Much appreciated!", " Ta.", " Many thanks."])
POLITE: Pool = ([("", "."), ("", "."), ("please ", "."), ("could you ", "?"), ("can you ", "?"),
                 ("could you please ", "?"), ("I'd like you to ", "."), ("kindly ", ".")],
                [("", "."), ("would you kindly ", "?"), ("I'd appreciate it if you could ", ".")])
JOINS: Pool = ([". Also, ", ", and also ", ". And ", "; plus, ", ". Then also "], [". Oh, and ", ". On top of that, "])
ABBREVIATIONS: Pool = ({"please": "pls", "thanks": "thx", "you": "u", "your": "ur", "tonight": "tonite"},
                       {"and": "&", "with": "w/", "please": "plz", "about": "abt"})
TYPOS: Pool = (["drop", "double"], ["swap"])
TYPO_RATE = 0.15  # share of messages with one misspelt filler word
RAMBLE = ("Anyway, ", "So anyway, ", "Long story short, ")


def permutations(n: int) -> Pool:
    """Slot orders of `n` slots: the written order and about two thirds of the others for training; every order
    for held-out episodes, so for three or more slots some orders are held-out only."""
    orders = list(itertools.permutations(range(n)))
    return [o for o in orders if o == orders[0] or sim.stable_hash("order", o) % 3], orders


@dataclass(frozen=True)
class Intent:
    """How a request for one intent (a tool used one way) is put together."""

    heads: Pool  # Head pools; a head may hold slots itself ("what's {symbol} trading at")
    slots: Mapping[str, Pool]  # part name -> phrases ("from {origin}"); written after the head in some order
    terse: list[str] = field(default_factory=list)  # telegraphic forms, held-out style only


@dataclass
class Voice:
    """How the user of one episode speaks: a style, date, amount and ticker formats and the pools' side, drawn
    once per episode so every turn of it sounds alike."""

    rng: random.Random
    held: bool
    contexts: Pool  # the domain's extra context sentences
    style: str = "plain"
    formats: dict[str, str] = field(default_factory=dict)

    @classmethod
    def draw(cls, rng: random.Random, held: bool, contexts: Pool) -> Voice:
        formats = {"date": rng.choice(side(DATES, held)), "amount": rng.choice(side(AMOUNTS, held)),
                   "symbol": rng.choice(side(SYMBOLS, held))}
        return cls(rng, held, contexts, rng.choice(side(STYLES, held)), formats)

    def pick(self, pool: Pool) -> Any:
        return self.rng.choice(side(pool, self.held))

    def core(self, intent: Intent, omit: Sequence[str] = ()) -> tuple[str, str]:
        """A request's core and its end mark: head, politeness, slot phrases in an order; `omit` leaves parts out
        (a request that lacks a required argument)."""
        if self.style == "terse" and intent.terse and not omit:
            return self.rng.choice(intent.terse), ""
        lacking = {n for part in omit for n in _names(intent.slots[part])}
        text, form = self.rng.choice([h for h in side(intent.heads, self.held) if not lacking & _names(([h[0]], []))])
        said = _names(([text], []))  # slots the head names itself need no phrase of their own
        names = [n for n in intent.slots if n not in omit and not said & _names(intent.slots[n])]
        order = self.pick(permutations(len(names)))
        text = " ".join([text, *(self.pick(intent.slots[names[i]]) for i in order)])
        end = "?" if form == "ask" else "."
        if form == "do":
            prefix, end = self.pick(POLITE)
            text = prefix + text
        return text, end

    def ask(self, intent: Intent, omit: Sequence[str] = ()) -> str:
        """A whole request for one intent, as a template."""
        return self.dress(*self.core(intent, omit))

    def ask_many(self, intents: Sequence[Intent]) -> str:
        """Several requests in one message (parallel calls), as a template."""
        cores = [self.core(i) for i in intents]
        if self.style == "terse":
            return self.dress("; ".join(c for c, _ in cores), "")
        text = cores[0][0]
        for core, _ in cores[1:]:
            join = self.pick(JOINS)
            text += join + (_capital(core) if join.rstrip().endswith(".") else core)
        return self.dress(text, cores[-1][1])

    def dress(self, core: str, end: str) -> str:
        """Opener, context, closer and the style's wording around a core; abbreviations and typos in the filler."""
        if self.style == "terse":
            text = core.rstrip(".?!").lower() + end
            return self._words(text, abbreviate=True)
        context = self.pick(self.contexts) if self.rng.random() < 0.3 else ""
        mark = core[-1:] if core[-1:] in (".", "?", "!") else ""
        body = core.rstrip(".?!") + (end or mark)  # a fixed template keeps its own end mark
        if self.style == "rambling":
            story = " ".join(self.rng.sample(side(self.contexts, True), 2))
            body = f"{story} {self.rng.choice(RAMBLE)}{body[0].lower()}{body[1:]}"
        opener = self.pick(OPENERS)
        rest = (f"{context} {_capital(body)}" if context and self.rng.random() < 0.5 else
                f"{body} {context}".rstrip() if context else _capital(body))
        if opener.endswith((", ", ": ")) and not rest.startswith(("I ", "I'")):  # "Hello, could you ..."
            rest = rest[:1].lower() + rest[1:]
        text = opener + _capital(rest) if not opener.endswith((", ", ": ")) else opener + rest
        text += self.pick(CLOSERS)
        if self.style == "casual":
            text = text.lower().rstrip(".")
        return self._words(text, abbreviate=self.style == "casual" or self.rng.random() < 0.15)

    def follow(self, template: str) -> str:
        """A follow-up turn in this voice: no greeting, the style's case, abbreviations and typos."""
        text = template.lower().rstrip(".") if self.style in ("casual", "terse") else template
        return self._words(text, abbreviate=self.style in ("casual", "terse") or self.rng.random() < 0.15)

    def say(self, template: str) -> str:
        """A fixed template (chains, small talk) dressed in this voice."""
        return self.dress(template, "")

    def _words(self, template: str, abbreviate: bool) -> str:
        """Abbreviations (when `abbreviate`) and at most one typo, applied outside the `{slot}`s only."""
        table = side(ABBREVIATIONS, self.held)
        parts = SLOT.split(template)
        for k in range(0, len(parts), 2):
            if abbreviate:
                parts[k] = re.sub(r"\b\w+\b", lambda m: _same_case(m.group(0), table.get(m.group(0).lower())),
                                  parts[k])
        if self.rng.random() < TYPO_RATE:
            spots = [(k, m) for k in range(0, len(parts), 2) for m in re.finditer(r"\b[a-z]{4,}\b", parts[k])]
            if spots:
                k, m = self.rng.choice(spots)
                parts[k] = parts[k][:m.start()] + misspell(self.rng, m.group(0), self.pick(TYPOS)) + parts[k][m.end():]
        return "".join(parts)

    def fill(self, template: str, slots: Mapping[str, Any]) -> str:
        """The template with the episode's values, dates, amounts and tickers in this voice's formats."""
        def value(name: str) -> str:
            v = slots[name]
            if name in DATE_SLOTS:
                return DATE_FORMATS[self.formats["date"]](dt.date.fromisoformat(v))
            if name in AMOUNT_SLOTS:
                return AMOUNT_FORMATS[self.formats["amount"]](v)
            if name in SYMBOL_SLOTS:
                return SYMBOL_FORMATS[self.formats["symbol"]](v)
            return str(v)

        return SLOT.sub(lambda m: value(m.group(1)[1:-1]), template)

    def key(self, template: str) -> str:
        """What counts as one phrasing: the template before filling, with its value formats."""
        names = set(re.findall(r"\{(\w+)\}", template))
        kinds = [k for k, slots in (("date", DATE_SLOTS), ("amount", AMOUNT_SLOTS), ("symbol", SYMBOL_SLOTS))
                 if names & set(slots)]
        return template + "|" + ",".join(f"{k}={self.formats[k]}" for k in kinds)


def _names(pool: Pool) -> set[str]:
    """The slot names the phrases of a pool hold."""
    return {m[1:-1] for text in [*pool[0], *pool[1]] for m in SLOT.findall(text)}


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _same_case(word: str, replacement: str | None) -> str:
    if replacement is None:
        return word
    return _capital(replacement) if word[:1].isupper() else replacement


def misspell(rng: random.Random, word: str, kind: str) -> str:
    """`word` with one letter after the first dropped, doubled, or swapped with the next."""
    i = rng.randrange(1, len(word) - 1)
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:] if word[i] != word[i + 1] else word[:i] + word[i + 1:]
