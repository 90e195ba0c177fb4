"""Task generator of the finance domain: synthetic episodes of every pattern, run through the simulator.

Phrasing templates, ticker symbols, accounts and currency pairs are each split into a training side and a
held-out side, and so are tool combinations: some parallel pairs and one follow-up combination have no
training phrasings at all, so they appear in the test split only. Patterns: single, parallel, chain (convert
after fetching the rate; sell a whole holding after reading the portfolio; buy what a budget affords after a
quote), recovery (a misspelt ticker: the tool error names the symbol meant), irrelevance and multi_turn (a
follow-up such as "buy 5 of them" needs a second call).
"""

from __future__ import annotations

import random
from typing import Any

from components.domains import finance, sim, tasks
from components.domains.tasks import Draft, side
from components.data.episode import Episode, Tool

SINGLE = {
    "get_quote": (
        ["What's {symbol} trading at?", "Give me a quote for {symbol}.", "How much is one {symbol} share now?",
         "Current price of {symbol}, please.", "Check the {symbol} stock price.", "Where is {symbol} trading today?",
         "Look up {symbol}'s latest price.", "Is {symbol} up or down today?"],
        ["What does {symbol} cost per share right now?", "Price check on {symbol}?",
         "How is {symbol} doing on the market today?"]),
    "get_fx_rate": (
        ["What's the {base}/{quote} exchange rate?", "How many {quote} do I get for one {base}?",
         "Exchange rate from {base} to {quote}, please.", "Look up the {base} to {quote} rate.",
         "What is 1 {base} in {quote} today?", "Give me the current {base}-{quote} rate."],
        ["How much {quote} is one {base} worth at the moment?", "Rate for {base} into {quote}?"]),
    "get_portfolio": (
        ["Show me the holdings of account {account}.", "What's in my portfolio {account}?",
         "How much cash and stock does {account} have?", "Give me an overview of account {account}.",
         "List the positions in {account}.", "What do I own in account {account}?"],
        ["Summarise my brokerage account {account}.", "Balance and positions for {account}, please."]),
    "buy": (
        ["Buy {qty} shares of {symbol} in account {account}.", "Place a buy order for {qty} {symbol} on {account}.",
         "Purchase {qty} {symbol} shares for account {account}.", "Get me {qty} shares of {symbol} ({account}).",
         "Account {account}: buy {qty} {symbol}."],
        ["Add {qty} {symbol} shares to {account}.", "I want to acquire {qty} {symbol} with account {account}."]),
    "sell": (
        ["Sell {sell_qty} shares of {held} from account {account}.",
         "Place a sell order: {sell_qty} {held}, {account}.",
         "Account {account}: sell {sell_qty} {held}.", "Get rid of {sell_qty} of my {held} shares in {account}."],
        ["Offload {sell_qty} {held} from {account}.", "Dispose of {sell_qty} {held} shares held in {account}."]),
}
# Parallel tool combinations; an empty training side holds the combination out for the test split.
PARALLEL = {
    ("get_quote", "get_quote2"): (
        ["Compare the prices of {symbol} and {symbol2}.", "Quotes for {symbol} and {symbol2}, please.",
         "What are {symbol} and {symbol2} trading at?"],
        ["How do {symbol} and {symbol2} stand on the market today?"]),
    ("get_quote", "get_fx_rate"): (
        ["What's {symbol} at, and what is the {base}/{quote} rate?",
         "Quote {symbol} and give me the {base} to {quote} exchange rate."],
        ["I need the {symbol} price plus the {base}-{quote} rate."]),
    ("get_fx_rate", "get_fx_rate2"): (
        ["Give me the {base}/{quote} and {base2}/{quote2} rates.",
         "Exchange rates please: {base} to {quote}, and {base2} to {quote2}."],
        ["Both rates, {base}-{quote} and {base2}-{quote2}?"]),
    ("get_portfolio", "get_quote"): (
        [], ["Show account {account} and tell me what {symbol} trades at."]),
    ("get_fx_rate", "get_portfolio"): (
        [], ["What's in {account}, and what's the {base}/{quote} rate today?"]),
}
CHAIN = {
    "convert": (
        ["Convert {amount} {base} to {quote}.", "How much is {amount} {base} in {quote} at today's rate?",
         "I have {amount} {base}; what's that in {quote}?", "Change {amount} {base} into {quote} for me."],
        ["What would {amount} {base} come to in {quote}?"]),
    "sell_all": (
        ["Sell all my {held} shares in account {account}.", "Close my whole {held} position in {account}.",
         "Account {account}: sell every {held} share I have."],
        ["Liquidate the entire {held} holding of {account}."]),
    "buy_budget": (
        ["Invest {budget} USD in {symbol} from account {account}: as many whole shares as that buys.",
         "Buy as many {symbol} shares as {budget} USD allows, account {account}."],
        ["Spend up to {budget} USD of {account} on whole {symbol} shares."]),
}
# Follow-up requests of multi_turn episodes, by (first intent, follow-up intent).
FOLLOW_UPS = {
    ("get_quote", "buy"): (
        ["Buy {qty} of them in account {account}.", "OK, get me {qty} shares for account {account}."],
        ["Sounds good: {qty} for {account}, please."]),
    ("get_quote", "get_quote2"): (["And {symbol2}?", "How about {symbol2}?"], ["What about {symbol2} then?"]),
    ("get_fx_rate", "convert_amount"): (
        ["Convert {amount} {base} at that rate.", "Then what is {amount} {base} in {quote}?"],
        ["So how much {quote} would {amount} {base} be?"]),
    ("get_portfolio", "quote_held"): (
        ["What is {held} trading at right now?", "And the current {held} price?"],
        ["How much is one {held} share worth today?"]),
    ("get_portfolio", "sell"): ([], ["Sell {sell_qty} of my {held} shares from it."]),
}
IRRELEVANT = (
    ["Hi there!", "Thanks, that's all.", "What is a dividend?", "Explain what an ETF is.", "Tell me a joke.",
     "Should I save or invest?", "What does P/E ratio mean?", "How do bonds work?", "Good morning!",
     "I bought {symbol} years ago.", "My account number is {account}.", "What's the history of the stock market?",
     "How do I open a savings account?", "Who founded {symbol}?", "What is inflation?"],
    ["What is compound interest?", "Recommend a book on investing.", "{symbol} has a nice logo.",
     "See you tomorrow!"])
