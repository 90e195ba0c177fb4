"""Built-in domain `finance`: tool catalog, deterministic simulator and the TRL environment of a brokerage desk.

Like `travel`, the tools are the public methods of `FinanceEnv` (typed, Google docstrings, enums as
`(choices: [...])`), and the catalog is built from them, so SFT prompts, validation and GRPO's tool loop see
one schema. Quotes, exchange rates and starting portfolios are pure functions of their names; a session
keeps the rates fetched (converting needs the rate first: a chain) and the accounts' cash and holdings, which
orders change. Bad arguments raise `ToolError`, whose message says how to correct the call.
"""

from __future__ import annotations

from typing import Any

from components.domains import sim
from components.domains.sim import ToolError
from components.domains.sim import stable_hash as _h

NAME = "finance"
SYSTEM_PROMPT = "You are a helpful brokerage assistant. Call a tool when it helps; ask for a missing detail; answer directly when no tool fits."  # base.system_prompt: null
SYMBOLS_TRAIN = ("AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "META", "TSLA", "JPM", "V", "MA", "KO", "PEP", "NKE",
                 "DIS", "INTC", "AMD", "ORCL", "IBM", "CSCO", "ADBE", "CRM", "NFLX", "PYPL", "UBER", "SBUX", "MCD",
                 "WMT", "COST", "HD", "BA", "XOM", "CVX", "PFE", "MRK", "JNJ", "T", "VZ", "GS", "MS", "BAC")
SYMBOLS_TEST = ("SHOP", "SNOW", "PLTR", "ABNB", "ROKU", "ETSY", "DDOG", "CRWD")
SYMBOLS = SYMBOLS_TRAIN + SYMBOLS_TEST
ACCOUNTS_TRAIN = tuple(f"ACC-{n}" for n in range(1001, 2000))
ACCOUNTS_TEST = tuple(f"ACC-{n}" for n in range(7001, 7100))
ACCOUNTS = ACCOUNTS_TRAIN + ACCOUNTS_TEST
USD_VALUE = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067, "CHF": 1.13, "CAD": 0.73, "AUD": 0.66,
             "SEK": 0.095, "NOK": 0.093, "SGD": 0.74}  # what one unit is worth in US dollars
SIDES = ("buy", "sell")


def price_of(symbol: str) -> float:
    """Deterministic share price in USD, 20.00-499.99."""
    return round(20 + _h("price", symbol) % 48000 / 100, 2)


def rate_of(base: str, quote: str) -> float:
    """Units of `quote` per unit of `base`."""
    return round(USD_VALUE[base] / USD_VALUE[quote], 4)


def portfolio_of(account_id: str) -> dict[str, Any]:
    """Starting cash and holdings of an account; held-out accounts hold held-out symbols only."""
    universe = SYMBOLS_TEST if account_id in ACCOUNTS_TEST else SYMBOLS_TRAIN
    h = _h("account", account_id)
    picks = sorted({universe[(h >> (4 * k)) % len(universe)] for k in range(3)})
    return {"cash_usd": float(5000 + h % 45000),
            "holdings": {s: 5 + _h("holding", account_id, s) % 195 for s in picks}}


def _currency(value: str, name: str) -> str:
    code = str(value).strip().upper()
    if code not in USD_VALUE:
        raise ToolError(f"{name} must be one of {sorted(USD_VALUE)}, got {value!r}")
    return code


