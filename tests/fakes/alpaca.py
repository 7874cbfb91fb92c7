"""A fake Alpaca: a real HTTP server on loopback that speaks the parts of Alpaca's Trading API
v2 and Market Data API that tradewire uses, in the JSON shapes alpaca-py parses.

It keeps the ground truth (every order each account ever had), matches orders against the
trades a test makes, and misbehaves on request. Its matching is written from Alpaca's
documentation, not from tradewire's, so the adapter is checked against an independent model:
market orders fill at the last trade (or rest until the next one), limits at the trade price
once it reaches them, stops become market orders (stop-limits become limits) once a trade
reaches the stop; ioc and fok never rest; opg and cls behave like day (no auctions here).
Buying power is cash, less what open buys reserve at their limit (or stop, or the last price),
less twice the value of open shorts (their proceeds sit in cash and each holds equal margin).
Positions are netted per symbol; an order that would flip one is refused with 403, and a crypto
sale needs the coins. Fills are whole unless a trade names its size.

The trading stream (wss .../stream, trade_updates) runs on a port of its own (`stream_url`):
authenticate, listen, then an update for every order change (new, fill, partial_fill,
canceled, expired).

Not Alpaca's: the control API under /_fake/ (accounts, trades, clock, bars, faults, the ground
truth and a log of the API requests) and "markets": each account trades in one named market,
with its own prices and clock, so tests sharing one server share nothing.

Faults, each for the next `times` matching requests (of one account, when `account` is given):
  error_before   answer `status` (500) without acting
  error_after    store the order, then answer `status` (500; 502 and 504 answer a proxy's HTML)
  timeout_after  store the order, then say nothing for `hold` seconds
  drop_after     store the order, then close the connection without an answer
  duplicate      store the order, then answer 422 "client_order_id must be unique" (what a
                 resent request meets when the first one got through)
  rate_limit     answer 429 without acting
  lag            lookups by client_order_id answer 404 (the broker has not caught up)
  fills_lag      the fill activity feed answers [] (it trails the order's filled_qty)
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hmac
import json
import queue
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

ZERO = Decimal(0)
TYPES = frozenset({"market", "limit", "stop", "stop_limit"})
TIME_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})
CRYPTO_TIME_IN_FORCE = frozenset({"gtc", "ioc"})
SESSION_BOUND = frozenset({"day", "opg", "cls"})  # what the close of a session expires
DEFAULT_ROUTE = {"error_before": "submit", "error_after": "submit", "timeout_after": "submit",
                 "drop_after": "submit", "duplicate": "submit", "rate_limit": "submit",
                 "lag": "lookup", "fills_lag": "activities"}
AFTER_ACCEPTING = frozenset({"error_after", "timeout_after", "drop_after", "duplicate"})
PROXY_PAGE = "<html><body><h1>{status}</h1>The upstream server did not answer in time.</body></html>"


class ApiError(Exception):
    """An answer in Alpaca's error shape: {"code": ..., "message": ...}."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def unauthorized() -> ApiError:
    return ApiError(401, 40110000, "request is not authorized")


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def text(d: Decimal | None) -> str | None:
    """Decimals as Alpaca writes them: plain digits, never an exponent."""
    if d is None:
        return None
    return "0" if d == 0 else format(d, "f")


def when(value: str) -> datetime:
    """An RFC 3339 time as alpaca-py or the fake writes it (naive means UTC)."""
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def decimal_field(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiError(422, 40010001, f"{name} is invalid") from None


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-asset:{symbol}"))


# ---- the book ------------------------------------------------------------------------------


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    type: str
    time_in_force: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    extended_hours: bool
    position_intent: str
    submitted_at: datetime
    status: str = "new"
    filled_qty: Decimal = ZERO
    filled_value: Decimal = ZERO
    triggered: bool = False
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in ("new", "partially_filled")

    @property
    def buys(self) -> bool:
        return self.side == "buy"

    @property
    def crypto(self) -> bool:
        return "/" in self.symbol

    def to_json(self) -> dict[str, Any]:
        avg = self.filled_value / self.filled_qty if self.filled_qty else None
        return {
            "id": self.id, "client_order_id": self.client_order_id,
            "created_at": iso(self.submitted_at), "updated_at": iso(self.updated_at or self.submitted_at),
            "submitted_at": iso(self.submitted_at), "filled_at": iso(self.filled_at),
            "expired_at": iso(self.expired_at), "canceled_at": iso(self.canceled_at),
            "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
            "asset_id": asset_id(self.symbol), "symbol": self.symbol,
            "asset_class": "crypto" if self.crypto else "us_equity", "notional": None,
            "qty": text(self.qty), "filled_qty": text(self.filled_qty), "filled_avg_price": text(avg),
            "order_class": "", "order_type": self.type, "type": self.type, "side": self.side,
            "position_intent": self.position_intent, "time_in_force": self.time_in_force,
            "limit_price": text(self.limit_price), "stop_price": text(self.stop_price),
            "status": self.status, "extended_hours": self.extended_hours, "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None, "expires_at": None,
        }


@dataclass
class Account:
    id: str
    number: str
    key_id: str
    secret_key: str
    market: str
    cash: Decimal
    created_at: datetime
    positions: dict[str, Decimal] = field(default_factory=dict)  # order symbol -> signed qty
    entry: dict[str, Decimal] = field(default_factory=dict)  # average entry price
    orders: list[Order] = field(default_factory=list)
    by_client_id: dict[str, Order] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)  # FILL activities, oldest first

    def open_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]:
        return [o for o in self.orders if o.is_open and symbol in (None, o.symbol)
                and side in (None, o.side)]


