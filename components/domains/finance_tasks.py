"""Task generator of the finance domain: synthetic episodes of every pattern, run through the simulator.

Exports `BUILDERS` for the shared generator (components/domains/generation.py): values, gold calls and phrasing
parts (`INTENTS`, composed by `phrasing.Voice`, with amounts and tickers in a voice's formats). Phrasing parts,
ticker symbols, accounts and currency pairs are each split into a training side and a held-out side, and so
are tool combinations: some parallel pairs and one follow-up combination have no training phrasings at all, so
they appear in the test split only. Patterns: single, parallel, chain (convert
after fetching the rate; sell a whole holding after reading the portfolio; buy what a budget affords after a
quote), recovery (a misspelt ticker: the tool error names the symbol meant), irrelevance and multi_turn (a
follow-up such as "buy 5 of them" needs a second call).
"""

from __future__ import annotations

import random
from typing import Any

from components.domains import finance, sim, tasks
from components.domains.phrasing import Intent, heads, side
from components.domains.tasks import Ctx, Draft

ACCOUNT = (["in account {account}", "for account {account}", "on account {account}", "with account {account}",
            "from account {account}"], ["using {account}", "via account {account}"])
INTENTS = {
    "get_quote": Intent(
        (heads("ask", "what's {symbol} trading at", "is {symbol} up or down today", "where is {symbol} trading",
              "how is {symbol} doing today", "what's the share price", "how much is one share") +
         heads("do", "give me a quote", "get the current price", "check the stock price", "look up the latest price",
             "pull up the price") + heads("say", "I want a quote", "I'd like the latest price"),
         heads("ask", "price check on {symbol}", "what does {symbol} cost per share") + heads("do", "fetch the going rate")),
        {"symbol": (["for {symbol}", "of {symbol}"], ["on {symbol}"])},
        ["{symbol} price?", "quote {symbol}", "{symbol} now?"]),
    "get_fx_rate": Intent(
        (heads("ask", "what's the exchange rate", "how many {quote} do I get for one {base}", "what is 1 {base} in {quote}",
              "what's the rate") + heads("do", "give me the exchange rate", "look up the rate", "check the fx rate") +
         heads("say", "I need the exchange rate"),
         heads("ask", "how much {quote} is one {base} worth") + heads("do", "quote me the conversion rate")),
        {"pair": (["from {base} to {quote}", "for {base}/{quote}", "for {base} into {quote}"],
                  ["of {base} against {quote}"])},
        ["{base}/{quote} rate?", "fx {base} to {quote}"]),
    "get_portfolio": Intent(
        (heads("do", "show me the holdings", "give me an overview", "list the positions", "pull up the portfolio") +
         heads("ask", "what's in my portfolio", "how much cash and stock do I have", "what do I own") +
         heads("say", "I want to see my positions"),
         heads("do", "summarise my brokerage holdings") + heads("ask", "what are my balance and positions")),
        {"account": (["of account {account}", "in account {account}", "for {account}", "on account {account}"],
                     ["under {account}"])},
        ["{account} holdings?", "portfolio {account}"]),
    "buy": Intent(
        (heads("do", "buy", "place a buy order for", "purchase", "get me") + heads("say", "I want to buy", "I'd like to buy"),
         heads("do", "acquire", "pick up")),
        {"order": (["{qty} shares of {symbol}", "{qty} {symbol}", "{qty} {symbol} shares"], ["{qty} x {symbol}"]),
         "account": ACCOUNT},
        ["buy {qty} {symbol} in {account}", "{account}: buy {qty} {symbol}"]),
    "sell": Intent(
        (heads("do", "sell", "place a sell order for", "get rid of", "dump") + heads("say", "I want to sell", "I'd like to sell"),
         heads("do", "offload", "dispose of")),
        {"order": (["{sell_qty} shares of {held}", "{sell_qty} {held}", "{sell_qty} of my {held} shares"],
                   ["{sell_qty} x {held}"]),
         "account": (["from account {account}", "in {account}", "on account {account}"], ["out of {account}"])},
        ["sell {sell_qty} {held} from {account}", "{account}: sell {sell_qty} {held}"]),
}
# Parallel intents; a combination on the held-out side only appears in the test split only.
PARALLEL = ([("get_quote", "get_quote2"), ("get_quote", "get_fx_rate"), ("get_fx_rate", "get_fx_rate2")],
            [("get_quote", "get_quote2"), ("get_quote", "get_fx_rate"), ("get_fx_rate", "get_fx_rate2"),
             ("get_portfolio", "get_quote"), ("get_fx_rate", "get_portfolio")])
# The second of two intents of one kind, asked with the episode's second values.
SECOND = {"get_quote2": Intent(tuple([h for h in heads if "{" not in h[0]] for heads in INTENTS["get_quote"].heads),
                               {"symbol": (["for {symbol2}", "of {symbol2}"], ["on {symbol2}"])}, ["{symbol2} price?"]),
          "get_fx_rate2": Intent(
              (heads("ask", "what's the exchange rate") + heads("do", "give me the rate", "look up the rate"), heads("do", "check the rate")),
              {"pair": (["from {base2} to {quote2}", "for {base2}/{quote2}"], ["of {base2} against {quote2}"])},
              ["{base2}/{quote2} rate?"])}
MISSING = {"get_quote": ([("symbol",)], [("symbol",)]), "get_fx_rate": ([("pair",)], [("pair",)]),
           "get_portfolio": ([("account",)], [("account",)]), "buy": ([("account",), ("order",)], [("account",)]),
           "sell": ([("account",)], [("account",)])}