class FinanceEnv:
    """One client session of the brokerage simulator; public methods are the tools.

    `state` holds what the session has done (successful calls, rates fetched, conversions, orders) and the
    accounts it touched, with their cash and holdings after its orders.
    """

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.reset()

    def reset(self, **kwargs: Any) -> None:
        """Start a new session (TRL passes the dataset row's columns; they are not needed)."""
        self.state = {"log": [], "rates": [], "conversions": [], "orders": [], "accounts": {}}

    def _account(self, account_id: str) -> tuple[str, dict[str, Any]]:
        name = str(account_id).strip().upper()
        if name not in ACCOUNTS:
            raise ToolError(f"unknown account {account_id!r}")
        return name, self.state["accounts"].setdefault(name, portfolio_of(name))

    def get_quote(self, symbol: str) -> str:
        """Latest price of a stock.

        Args:
            symbol: Ticker symbol, e.g. AAPL.
        """
        name = sim.lookup(symbol, SYMBOLS, "symbol")
        change = (_h("change", name) % 801 - 400) / 100
        return sim.record(self.state, "get_quote", {"symbol": symbol},
                          {"symbol": name, "price_usd": price_of(name), "change_pct": change})

    def get_fx_rate(self, base: str, quote: str) -> str:
        """Exchange rate between two currencies.

        Args:
            base: Source currency. (choices: ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "SGD"])
            quote: Target currency. (choices: ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "SGD"])
        """
        src, dst = _currency(base, "base"), _currency(quote, "quote")
        if src == dst:
            raise ToolError("base and quote must differ")
        self.state["rates"].append({"base": src, "quote": dst})
        return sim.record(self.state, "get_fx_rate", {"base": base, "quote": quote},
                          {"base": src, "quote": dst, "rate": rate_of(src, dst)})

    def convert_amount(self, amount: float, base: str, quote: str) -> str:
        """Convert money at the exchange rate fetched with get_fx_rate.

        Args:
            amount: Amount in the base currency, greater than 0.
            base: Amount currency. (choices: ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "SGD"])
            quote: Target currency. (choices: ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "SEK", "NOK", "SGD"])
        """
        src, dst = _currency(base, "base"), _currency(quote, "quote")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
            raise ToolError(f"amount must be a number greater than 0, got {amount!r}")
        if {"base": src, "quote": dst} not in self.state["rates"]:
            raise ToolError(f"fetch the {src}/{dst} rate with get_fx_rate before converting")
        self.state["conversions"].append({"amount": amount, "base": src, "quote": dst})
        return sim.record(self.state, "convert_amount", {"amount": amount, "base": base, "quote": quote},
                          {"amount": amount, "base": src, "quote": dst,
                           "converted": round(amount * rate_of(src, dst), 2)})

    def get_portfolio(self, account_id: str) -> str:
        """Cash and holdings of a brokerage account.

        Args:
            account_id: Account id, e.g. ACC-1001.
        """
        name, account = self._account(account_id)
        return sim.record(self.state, "get_portfolio", {"account_id": account_id},
                          {"account_id": name, "cash_usd": account["cash_usd"], "holdings": account["holdings"]})

    def place_order(self, account_id: str, symbol: str, side: str, quantity: int) -> str:
        """Buy or sell shares at the latest price, from an account's cash or holdings.

        Args:
            account_id: Account id, e.g. ACC-1001.
            symbol: Ticker symbol, e.g. AAPL.
            side: Whether to buy or sell. (choices: ["buy", "sell"])
            quantity: Number of shares, a whole number greater than 0.
        """
        if side not in SIDES:
            raise ToolError(f"side must be one of {list(SIDES)}, got {side!r}")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise ToolError(f"quantity must be a whole number of shares greater than 0, got {quantity!r}")
        name, account = self._account(account_id)
        stock = sim.lookup(symbol, SYMBOLS, "symbol")
        price = price_of(stock)
        _settle(account, stock, side, quantity, price)
        order = {"account_id": name, "symbol": stock, "side": side, "quantity": quantity}
        self.state["orders"].append(order)
        return sim.record(self.state, "place_order",
                          {"account_id": account_id, "symbol": symbol, "side": side, "quantity": quantity},
                          {"order_id": f"O{_h(name, stock, side, quantity, len(self.state['orders'])) % 10**6:06d}",
                           "status": "filled", **order, "price_usd": price,
                           "total_usd": round(price * quantity, 2), "cash_usd": account["cash_usd"]})


def _settle(account: dict[str, Any], symbol: str, side: str, quantity: int, price: float) -> None:
    """Move cash and shares for one order, or raise when the account cannot cover it."""
    held, cost = account["holdings"].get(symbol, 0), round(price * quantity, 2)
    if side == "buy" and cost > account["cash_usd"]:
        raise ToolError(f"insufficient funds: {quantity} {symbol} cost {cost} USD, cash is {account['cash_usd']} USD")
    if side == "sell" and quantity > held:
        raise ToolError(f"cannot sell {quantity} {symbol}: the account holds {held}")
    account["cash_usd"] = round(account["cash_usd"] + (cost if side == "sell" else -cost), 2)
    account["holdings"][symbol] = held + (quantity if side == "buy" else -quantity)
    if not account["holdings"][symbol]:
        del account["holdings"][symbol]


TOOL_NAMES = ("get_quote", "get_fx_rate", "convert_amount", "get_portfolio", "place_order")


BOUNDS = {"amount": {"exclusiveMinimum": 0}, "quantity": {"minimum": 1}}  # what the docstrings say, as schema


def catalog() -> list[dict[str, Any]]:
    """OpenAI function schemas of the finance tools, built from `FinanceEnv`'s methods, with numeric bounds."""
    tools = sim.catalog(FinanceEnv(), TOOL_NAMES)
    for schema in tools:
        for key, prop in schema["function"]["parameters"]["properties"].items():
            prop.update(BOUNDS.get(key, {}))
    return tools


def execute(env: FinanceEnv, call: dict[str, Any]) -> tuple[str, bool]:
    """Run one parsed call in the simulator; returns (tool message content, succeeded)."""
    return sim.execute(env, TOOL_NAMES, call)


def goal_reached(env: FinanceEnv, expected_steps: list[list[dict]], goal: dict[str, Any]) -> bool:
    """Task completion (see `sim.goal_reached`)."""
    return sim.goal_reached(env, TOOL_NAMES, expected_steps, goal)