@dataclass
class Market:
    prices: dict[str, Decimal] = field(default_factory=dict)
    at: datetime | None = None  # None: the wall clock

    def now(self) -> datetime:
        return self.at or datetime.now(UTC)


class Book:
    """Accounts, orders and fills of every market; every method runs under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.by_key: dict[str, Account] = {}
        self.markets: dict[str, Market] = {}
        self.listeners: list[Callable[[Account, dict[str, Any]], None]] = []  # trade updates

    def publish(self, acct: Account, event: str, order: Order, at: datetime,
                **fill: Decimal) -> None:
        update: dict[str, Any] = {"event": event, "timestamp": iso(at), "order": order.to_json()}
        if fill:
            update.update({"execution_id": str(uuid.uuid4()), "price": text(fill["price"]),
                           "qty": text(fill["qty"]),
                           "position_qty": text(acct.positions.get(order.symbol, ZERO))})
        for listener in self.listeners:
            listener(acct, update)

    def market(self, name: str) -> Market:
        return self.markets.setdefault(name, Market())

    def open_account(self, cash: Decimal, market: str) -> Account:
        acct = Account(id=str(uuid.uuid4()), number=f"PA{uuid.uuid4().int % 10**10:010d}",
                       key_id="PK" + uuid.uuid4().hex[:18].upper(), secret_key=uuid.uuid4().hex * 2,
                       market=market, cash=cash, created_at=self.market(market).now())
        self.accounts[acct.id] = acct
        self.by_key[acct.key_id] = acct
        return acct

    def authenticate(self, key_id: str | None, secret: str | None) -> Account | None:
        acct = self.by_key.get(key_id or "")
        if acct is None or not hmac.compare_digest(acct.secret_key, secret or ""):
            return None
        return acct

    def price(self, acct: Account, symbol: str) -> Decimal | None:
        return self.market(acct.market).prices.get(symbol)

    # ---- orders ----------------------------------------------------------------------------

    def submit(self, acct: Account, body: dict[str, Any]) -> Order:
        order = self._parse(acct, body)
        if order.client_order_id in acct.by_client_id:
            raise ApiError(422, 40010001, "client_order_id must be unique")
        self._check_funds(acct, order)
        acct.orders.append(order)
        acct.by_client_id[order.client_order_id] = order
        self.publish(acct, "new", order, order.submitted_at)
        price = self.price(acct, order.symbol)
        if price is not None:
            self._match(acct, order, price, None, order.submitted_at)
        if order.is_open and order.time_in_force in ("ioc", "fok"):
            self._end(acct, order, "canceled", order.submitted_at)
        return order

    def _parse(self, acct: Account, body: dict[str, Any]) -> Order:
        symbol, side = str(body.get("symbol") or ""), body.get("side")
        kind, tif = body.get("type") or body.get("order_type"), body.get("time_in_force")
        qty = decimal_field(body, "qty")
        limit, stop = decimal_field(body, "limit_price"), decimal_field(body, "stop_price")
        coid = str(body.get("client_order_id") or uuid.uuid4())
        extended = bool(body.get("extended_hours"))
        problems = [
            (not symbol, "symbol is required"),
            (body.get("notional") is not None, "notional orders are not supported here"),
            (body.get("order_class") not in (None, "", "simple"), "only simple orders are supported here"),
            (qty is None or qty <= 0, "qty must be > 0"),
            (side not in ("buy", "sell"), "side must be buy or sell"),
            (kind not in TYPES, "invalid order type"),
            (tif not in TIME_IN_FORCE, "invalid time_in_force"),
            (kind in ("limit", "stop_limit") and limit is None, "limit_price is required"),
            (kind in ("stop", "stop_limit") and stop is None, "stop_price is required"),
            (len(coid) > 48, "client_order_id must be no more than 48 characters"),
        ]
        for failed, message in problems:
            if failed:
                raise ApiError(422, 40010001, message)
        if extended and (kind != "limit" or tif != "day"):
            raise ApiError(422, 42210000, "extended hours order must be DAY limit orders")
        if "/" in symbol and tif not in CRYPTO_TIME_IN_FORCE:
            raise ApiError(422, 42210000, "invalid crypto time_in_force")
        assert qty is not None
        held = acct.positions.get(symbol, ZERO)
        closing = (held > 0 and side == "sell") or (held < 0 and side == "buy")
        intent = f"{side}_to_{'close' if closing else 'open'}"
        return Order(id=str(uuid.uuid4()), client_order_id=coid, symbol=symbol, side=str(side),
                     qty=qty, type=str(kind), time_in_force=str(tif), limit_price=limit,
                     stop_price=stop, extended_hours=extended, position_intent=intent,
                     submitted_at=self.market(acct.market).now())

    def _check_funds(self, acct: Account, order: Order) -> None:
        held = acct.positions.get(order.symbol, ZERO)
        if (held > 0 and not order.buys) or (held < 0 and order.buys):
            # Closing: only what open orders have not already promised; more would flip it.
            promised = sum((o.remaining for o in acct.open_orders(order.symbol, order.side)), ZERO)
            available = abs(held) - promised
            if order.qty > available:
                raise ApiError(403, 40310000, f"insufficient qty available for order (requested: "
                                              f"{text(order.qty)}, available: {text(available)})")
            return
        if order.crypto and not order.buys:
            base = order.symbol.split("/")[0]
            raise ApiError(403, 40310000, f"insufficient balance for {base} (requested: "
                                          f"{text(order.qty)}, available: 0)")
        price = order.limit_price or order.stop_price or self.price(acct, order.symbol)
        if price is not None and order.qty * price > self.buying_power(acct):
            raise ApiError(403, 40310000, "insufficient buying power")

    def cancel(self, acct: Account, order_id: str) -> None:
        order = next((o for o in acct.orders if o.id == order_id), None)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        if not order.is_open:
            raise ApiError(422, 42210000, f'order is already in "{order.status}" state')
        self._end(acct, order, "canceled", self.market(acct.market).now())

    def trade(self, market: str, symbol: str, price: Decimal, at: datetime | None,
              size: Decimal | None) -> int:
        """The market trades `symbol` at `price` (`size` of it, or without limit): resting
        orders of every account in the market match in the order they arrived."""
        m = self.market(market)
        m.prices[symbol] = price
        m.at = at or m.at
        now = m.now()
        filled, left = 0, size
        for acct in [a for a in self.accounts.values() if a.market == market]:
            for order in acct.open_orders(symbol):
                if left is not None and left <= 0:
                    return filled
                used = self._match(acct, order, price, left, now)
                filled += used > 0
                left = None if left is None else left - used
        return filled

    def close_session(self, market: str, at: datetime | None) -> int:
        """The session ends: open day (and opg, cls) orders expire."""
        m = self.market(market)
        m.at = at or m.at
        expired = 0
        for acct in [a for a in self.accounts.values() if a.market == market]:
            for order in acct.open_orders():
                if order.time_in_force in SESSION_BOUND:
                    self._end(acct, order, "expired", m.now())
                    expired += 1
        return expired

    def _match(self, acct: Account, order: Order, price: Decimal, size: Decimal | None,
               at: datetime) -> Decimal:
        if not self._marketable(order, price):
            return ZERO
        qty = order.remaining if size is None else min(order.remaining, size)
        if qty <= 0 or (order.time_in_force == "fok" and qty < order.remaining):
            return ZERO
        self._fill(acct, order, qty, price, at)
        return qty

    @staticmethod
    def _marketable(order: Order, price: Decimal) -> bool:
        if order.type in ("stop", "stop_limit") and not order.triggered:
            assert order.stop_price is not None
            if not (price >= order.stop_price if order.buys else price <= order.stop_price):
                return False
            order.triggered = True  # a triggered stop-limit is a limit from now on
        if order.type in ("market", "stop"):
            return True
        assert order.limit_price is not None
        return price <= order.limit_price if order.buys else price >= order.limit_price

    def _fill(self, acct: Account, order: Order, qty: Decimal, price: Decimal, at: datetime) -> None:
        sign = 1 if order.buys else -1
        order.filled_qty += qty
        order.filled_value += qty * price
        order.status = "filled" if order.remaining == 0 else "partially_filled"
        order.updated_at = at
        order.filled_at = at if order.status == "filled" else None
        acct.cash -= sign * qty * price
        self._move(acct, order.symbol, sign * qty, price)
        acct.fills.append({
            "id": f"{at.astimezone(UTC):%Y%m%d%H%M%S}{at.microsecond // 1000:03d}::{uuid.uuid4()}",
            "account_id": acct.id, "activity_type": "FILL", "transaction_time": iso(at),
            "type": "fill" if order.status == "filled" else "partial_fill",
            "price": text(price), "qty": text(qty), "side": order.side, "symbol": order.symbol,
            "leaves_qty": text(order.remaining), "order_id": order.id,
            "cum_qty": text(order.filled_qty), "order_status": order.status,
        })
        self.publish(acct, "fill" if order.status == "filled" else "partial_fill", order, at,
                     price=price, qty=qty)

    @staticmethod
    def _move(acct: Account, symbol: str, delta: Decimal, price: Decimal) -> None:
        held = acct.positions.get(symbol, ZERO)
        after = held + delta
        if after == 0:
            acct.positions.pop(symbol, None)
            acct.entry.pop(symbol, None)
            return
        if held == 0 or (held > 0) == (delta > 0):  # opening or adding: a new average
            acct.entry[symbol] = (acct.entry.get(symbol, ZERO) * abs(held) + price * abs(delta)) / abs(after)
        acct.positions[symbol] = after

    def _end(self, acct: Account, order: Order, status: str, at: datetime) -> None:
        order.status, order.updated_at = status, at
        if status == "canceled":
            order.canceled_at = at
        else:
            order.expired_at = at
        self.publish(acct, status, order, at)

    # ---- the account -------------------------------------------------------------------------

    def buying_power(self, acct: Account) -> Decimal:
        reserved = sum((o.remaining * (o.limit_price or o.stop_price or self.price(acct, o.symbol) or ZERO)
                        for o in acct.open_orders(side="buy")), ZERO)
        shorts = sum((-q * self._mark(acct, s) for s, q in acct.positions.items() if q < 0), ZERO)
        return acct.cash - reserved - 2 * shorts

    def _mark(self, acct: Account, symbol: str) -> Decimal:
        return self.price(acct, symbol) or acct.entry.get(symbol, ZERO)

    def account_json(self, acct: Account) -> dict[str, Any]:
        longs = sum((q * self._mark(acct, s) for s, q in acct.positions.items() if q > 0), ZERO)
        shorts = sum((q * self._mark(acct, s) for s, q in acct.positions.items() if q < 0), ZERO)
        equity, power = acct.cash + longs + shorts, self.buying_power(acct)
        return {
            "id": acct.id, "account_number": acct.number, "status": "ACTIVE",
            "crypto_status": "ACTIVE", "currency": "USD", "buying_power": text(power),
            "regt_buying_power": text(power), "non_marginable_buying_power": text(power),
            "options_buying_power": text(power), "cash": text(acct.cash), "accrued_fees": "0",
            "pending_transfer_in": "0", "pending_transfer_out": "0", "portfolio_value": text(equity),
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "created_at": iso(acct.created_at),
            "trade_suspended_by_user": False, "multiplier": "1", "shorting_enabled": True,
            "equity": text(equity), "last_equity": text(equity), "long_market_value": text(longs),
            "short_market_value": text(shorts), "initial_margin": "0", "maintenance_margin": "0",
            "last_maintenance_margin": "0", "sma": "0", "daytrade_count": 0,
            "options_approved_level": 0, "options_trading_level": 0,
        }

    def positions_json(self, acct: Account) -> list[dict[str, Any]]:
        out = []
        for symbol, qty in sorted(acct.positions.items()):
            crypto, mark, entry = "/" in symbol, self._mark(acct, symbol), acct.entry[symbol]
            promised = sum((o.remaining for o in acct.open_orders(symbol, "sell" if qty > 0 else "buy")),
                           ZERO)
            out.append({
                # Alpaca names crypto positions without the slash (BTCUSD), orders with it.
                "asset_id": asset_id(symbol), "symbol": symbol.replace("/", ""),
                "exchange": "CRYPTO" if crypto else "NASDAQ",
                "asset_class": "crypto" if crypto else "us_equity", "asset_marginable": not crypto,
                "qty": text(qty), "qty_available": text(qty - promised if qty > 0 else qty + promised),
                "side": "long" if qty > 0 else "short", "avg_entry_price": text(entry),
                "market_value": text(qty * mark), "cost_basis": text(qty * entry),
                "unrealized_pl": text(qty * (mark - entry)), "unrealized_plpc": "0",
                "unrealized_intraday_pl": text(qty * (mark - entry)), "unrealized_intraday_plpc": "0",
                "current_price": text(mark), "lastday_price": text(mark), "change_today": "0",
            })
        return out

    def orders_json(self, acct: Account, q: dict[str, str]) -> list[dict[str, Any]]:
        wanted = q.get("status", "open")
        rows = [o for o in acct.orders
                if wanted == "all" or (wanted == "open") == o.is_open]
        if q.get("symbols"):
            rows = [o for o in rows if o.symbol in q["symbols"].split(",")]
        if q.get("side"):
            rows = [o for o in rows if o.side == q["side"]]
        if q.get("after"):
            rows = [o for o in rows if o.submitted_at > when(q["after"])]
        if q.get("until"):
            rows = [o for o in rows if o.submitted_at <= when(q["until"])]
        rows.sort(key=lambda o: o.submitted_at, reverse=q.get("direction", "desc") == "desc")
        return [o.to_json() for o in rows[:min(int(q.get("limit", 50)), 500)]]

    def fills_json(self, acct: Account, q: dict[str, str]) -> list[dict[str, Any]]:
        rows = list(acct.fills)
        if q.get("after"):
            rows = [a for a in rows if when(a["transaction_time"]) > when(q["after"])]
        if q.get("until"):
            rows = [a for a in rows if when(a["transaction_time"]) <= when(q["until"])]
        if q.get("direction", "desc") == "desc":
            rows.reverse()
        if q.get("page_token"):
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(q["page_token"]) + 1:] if q["page_token"] in ids else []
        return rows[:min(int(q.get("page_size", 100)), 100)]


# ---- HTTP --------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    route: str
    times: int
    status: int = 500
    hold: float = 5.0
    account_id: str | None = None


@dataclass
class Reply:
    status: int
    payload: Any = None
    raw: str | None = None  # a body that is not JSON (a proxy's error page)
    then: str | None = None  # "drop": close without answering; "hold": answer after `hold`
    hold: float = 0.0
    entry: dict[str, Any] | None = None  # its line in the request log


ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v2/orders"), "submit"),
    ("GET", re.compile(r"/v2/orders:by_client_order_id"), "lookup"),
    ("GET", re.compile(r"/v2/orders"), "orders"),
    ("GET", re.compile(r"/v2/orders/(?P<id>[^/]+)"), "order"),
    ("DELETE", re.compile(r"/v2/orders/(?P<id>[^/]+)"), "cancel"),
    ("GET", re.compile(r"/v2/account"), "account"),
    ("GET", re.compile(r"/v2/positions"), "positions"),
    ("GET", re.compile(r"/v2/account/activities/FILL"), "activities"),
    ("GET", re.compile(r"/v2/stocks/bars"), "bars"),
    ("GET", re.compile(r"/v1beta3/crypto/us/bars"), "crypto_bars"),
]


class Server:
    """The fake's state behind the transport: the book, bars, faults and the request log."""

    def __init__(self) -> None:
        self.book = Book()
        self.bars: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.subscribers: dict[str, list[queue.Queue[str]]] = {}  # account id -> its streams
        self.book.listeners.append(self._fan_out)

    def _fan_out(self, acct: Account, update: dict[str, Any]) -> None:
        message = json.dumps({"stream": "trade_updates", "data": update})
        for inbox in self.subscribers.get(acct.id, []):
            inbox.put(message)

    def stream(self, conn: ServerConnection) -> None:
        """One trade-updates connection: authenticate, listen, then every update pushed."""
        try:
            acct = self._stream_login(conn)
            if acct is None:
                return
            inbox: queue.Queue[str] = queue.Queue()
            with self.book.lock:
                self.subscribers.setdefault(acct.id, []).append(inbox)
            try:
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        conn.recv(timeout=0.02)  # the client says nothing more; this sees it go
                    while not inbox.empty():
                        conn.send(inbox.get())
            finally:
                with self.book.lock:
                    self.subscribers[acct.id].remove(inbox)
        except (ConnectionClosed, TimeoutError, ValueError):
            return

    def _stream_login(self, conn: ServerConnection) -> Account | None:
        auth = json.loads(conn.recv(timeout=10))
        data = auth.get("data") or {}
        with self.book.lock:
            acct = self.book.authenticate(data.get("key_id"), data.get("secret_key"))
        status = "authorized" if auth.get("action") == "authenticate" and acct else "unauthorized"
        conn.send(json.dumps({"stream": "authorization",
                              "data": {"action": "authenticate", "status": status}}))
        if acct is None:
            return None
        listen = json.loads(conn.recv(timeout=10))
        streams = (listen.get("data") or {}).get("streams") or []
        conn.send(json.dumps({"stream": "listening", "data": {"streams": streams}}))
        return acct if "trade_updates" in streams else None

    def take_fault(self, kinds: frozenset[str], route: str, acct: Account | None) -> Fault | None:
        for fault in self.faults:
            if (fault.kind in kinds and fault.times > 0 and fault.route in (route, "any")
                    and fault.account_id in (None, acct.id if acct else None)):
                fault.times -= 1
                return fault
        return None

    def api(self, method: str, path: str, q: dict[str, str], body: Any,
            headers: dict[str, str]) -> Reply:
        route, params = "unknown", {}
        with self.book.lock:
            acct = self.book.authenticate(headers.get("apca-api-key-id"),
                                          headers.get("apca-api-secret-key"))
            try:
                route, params = self._route(method, path)
                reply = self._answer(route, params, q, body, acct, headers)
            except ApiError as exc:
                reply = Reply(exc.status, {"code": exc.code, "message": exc.message})
            reply.entry = {"method": method, "path": path, "query": q, "body": body,
                           "route": route, "status": reply.status, "then": reply.then,
                           "account_id": acct.id if acct else None}
            self.log.append(reply.entry)
            return reply

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
        for verb, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return name, match.groupdict()
        raise ApiError(404, 40410000, "endpoint not found")

    def _answer(self, route: str, params: dict[str, str], q: dict[str, str], body: Any,
                acct: Account | None, headers: dict[str, str]) -> Reply:
        anonymous = route == "crypto_bars" and "apca-api-key-id" not in headers
        if acct is None and not anonymous:
            raise unauthorized()
        fault = self.take_fault(frozenset({"error_before", "rate_limit"}), route, acct)
        if fault is not None and fault.kind == "rate_limit":
            raise ApiError(429, 42910000, "rate limit exceeded")
        if fault is not None:
            return self._server_error(fault.status)
        if route in ("bars", "crypto_bars"):
            return Reply(200, self._bars(q))
        assert acct is not None
        return self._trading(route, params, q, body, acct)

    def _trading(self, route: str, params: dict[str, str], q: dict[str, str], body: Any,
                 acct: Account) -> Reply:
        book = self.book
        if route == "submit":
            return self._after_accepting(acct, book.submit(acct, body if isinstance(body, dict) else {}))
        if route == "lookup":
            order = acct.by_client_id.get(q.get("client_order_id", ""))
            if order is None or self.take_fault(frozenset({"lag"}), route, acct):
                raise ApiError(404, 40410000, "order not found")
            return Reply(200, order.to_json())
        if route == "order":
            order = next((o for o in acct.orders if o.id == params["id"]), None)
            if order is None:
                raise ApiError(404, 40410000, "order not found")
            return Reply(200, order.to_json())
        if route == "cancel":
            book.cancel(acct, params["id"])
            return Reply(204)
        if route == "orders":
            return Reply(200, book.orders_json(acct, q))
        if route == "activities":
            lagging = self.take_fault(frozenset({"fills_lag"}), route, acct)
            return Reply(200, [] if lagging else book.fills_json(acct, q))
        if route == "positions":
            return Reply(200, book.positions_json(acct))
        return Reply(200, book.account_json(acct))

    def _after_accepting(self, acct: Account, order: Order) -> Reply:
        reply = Reply(200, order.to_json())
        fault = self.take_fault(AFTER_ACCEPTING, "submit", acct)
        if fault is None:
            return reply
        if fault.kind == "error_after":
            return self._server_error(fault.status)
        if fault.kind == "duplicate":
            return Reply(422, {"code": 40010001, "message": "client_order_id must be unique"})
        if fault.kind == "drop_after":
            return Reply(0, then="drop")
        return Reply(200, order.to_json(), then="hold", hold=fault.hold)

    @staticmethod
    def _server_error(status: int) -> Reply:
        if status in (502, 503, 504):
            return Reply(status, raw=PROXY_PAGE.format(status=status))
        return Reply(status, {"code": 50010000, "message": "internal server error occurred"})

    def _bars(self, q: dict[str, str]) -> dict[str, Any]:
        out: dict[str, list[dict[str, Any]]] = {}
        for symbol in q.get("symbols", "").split(","):
            rows = sorted(self.bars.get((symbol, q.get("timeframe", "")), []), key=lambda b: when(b["t"]))
            if q.get("start"):
                rows = [b for b in rows if when(b["t"]) >= when(q["start"])]
            if q.get("end"):
                rows = [b for b in rows if when(b["t"]) <= when(q["end"])]
            if q.get("sort") == "desc":
                rows.reverse()
            if rows:
                out[symbol] = rows[:int(q["limit"])] if q.get("limit") else rows
        return {"bars": out, "next_page_token": None}

    # ---- control ---------------------------------------------------------------------------

    def control(self, method: str, path: str, q: dict[str, str], body: Any) -> Reply:
        book, body = self.book, body or {}
        with book.lock:
            if (method, path) == ("POST", "/_fake/accounts"):
                acct = book.open_account(Decimal(str(body["cash"])), body.get("market", "default"))
                return Reply(201, {"account_id": acct.id, "key_id": acct.key_id,
                                   "secret_key": acct.secret_key})
            if (method, path) == ("POST", "/_fake/trades"):
                size = Decimal(str(body["size"])) if body.get("size") is not None else None
                filled = book.trade(body.get("market", "default"), body["symbol"],
                                    Decimal(str(body["price"])), _at(body), size)
                return Reply(200, {"filled": filled})
            if (method, path) == ("POST", "/_fake/clock"):
                book.market(body.get("market", "default")).at = _at(body)
                return Reply(200, {})
            if (method, path) == ("POST", "/_fake/close"):
                return Reply(200, {"expired": book.close_session(body.get("market", "default"), _at(body))})
            if (method, path) == ("POST", "/_fake/bars"):
                self.bars[(body["symbol"], body["timeframe"])] = list(body["bars"])
                return Reply(200, {"count": len(body["bars"])})
            if (method, path) == ("POST", "/_fake/faults"):
                kind = body["kind"]
                self.faults.append(Fault(kind=kind, route=body.get("route") or DEFAULT_ROUTE[kind],
                                         times=int(body.get("times", 1)),
                                         status=int(body.get("status") or 500),
                                         hold=float(body.get("hold") or 5.0),
                                         account_id=body.get("account_id")))
                return Reply(201, {})
            if (method, path) == ("DELETE", "/_fake/faults"):
                self.faults.clear()
                return Reply(204)
            if (method, path) == ("GET", "/_fake/orders"):
                acct = book.accounts[q["account_id"]]
                return Reply(200, [o.to_json() for o in acct.orders])
            if (method, path) == ("GET", "/_fake/streams"):
                return Reply(200, {"listening": len(self.subscribers.get(q["account_id"], []))})
            if (method, path) == ("GET", "/_fake/requests"):
                return Reply(200, list(self.log))
        return Reply(404, {"code": 40410000, "message": f"no control endpoint {method} {path}"})