ASK_FOR = {"symbol": "which stock", "pair": "which two currencies", "account": "which account",
           "order": "which stock and how many shares"}
NEAR_MISSES = (
    ["Transfer 500 USD from {account} to my savings.", "What's my credit card balance?",
     "Pay my electricity bill from {account}.", "Open a new brokerage account for me.",
     "Set a stop-loss on {symbol} at 10% below the price.", "Show me {symbol}'s last earnings report.",
     "Wire money to my landlord.", "What will {symbol} trade at next month?", "Apply for a mortgage for me.",
     "Cancel my last order in {account}.", "What's the interest rate on my savings account?",
     "Buy some bitcoin for me.", "Set up a monthly direct debit from {account}."],
    ["Send 200 EUR to my sister.", "Close account {account} for good.", "What dividend does {symbol} pay?",
     "Short 10 {symbol} for me.", "Lend me 1000 USD."])
CONTEXTS = (["I'm saving for a house.", "My budget is tight.", "I'm new to investing.", "It's for my retirement.",
             "I'm checking before the market closes.", "My advisor suggested it.", "I have a meeting soon."],
            ["I just got my bonus.", "I'm a bit nervous about the market.", "It's for my kids' college fund.",
             "My friend keeps talking about it."])
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
SMALL_TALK = (
    ["Hi there!", "Thanks, that's all.", "What is a dividend?", "Explain what an ETF is.", "Tell me a joke.",
     "Should I save or invest?", "What does P/E ratio mean?", "How do bonds work?", "Good morning!",
     "I bought {symbol} years ago.", "My account number is {account}.", "What's the history of the stock market?",
     "How do I open a savings account?", "Who founded {symbol}?", "What is inflation?"],
    ["What is compound interest?", "Recommend a book on investing.", "{symbol} has a nice logo.",
     "See you tomorrow!"])
# Statements that ask for nothing, for the aside twins' contrast pairs (`ingest.aside_twins`); training side only,
# none of them a held-out small-talk form or context.
ASIDES = ("I bought {symbol} years ago.", "{symbol} makes my favourite products.",
          "My dad worked at {symbol} for years.", "I read an article about {symbol} today.",
          "{symbol}'s CEO gave a great interview.", "I owned {symbol} back in college.",
          "{symbol} ads are everywhere lately.", "I visited the {symbol} headquarters once.",
          "The markets were busy this morning.", "My account number is {account}.",
          "I've been reading about index funds.", "My sister works in banking.")
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


def _chain(c: Ctx) -> Draft:
    """A call whose arguments or preconditions come from an earlier call's result."""
    s = c.slots
    kind, template = tasks.phrase(c.rng, CHAIN, c.held)
    if kind == "convert":
        steps = [[_call("get_fx_rate", s)], [_call("convert_amount", s)]]
    elif kind == "sell_all":
        steps = [[_call("get_portfolio", s)], [_call("sell", {**s, "sell_qty": s["holding"]})]]
    else:
        affordable = int(s["budget"] // finance.price_of(s["symbol"]))
        steps = [[_call("get_quote", s)], [_call("buy", {**s, "qty": affordable})]]
    return Draft("chain", [(c.text(c.voice.say(template)), steps)], [(1, 0)])


def _recovery(c: Ctx) -> Draft:
    """A request with a misspelt ticker, the literal call the tool rejects, then the symbol its error names."""
    intent = c.rng.choice(["buy", "get_quote"])
    symbols = side((finance.SYMBOLS_TRAIN, finance.SYMBOLS_TEST), c.held)
    s = {**c.slots, "symbol": c.rng.choice([x for x in symbols if len(x) >= 3])}
    wrong = {**s, "symbol": tasks.typo(c.rng, s["symbol"], finance.SYMBOLS)}
    user = c.voice.fill(c.voice.ask(INTENTS[intent]), wrong)
    return Draft("recovery", [(user, [[_call(intent, wrong)], [_call(intent, s)]])], [(1, 0)],
                 failing=frozenset({0}))


def _multi_turn(c: Ctx) -> Draft:
    """One request, then a follow-up that refers back to it ("buy 5 of them") and needs another call."""
    (first, second), follow = tasks.phrase(c.rng, FOLLOW_UPS, c.held)
    opening = c.text(c.voice.ask(INTENTS[first]))
    deps = [(1, 0)] if second == "convert_amount" else []
    return Draft("multi_turn", [(opening, [[_call(first, c.slots)]]),
                                (c.text(c.voice.follow(follow)), [[_call(second, c.slots)]])], deps)


def _goal(draft: Draft) -> dict[str, Any]:
    """The state changes the episode's successful calls must leave: orders placed, amounts converted."""
    steps = [step for _, turn in draft.turns for step in turn]
    calls = [c for k, step in enumerate(steps) if k not in draft.failing for c in step]
    goal = {"orders": [c["arguments"] for c in calls if c["name"] == "place_order"],
            "conversions": [c["arguments"] for c in calls if c["name"] == "convert_amount"]}
    return {key: items for key, items in goal.items() if items}


# Unique requests: short finance requests ("What's AAPL trading at?") would otherwise repeat across splits.
BUILDERS = tasks.Builders(
    spec=SPEC, env=finance.FinanceEnv, slots=_slots, call=_call, intents=INTENTS, parallel=PARALLEL,
    small_talk=SMALL_TALK, near_misses=NEAR_MISSES, missing=MISSING, ask_for=ASK_FOR, contexts=CONTEXTS,
    own={"chain": _chain, "recovery": _recovery, "multi_turn": _multi_turn}, goal=_goal, unique=True,
    extra_intents=SECOND, asides=ASIDES)