NO_CALL_REPLIES = ("I can look up quotes, exchange rates and portfolios, convert currencies and place orders. "
                   "That request needs none of them.")
PAIRS = [(b, q) for b in finance.USD_VALUE for q in finance.USD_VALUE if b != q]
PAIR_POOL = ([p for p in PAIRS if sim.stable_hash("pair", *p) % 4],  # a quarter of the currency pairs held out
             [p for p in PAIRS if not sim.stable_hash("pair", *p) % 4])
AMOUNTS = (50, 100, 250, 300, 500, 750, 1000, 1200, 2500, 5000)


def _slots(rng: random.Random, held: bool) -> dict[str, Any]:
    """Values of one episode, all from the chosen side: symbols, account (and one of its holdings), pairs."""
    symbol, symbol2 = rng.sample(side((finance.SYMBOLS_TRAIN, finance.SYMBOLS_TEST), held), 2)
    account = rng.choice(side((finance.ACCOUNTS_TRAIN, finance.ACCOUNTS_TEST), held))
    (base, quote), (base2, quote2) = rng.sample(side(PAIR_POOL, held), 2)
    stock, holding = rng.choice(sorted(finance.portfolio_of(account)["holdings"].items()))
    return {"symbol": symbol, "symbol2": symbol2, "account": account, "base": base, "quote": quote,
            "base2": base2, "quote2": quote2, "amount": rng.choice(AMOUNTS), "qty": rng.randint(1, 10),
            "held": stock, "holding": holding, "sell_qty": rng.randint(1, min(holding, 20)),
            "budget": rng.randrange(500, 3001, 100)}


def _call(intent: str, s: dict[str, Any]) -> dict[str, Any]:
    """The gold call of one intent (a tool used a particular way) with the episode's values."""
    name, args = {
        "get_quote": ("get_quote", {"symbol": s["symbol"]}),
        "get_quote2": ("get_quote", {"symbol": s["symbol2"]}),
        "quote_held": ("get_quote", {"symbol": s["held"]}),
        "get_fx_rate": ("get_fx_rate", {"base": s["base"], "quote": s["quote"]}),
        "get_fx_rate2": ("get_fx_rate", {"base": s["base2"], "quote": s["quote2"]}),
        "convert_amount": ("convert_amount", {"amount": s["amount"], "base": s["base"], "quote": s["quote"]}),
        "get_portfolio": ("get_portfolio", {"account_id": s["account"]}),
        "buy": ("place_order", {"account_id": s["account"], "symbol": s["symbol"], "side": "buy",
                                "quantity": s["qty"]}),
        "sell": ("place_order", {"account_id": s["account"], "symbol": s["held"], "side": "sell",
                                 "quantity": s["sell_qty"]}),
    }[intent]
    return {"name": name, "arguments": args}