def _at(body: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(body["at"]) if body.get("at") else None


class Handler(BaseHTTPRequestHandler):
    """The transport: parse, ask the Server, answer (or, on request, do not)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Alpaca's servers and requests' pool use it
    timeout = 60  # an idle kept-alive connection's thread ends after a minute
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the Server keeps its own log of API requests."""

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake = self.server.fake
        if url.path.startswith("/_fake/"):
            reply = fake.control(method, url.path, q, body)
        else:
            reply = fake.api(method, url.path, q, body, headers)
        if reply.then == "drop":
            self.close_connection = True  # the socket closes with nothing written
            return
        if reply.then == "hold":
            gave_up = self._hung_up_within(reply.hold)
            if reply.entry is not None:
                reply.entry["client_gave_up"] = gave_up  # a client without a timeout waits
            if gave_up or fake.stopping.is_set():
                self.close_connection = True
                return
        self._write(reply)

    def _hung_up_within(self, seconds: float) -> bool:
        """Hold the answer back; True as soon as the client closes its end."""
        deadline = time.monotonic() + seconds
        while not self.server.fake.stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.02)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                except OSError:
                    return True
                time.sleep(0.02)  # a pipelined request waits; this answer comes first
        return False

    def _write(self, reply: Reply) -> None:
        if reply.raw is not None:
            data, kind = reply.raw.encode(), "text/html"
        elif reply.payload is not None:
            data, kind = json.dumps(reply.payload).encode(), "application/json"
        else:
            data, kind = b"", "application/json"
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a timeout fault)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: Server) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), Handler)