def _answer(call: dict[str, Any], result: dict[str, Any]) -> str:
    name = call["name"]
    if name == "get_quote":
        return f"{result['symbol']} trades at {result['price_usd']} USD ({result['change_pct']:+.2f}% today)."
    if name == "get_fx_rate":
        return f"1 {result['base']} = {result['rate']} {result['quote']}."
    if name == "convert_amount":
        return f"{result['amount']} {result['base']} = {result['converted']} {result['quote']}."
    if name == "get_portfolio":
        held = ", ".join(f"{n} {s}" for s, n in result["holdings"].items()) or "no shares"
        return f"Account {result['account_id']}: {result['cash_usd']} USD cash; holdings: {held}."
    return (f"Order {result['order_id']} filled: {result['side']} {result['quantity']} {result['symbol']} at "
            f"{result['price_usd']} USD (total {result['total_usd']} USD).")


SPEC = tasks.Spec(finance.NAME, finance.execute, _answer, NO_CALL_REPLIES)
PHRASINGS = tasks.Phrasings(SINGLE, PARALLEL, IRRELEVANT)


def _chain(rng: random.Random, s: dict[str, Any], held: bool) -> Draft:
    """A call whose arguments or preconditions come from an earlier call's result."""
    kind, template = tasks.phrase(rng, CHAIN, held)
    if kind == "convert":
        steps = [[_call("get_fx_rate", s)], [_call("convert_amount", s)]]
    elif kind == "sell_all":
        steps = [[_call("get_portfolio", s)], [_call("sell", {**s, "sell_qty": s["holding"]})]]
    else:
        affordable = int(s["budget"] // finance.price_of(s["symbol"]))
        steps = [[_call("get_quote", s)], [_call("buy", {**s, "qty": affordable})]]
    return Draft("chain", [(template.format(**s), steps)], [(1, 0)])


def _recovery(rng: random.Random, s: dict[str, Any], held: bool) -> Draft:
    """A request with a misspelt ticker, the literal call the tool rejects, then the symbol its error names."""
    intent, template = tasks.phrase(rng, {k: SINGLE[k] for k in ("get_quote", "buy")}, held)
    symbols = side((finance.SYMBOLS_TRAIN, finance.SYMBOLS_TEST), held)
    s = {**s, "symbol": rng.choice([x for x in symbols if len(x) >= 3])}
    wrong = {**s, "symbol": tasks.typo(rng, s["symbol"], finance.SYMBOLS)}
    return Draft("recovery", [(template.format(**wrong), [[_call(intent, wrong)], [_call(intent, s)]])], [(1, 0)],
                 failing=frozenset({0}))


def _multi_turn(rng: random.Random, s: dict[str, Any], held: bool) -> Draft:
    """One request, then a follow-up that refers back to it ("buy 5 of them") and needs another call."""
    (first, second), follow = tasks.phrase(rng, FOLLOW_UPS, held)
    opening = rng.choice(side(SINGLE[first], held)).format(**s)
    deps = [(1, 0)] if second == "convert_amount" else []
    return Draft("multi_turn", [(opening, [[_call(first, s)]]), (follow.format(**s), [[_call(second, s)]])], deps)


def _goal(draft: Draft) -> dict[str, Any]:
    """The state changes the episode's successful calls must leave: orders placed, amounts converted."""
    steps = [step for _, turn in draft.turns for step in turn]
    calls = [c for k, step in enumerate(steps) if k not in draft.failing for c in step]
    goal = {"orders": [c["arguments"] for c in calls if c["name"] == "place_order"],
            "conversions": [c["arguments"] for c in calls if c["name"] == "convert_amount"]}
    return {key: items for key, items in goal.items() if items}


def make_episode(pattern: str, rng: random.Random, held: bool, idx: int, tools: list[Tool]) -> Episode:
    """One synthetic episode of `pattern`, its gold trajectory executed in the simulator."""
    s = _slots(rng, held)
    draft = tasks.draft(pattern, rng, s, held, PHRASINGS, _call,
                        {"chain": lambda: _chain(rng, s, held), "recovery": lambda: _recovery(rng, s, held),
                         "multi_turn": lambda: _multi_turn(rng, s, held)})
    draft.goal = _goal(draft)
    draft.frame(rng, held)
    return tasks.write(SPEC, finance.FinanceEnv(), draft, held, idx, tools)


def generate(n: int, shares: dict[str, float], heldout_fraction: float, seed: int) -> list[Episode]:
    """Generate `n` episodes with the given pattern shares; a `heldout_fraction` share is held out. Requests are
    unique: short finance requests ("What's AAPL trading at?") would otherwise repeat across splits."""
    return tasks.generate(make_episode, finance.catalog(), n, shares, heldout_fraction, seed, unique=True)


def generate_lines(n: int, shares: dict[str, float], heldout_fraction: float, seed: int,
                   workers: int = 1) -> list[tasks.Generated]:
    """`generate`'s episodes as JSON lines, drawn by up to `workers` processes (see `tasks.generate_lines`)."""
    return tasks.generate_lines(make_episode, finance.catalog(), n, shares, heldout_fraction, seed, unique=True,
                                workers=workers)