# ---- the handle tests use ----------------------------------------------------------------


@dataclass(frozen=True)
class FakeKeys:
    """One account at the fake: its id and the key pair that speaks for it."""

    account_id: str
    key_id: str
    secret_key: str

    def __repr__(self) -> str:
        return f"FakeKeys(account_id={self.account_id!r}, key_id={self.key_id!r})"


class FakeAlpaca:
    """A running fake Alpaca server and a hand on its control API."""

    def __init__(self) -> None:
        self.server = Server()
        self._http_server = _HttpServer(self.server)
        self._thread = threading.Thread(target=self._http_server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._http_server.server_address[1]}"
        self._http = httpx.Client(base_url=self.url, timeout=10)
        self._ws_server = serve(self.server.stream, "127.0.0.1", 0, compression=None)
        self._ws_thread = threading.Thread(target=self._ws_server.serve_forever, daemon=True)
        self._ws_thread.start()
        self.stream_url = f"ws://127.0.0.1:{self._ws_server.socket.getsockname()[1]}/stream"

    def create_account(self, cash: Decimal | str | int, market: str = "default") -> FakeKeys:
        body = self._call("POST", "/_fake/accounts", {"cash": str(cash), "market": market})
        return FakeKeys(body["account_id"], body["key_id"], body["secret_key"])

    def trade(self, symbol: str, price: Decimal | str | int, *, at: datetime | None = None,
              market: str = "default", size: Decimal | str | None = None) -> int:
        """The market trades `symbol` at `price`; returns how many orders filled."""
        body = {"symbol": symbol, "price": str(price), "market": market,
                "at": at.isoformat() if at else None, "size": str(size) if size is not None else None}
        return int(self._call("POST", "/_fake/trades", body)["filled"])

    def set_clock(self, at: datetime, market: str = "default") -> None:
        self._call("POST", "/_fake/clock", {"at": at.isoformat(), "market": market})

    def close_session(self, market: str = "default", at: datetime | None = None) -> int:
        body = {"market": market, "at": at.isoformat() if at else None}
        return int(self._call("POST", "/_fake/close", body)["expired"])

    def load_bars(self, symbol: str, timeframe: str, bars: list[dict[str, Any]]) -> None:
        """Bars in Alpaca's shape ({"t","o","h","l","c","v","n","vw"}), `timeframe` as Alpaca
        spells it ("1Min", "1Hour", "1Day")."""
        self._call("POST", "/_fake/bars", {"symbol": symbol, "timeframe": timeframe, "bars": bars})

    def fault(self, kind: str, times: int = 1, *, account: FakeKeys | None = None,
              status: int | None = None, route: str | None = None, hold: float | None = None) -> None:
        if kind not in DEFAULT_ROUTE:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(DEFAULT_ROUTE)}")
        self._call("POST", "/_fake/faults", {
            "kind": kind, "times": times, "status": status, "route": route, "hold": hold,
            "account_id": account.account_id if account else None})

    def clear_faults(self) -> None:
        self._call("DELETE", "/_fake/faults")

    def orders(self, account: FakeKeys | str) -> list[dict[str, Any]]:
        """The ground truth: every order the account ever had, oldest first."""
        account_id = account.account_id if isinstance(account, FakeKeys) else account
        return list(self._call("GET", "/_fake/orders", params={"account_id": account_id}))

    def requests(self, account: FakeKeys | None = None, route: str | None = None) -> list[dict[str, Any]]:
        """Every API request the fake answered (or dropped), oldest first."""
        rows = self._call("GET", "/_fake/requests")
        return [r for r in rows if (account is None or r["account_id"] == account.account_id)
                and route in (None, r["route"])]

    def listening(self, account: FakeKeys) -> int:
        """How many trade-update streams the account has open."""
        body = self._call("GET", "/_fake/streams", params={"account_id": account.account_id})
        return int(body["listening"])

    def stop(self) -> None:
        self.server.stopping.set()
        self._http.close()
        self._http_server.shutdown()
        self._http_server.server_close()
        self._ws_server.shutdown()

    def __enter__(self) -> FakeAlpaca:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: Any = None,
              params: dict[str, str] | None = None) -> Any:
        r = self._http.request(method, path, json=body, params=params)
        r.raise_for_status()
        return r.json() if r.content else None


@functools.cache
def shared_fake_alpaca() -> FakeAlpaca:
    """One fake server per test process, started on first use (accounts and markets keep
    the tests that share it apart)."""
    fake = FakeAlpaca()
    atexit.register(fake.stop)
    return fake

