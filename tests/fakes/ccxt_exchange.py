"""A fake Binance spot exchange on loopback, for the CCXT adapter: ccxt's own `binance` class
talks to it over real HTTP, with Binance's request and response shapes.

What it keeps as ground truth: every order ever accepted, per account (one API key pair each,
HMAC-SHA256 signed like Binance). What it simulates, simply and on purpose:
- A market is a last traded price moved by the control API (`trade`); there is no order book.
  A market order fills at the last price; with no price known it finds no liquidity and
  EXPIRES (Binance never rests a market order). Limits fill at the trade price once it
  reaches them (a gap fill); ioc and fok that cannot fill on arrival EXPIRE.
- STOP_LOSS (market once triggered) and STOP_LOSS_LIMIT trigger when a buy trades at or above
  the stop, a sell at or below it; one that would trigger on arrival is refused.
- Balances: the quote asset (USDT) and base assets, free and locked; a buy locks its quote
  (at the limit, or the stop, or the last price), a sell locks its base. A spot account
  cannot short. Commission (0 unless the account is made with one) is charged like Binance:
  a buyer pays in the base asset, a seller in the quote asset.
- A `newClientOrderId` is refused as a duplicate only while an order holding it is open
  (Binance's rule): a filled order gives no protection, which tradewire must provide itself.
- Its clock stands still between control calls (`trade` and `clock` set it), so tests can
  compare fill times; signatures are checked against the wall clock.

Faults, each for the next `times` matching requests (default POST /api/v3/order):
`error_before` (500, nothing done), `error_after` (the order is taken, then 500),
`timeout_after` (taken, then no answer until `delay` seconds have passed), `drop_after`
(taken, then the connection closes without an answer), `rate_limit` (429, nothing done),
`slow_lookups` (the next `times` accepted orders answer "Order does not exist." to their
first `lookups` lookups), `duplicate` (a client order id any earlier order holds, open or
not, is refused as a duplicate: the stricter rule some exchanges have).

The user data stream, as ccxt.pro's binance follows it for spot accounts: Binance's WebSocket
API (its own port, `ws_url`, path /ws-api/v3), where a `userDataStream.subscribe.signature`
request (apiKey, timestamp, HMAC-SHA256 signature of the sorted parameters) subscribes the
connection to the account's events: an `executionReport` for every order change (NEW, TRADE,
CANCELED, EXPIRED), wrapped as `{"subscriptionId": N, "event": {...}}`. Like Binance, nothing
is replayed: an event with no subscriber is gone. `stream_down(True)` drops every open stream
connection (the TCP connection closes without a close frame) and refuses new ones with 503
until `stream_down(False)`. `requests()` counts the REST requests the fake answered.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

D = Decimal
ZERO = D(0)
QUOTE = "USDT"
TICK = D("0.01")
STEP = D("0.000001")
RECV_WINDOW_MS = 5000
OPEN = ("NEW", "PARTIALLY_FILLED")
STOPS = ("STOP_LOSS", "STOP_LOSS_LIMIT")
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")
CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
DEFAULT_BASES = ("BTC", "ETH", "AAPL", "NVDA", "AMD", "MSFT")
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14_400,
             "1d": 86_400}
REQUEST_FAULTS = ("error_before", "error_after", "timeout_after", "drop_after", "rate_limit")
INTERNAL = (-1001, "Internal error; unable to process your request. Please try again.")


class Refusal(Exception):
    """An error answer as Binance gives it: HTTP status, code, msg."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _bad(msg: str, code: int = -1102) -> Refusal:
    return Refusal(400, code, msg)


def _fmt(value: Decimal) -> str:
    return f"{value:.8f}"


@dataclass
class Account:
    id: str
    key: str
    secret: str
    commission: Decimal
    free: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)

    def move(self, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        self.free[asset] = self.free.get(asset, ZERO) + free
        self.locked[asset] = self.locked.get(asset, ZERO) + locked


@dataclass
class Order:
    account: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal
    stop_price: Decimal
    created_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    quote_qty: Decimal = ZERO
    updated_ms: int = 0
    triggered: bool = False
    reserved: Decimal = ZERO  # what the order locks: quote for a buy, base for a sell
    hidden_lookups: int = 0  # lookups still answered "does not exist" (slow_lookups)

    def json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "orderId": self.order_id, "orderListId": -1,
            "clientOrderId": self.client_order_id, "price": _fmt(self.price),
            "origQty": _fmt(self.qty), "executedQty": _fmt(self.executed),
            "cummulativeQuoteQty": _fmt(self.quote_qty), "status": self.status,
            "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
            "stopPrice": _fmt(self.stop_price), "icebergQty": _fmt(ZERO),
            "time": self.created_ms, "updateTime": self.updated_ms or self.created_ms,
            "isWorking": self.type not in STOPS or self.triggered,
            "workingTime": self.created_ms, "origQuoteOrderQty": _fmt(ZERO),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


@dataclass
class Trade:
    id: int
    order_id: int
    account: str
    symbol: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool

    def json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol, "id": self.id, "orderId": self.order_id, "orderListId": -1,
            "price": _fmt(self.price), "qty": _fmt(self.qty),
            "quoteQty": _fmt(self.price * self.qty), "commission": _fmt(self.commission),
            "commissionAsset": self.commission_asset, "time": self.time,
            "isBuyer": self.is_buyer, "isMaker": False, "isBestMatch": True,
        }


@dataclass(eq=False)
class Subscription:
    """One stream connection's subscription to an account's events."""

    id: int = 0
    inbox: queue.Queue[str] = field(default_factory=queue.Queue)


@dataclass
class Fault:
    kind: str
    times: int = 1
    method: str = "POST"
    path: str = "/api/v3/order"
    status: int = 500
    lookups: int = 3
    delay: float = 2.0


class Exchange:
    """The state and the matching, without HTTP. Every method runs under `lock`."""

    def __init__(self, bases: Iterable[str], quote: str) -> None:
        self.lock = threading.RLock()
        self.quote = quote
        self.bases = tuple(bases)
        self.subscribers: dict[str, list[Subscription]] = {}  # account id -> its streams
        self.stopping = threading.Event()
        self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.orders: list[Order] = []
        self.trades: list[Trade] = []
        self.last: dict[str, Decimal] = {}
        self.klines: dict[tuple[str, str], list[list[Any]]] = {}
        self.faults: list[Fault] = []
        self.clock_ms: int | None = None
        self._ids: dict[str, int] = {}
        self.requests: list[tuple[str | None, str, str]] = []  # (account id, method, path)
        self.stream_down = False

    # ---- time, ids, symbols ---------------------------------------------------------------

    def now_ms(self) -> int:
        return self.clock_ms if self.clock_ms is not None else int(time.time() * 1000)

    def next_id(self, counter: str) -> int:
        self._ids[counter] = self._ids.get(counter, 0) + 1
        return self._ids[counter]

    def symbol(self, name: str | None) -> str:
        """A market id (AAPLUSDT) from an id, a ccxt symbol (AAPL/USDT) or a bare base (AAPL)."""
        raw = (name or "").replace("/", "").upper()
        candidates = (raw, raw + self.quote)
        for candidate in candidates:
            if candidate.endswith(self.quote) and candidate[:-len(self.quote)] in self.bases:
                return candidate
        raise Refusal(400, -1121, "Invalid symbol.")

    def base_of(self, symbol: str) -> str:
        return symbol[:-len(self.quote)]

    # ---- faults ---------------------------------------------------------------------------

    def take_fault(self, kinds: Iterable[str], method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind in kinds and fault.method == method and fault.path == path:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # ---- accounts -------------------------------------------------------------------------

    def create_account(self, cash: Decimal, commission: Decimal) -> Account:
        account = Account(id=f"acct{self.next_id('account')}", key=secrets.token_hex(16),
                          secret=secrets.token_hex(32), commission=commission)
        account.move(self.quote, free=cash)
        self.accounts[account.key] = account
        return account

    def account_by_id(self, account_id: str) -> Account:
        return next(a for a in self.accounts.values() if a.id == account_id)

    # ---- orders ---------------------------------------------------------------------------

    def place(self, account: Account, p: dict[str, str]) -> Order:
        symbol = self.symbol(p.get("symbol"))
        side, kind = p.get("side", ""), p.get("type", "")
        if side not in ("BUY", "SELL"):
            raise _bad("Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if kind not in ORDER_TYPES:
            raise _bad("Invalid orderType.", -1116)
        qty, price, stop, tif = self._shape(kind, p)
        coid = p.get("newClientOrderId") or f"web_{secrets.token_hex(8)}"
        if not CLIENT_ID.match(coid):
            raise _bad("Illegal characters found in parameter 'newClientOrderId'; legal range "
                       "is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.", -1100)
        self._refuse_duplicate(account, coid)
        last = self.last.get(symbol)
        if kind in STOPS and last is not None and _triggers(side, stop, last):
            raise Refusal(400, -2010, "Stop price would trigger immediately.")
        asset, need = self._reserve(symbol, side, kind, qty, price, stop, last)
        if account.free.get(asset, ZERO) < need:
            raise Refusal(400, -2010, "Account has insufficient balance for requested action.")
        order = Order(account=account.id, symbol=symbol, order_id=self.next_id(symbol),
                      client_order_id=coid, side=side, type=kind, time_in_force=tif, qty=qty,
                      price=price, stop_price=stop, created_ms=self.now_ms(), reserved=need)
        account.move(asset, free=-need, locked=need)
        slow = self.take_fault(("slow_lookups",), "POST", "/api/v3/order")
        order.hidden_lookups = slow.lookups if slow else 0
        self.orders.append(order)
        self.emit(order, "NEW")
        self._arrive(order, last)
        return order

    def _shape(self, kind: str, p: dict[str, str]) -> tuple[Decimal, Decimal, Decimal, str]:
        """quantity, price, stop price and time in force, as Binance requires them per type."""
        needs_price = kind in ("LIMIT", "STOP_LOSS_LIMIT")
        needs_tif = needs_price
        for name, needed in (("price", needs_price), ("timeInForce", needs_tif),
                             ("stopPrice", kind in STOPS)):
            if needed and not p.get(name):
                raise _bad(f"Mandatory parameter '{name}' was not sent, was empty/null, or "
                           "malformed.")
            if not needed and p.get(name):
                raise _bad(f"Parameter '{name}' sent when not required.", -1106)
        qty = _decimal(p, "quantity")
        if qty is None:
            raise _bad("Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if qty < STEP or qty % STEP:
            raise _bad("Filter failure: LOT_SIZE", -1013)
        price, stop = _decimal(p, "price") or ZERO, _decimal(p, "stopPrice") or ZERO
        if price % TICK or stop % TICK or price < 0 or stop < 0:
            raise _bad("Filter failure: PRICE_FILTER", -1013)
        tif = p.get("timeInForce") or "GTC"
        if tif not in ("GTC", "IOC", "FOK"):
            raise _bad("Invalid timeInForce.", -1115)
        return qty, price, stop, tif

    def _refuse_duplicate(self, account: Account, coid: str) -> None:
        mine = [o for o in self.orders if o.account == account.id and o.client_order_id == coid]
        if any(o.status in OPEN for o in mine):
            raise Refusal(400, -2010, "Duplicate order sent.")
        if mine and self.take_fault(("duplicate",), "POST", "/api/v3/order"):
            raise Refusal(400, -2010, "Duplicate order sent.")

    def _reserve(self, symbol: str, side: str, kind: str, qty: Decimal, price: Decimal,
                 stop: Decimal, last: Decimal | None) -> tuple[str, Decimal]:
        if side == "SELL":
            return self.base_of(symbol), qty
        at = {"LIMIT": price, "STOP_LOSS_LIMIT": price, "STOP_LOSS": stop}.get(kind, last or ZERO)
        return self.quote, qty * at

    def _arrive(self, order: Order, last: Decimal | None) -> None:
        if order.type == "MARKET":
            if last is None:
                self._end(order, "EXPIRED")  # no liquidity: Binance expires, never rests
            else:
                self._fill(order, last)
        elif order.type == "LIMIT":
            if last is not None and _crosses(order.side, order.price, last):
                self._fill(order, last)
            elif order.time_in_force in ("IOC", "FOK"):
                self._end(order, "EXPIRED")

    def trade(self, symbol: str, price: Decimal, at_ms: int | None) -> None:
        """The market trades `symbol` at `price`: resting orders match in time priority."""
        if at_ms is not None:
            self.clock_ms = at_ms
        self.last[symbol] = price
        for order in [o for o in self.orders if o.symbol == symbol and o.status in OPEN]:
            if order.type in STOPS and not order.triggered:
                if not _triggers(order.side, order.stop_price, price):
                    continue
                order.triggered, order.updated_ms = True, self.now_ms()
                if order.type == "STOP_LOSS":
                    self._fill(order, price)  # a triggered stop-loss is a market order
                    continue
            if _crosses(order.side, order.price, price):
                self._fill(order, price)

    def _fill(self, order: Order, price: Decimal) -> None:
        account = self.account_by_id(order.account)
        base, cost = self.base_of(order.symbol), order.qty * price
        if order.side == "BUY":
            if account.free.get(self.quote, ZERO) + order.reserved < cost:
                self._end(order, "EXPIRED")  # a triggered stop buy the balance cannot pay
                return
            commission, asset = order.qty * account.commission, base
            account.move(self.quote, free=order.reserved - cost, locked=-order.reserved)
            account.move(base, free=order.qty - commission)
        else:
            commission, asset = cost * account.commission, self.quote
            account.move(base, locked=-order.reserved)
            account.move(self.quote, free=cost - commission)
        now = self.now_ms()
        order.reserved, order.executed, order.quote_qty = ZERO, order.qty, cost
        order.status, order.updated_ms = "FILLED", now
        trade = Trade(id=self.next_id(f"trade:{order.symbol}"), order_id=order.order_id,
                      account=order.account, symbol=order.symbol, price=price, qty=order.qty,
                      commission=commission, commission_asset=asset, time=now,
                      is_buyer=order.side == "BUY")
        self.trades.append(trade)
        self.emit(order, "TRADE", trade)

    def _end(self, order: Order, status: str, cancel_id: str | None = None) -> None:
        account = self.account_by_id(order.account)
        asset = self.quote if order.side == "BUY" else self.base_of(order.symbol)
        account.move(asset, free=order.reserved, locked=-order.reserved)
        order.reserved, order.status, order.updated_ms = ZERO, status, self.now_ms()
        self.emit(order, status, cancel_id=cancel_id)

    # ---- the user data stream -------------------------------------------------------------

    def emit(self, order: Order, execution: str, trade: Trade | None = None,
             cancel_id: str | None = None) -> None:
        """Push the order's executionReport to every stream subscribed to its account."""
        inboxes = self.subscribers.get(order.account, [])
        if not inboxes:
            return  # Binance keeps nothing for a stream that is not there
        report = execution_report(order, execution, trade, cancel_id, self.now_ms())
        for sub in inboxes:
            sub.inbox.put(json.dumps({"subscriptionId": sub.id, "event": report}))

    def ws_request(self, request: dict[str, Any], sub: Subscription) -> dict[str, Any]:
        """One WebSocket API request (userDataStream.subscribe.signature and friends)."""
        rid, method = request.get("id"), request.get("method")
        params = request.get("params") or {}
        try:
            if method == "userDataStream.subscribe.signature":
                account = self._ws_authenticate(params)
                sub.id = self.next_id("subscription")
                self.subscribers.setdefault(account.id, []).append(sub)
                result: Any = {"subscriptionId": sub.id}
            elif method == "userDataStream.unsubscribe":
                self.unsubscribe(sub)
                result = {}
            elif method == "ping":
                result = {}
            else:
                raise Refusal(400, -1000, f"Unknown method: {method}")
        except Refusal as refusal:
            return {"id": rid, "status": refusal.status,
                    "error": {"code": refusal.code, "msg": refusal.msg}}
        return {"id": rid, "status": 200, "result": result, "rateLimits": []}

    def _ws_authenticate(self, params: dict[str, Any]) -> Account:
        """The WebSocket API's SIGNED rule: HMAC-SHA256 of every other parameter, sorted by
        name and joined as a query string, keyed with the account's secret."""
        account = self.accounts.get(str(params.get("apiKey") or ""))
        if account is None:
            raise Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(params.items())
                           if k != "signature")
        expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(params.get("signature") or "")):
            raise Refusal(400, -1022, "Signature for this request is not valid.")
        stamp, window = int(params.get("timestamp") or 0), int(params.get("recvWindow") or 5000)
        now = int(time.time() * 1000)
        if stamp > now + 1000 or now - stamp > window:
            raise Refusal(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return account

    def unsubscribe(self, sub: Subscription) -> None:
        for subs in self.subscribers.values():
            if sub in subs:
                subs.remove(sub)

    def listening(self, account_id: str) -> int:
        return len(self.subscribers.get(account_id, []))

    # ---- queries --------------------------------------------------------------------------

    def visible(self, order: Order) -> bool:
        """False while a slow_lookups fault still hides the order (each look counts)."""
        if order.hidden_lookups > 0:
            order.hidden_lookups -= 1
            return False
        return True

    def find(self, account: Account, p: dict[str, str]) -> Order:
        symbol = self.symbol(p.get("symbol"))
        order_id, coid = p.get("orderId"), p.get("origClientOrderId")
        if not order_id and not coid:
            raise _bad("Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        for order in self.orders:  # the oldest first, when an id was reused
            if order.account == account.id and order.symbol == symbol and (
                    str(order.order_id) == order_id if order_id else order.client_order_id == coid):
                return order
        raise Refusal(400, -2013, "Order does not exist.")

    def cancel(self, account: Account, p: dict[str, str]) -> tuple[Order, str]:
        try:
            order = self.find(account, p)
        except Refusal as refusal:
            raise Refusal(400, -2011, "Unknown order sent.") from refusal
        if order.status not in OPEN:
            raise Refusal(400, -2011, "Unknown order sent.")
        cancel_id = p.get("newClientOrderId") or f"cancel_{secrets.token_hex(6)}"
        self._end(order, "CANCELED", cancel_id=cancel_id)
        return order, cancel_id

    def account_json(self, account: Account) -> dict[str, Any]:
        assets = sorted(set(account.free) | set(account.locked))
        return {
            "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": True, "canDeposit": True,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": self.now_ms(), "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [{"asset": a, "free": _fmt(account.free.get(a, ZERO)),
                          "locked": _fmt(account.locked.get(a, ZERO))} for a in assets],
        }

    def ticker(self, symbol: str) -> dict[str, Any]:
        last = _fmt(self.last.get(symbol, ZERO))
        now = self.now_ms()
        return {"symbol": symbol, "priceChange": "0.00000000", "priceChangePercent": "0.000",
                "weightedAvgPrice": last, "prevClosePrice": last, "lastPrice": last,
                "lastQty": "0.00000000", "bidPrice": last, "bidQty": "0.00000000",
                "askPrice": last, "askQty": "0.00000000", "openPrice": last, "highPrice": last,
                "lowPrice": last, "volume": "0.00000000", "quoteVolume": "0.00000000",
                "openTime": now - 86_400_000, "closeTime": now, "firstId": -1, "lastId": -1,
                "count": 0}

    def exchange_info(self) -> dict[str, Any]:
        return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "exchangeFilters": [],
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                "intervalNum": 1, "limit": 6000}],
                "symbols": [self._symbol_info(base) for base in self.bases]}

    def _symbol_info(self, base: str) -> dict[str, Any]:
        return {
            "symbol": base + self.quote, "status": "TRADING", "baseAsset": base,
            "baseAssetPrecision": 8, "quoteAsset": self.quote, "quotePrecision": 8,
            "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
            "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": _fmt(TICK),
                 "maxPrice": "1000000.00000000", "tickSize": _fmt(TICK)},
                {"filterType": "LOT_SIZE", "minQty": _fmt(STEP), "maxQty": "9000000.00000000",
                 "stepSize": _fmt(STEP)},
            ],
        }

    def klines_for(self, p: dict[str, str]) -> list[list[Any]]:
        rows = self.klines.get((self.symbol(p.get("symbol")), p.get("interval", "")), [])
        start, end = _int(p, "startTime"), _int(p, "endTime")
        limit = min(_int(p, "limit") or 500, 1000)
        rows = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
        return rows[:limit] if start is not None else rows[-limit:]

    def load_klines(self, symbol: str, interval: str, rows: list[list[Any]]) -> None:
        width = INTERVALS[interval] * 1000
        full = [[int(r[0]), *(str(v) for v in r[1:6]), int(r[0]) + width - 1, "0", 0, "0", "0", "0"]
                for r in rows]
        merged = {r[0]: r for r in [*self.klines.get((symbol, interval), []), *full]}
        self.klines[(symbol, interval)] = [merged[k] for k in sorted(merged)]


def _triggers(side: str, stop: Decimal, price: Decimal) -> bool:
    return price >= stop if side == "BUY" else price <= stop


def _crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    return price <= limit if side == "BUY" else price >= limit


def _decimal(p: dict[str, str], name: str) -> Decimal | None:
    try:
        return D(p[name]) if p.get(name) else None
    except ArithmeticError:
        raise _bad(f"Illegal characters found in parameter '{name}'.", -1100) from None


def _int(p: dict[str, str], name: str) -> int | None:
    return int(p[name]) if p.get(name) else None


def _ws_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def execution_report(order: Order, execution: str, trade: Trade | None, cancel_id: str | None,
                     now: int) -> dict[str, Any]:
    """Binance's spot `executionReport` event for one change of `order`."""
    return {
        "e": "executionReport", "E": now, "s": order.symbol,
        "c": cancel_id or order.client_order_id, "S": order.side, "o": order.type,
        "f": order.time_in_force, "q": _fmt(order.qty), "p": _fmt(order.price),
        "P": _fmt(order.stop_price), "F": _fmt(ZERO), "g": -1,
        "C": order.client_order_id if cancel_id else "", "x": execution, "X": order.status,
        "r": "NONE", "i": order.order_id, "l": _fmt(trade.qty if trade else ZERO),
        "z": _fmt(order.executed), "L": _fmt(trade.price if trade else ZERO),
        "n": _fmt(trade.commission if trade else ZERO),
        "N": trade.commission_asset if trade else None, "T": trade.time if trade else now,
        "t": trade.id if trade else -1, "v": 0, "I": 0,
        "w": order.status in OPEN and (order.type not in STOPS or order.triggered),
        "m": False, "M": trade is not None, "O": order.created_ms, "Z": _fmt(order.quote_qty),
        "Y": _fmt(trade.price * trade.qty if trade else ZERO), "Q": _fmt(ZERO),
        "W": order.created_ms, "V": "EXPIRE_MAKER",
    }


# ---- HTTP ---------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls
    wbufsize = 1 << 16
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is no place for an access log."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        ex = self.server.exchange
        if url.path.startswith("/_fake/"):
            with ex.lock:
                status, payload = control(ex, method, url.path, url.query, body)
            self._answer(status, payload)
            return
        with ex.lock:
            key = self.headers.get("X-MBX-APIKEY")
            holder = ex.accounts.get(key) if key else None
            ex.requests.append((holder.id if holder else None, method, url.path))
            fault = ex.take_fault(REQUEST_FAULTS, method, url.path)
        if fault is not None and fault.kind == "error_before":
            self._answer(fault.status, {"code": INTERNAL[0], "msg": INTERNAL[1]})
            return
        if fault is not None and fault.kind == "rate_limit":
            self._answer(429, {"code": -1003, "msg": "Too many requests; current limit is 6000 "
                               "request weight per 1 MINUTE."})
            return
        with ex.lock:
            try:
                status, payload = 200, api(ex, method, url.path, url.query, body,
                                           self.headers.get("X-MBX-APIKEY"))
            except Refusal as refusal:
                status, payload = refusal.status, {"code": refusal.code, "msg": refusal.msg}
        self._after(fault, status, payload)

    def _after(self, fault: Fault | None, status: int, payload: Any) -> None:
        if fault is None:
            self._answer(status, payload)
        elif fault.kind == "error_after":
            self._answer(fault.status, {"code": INTERNAL[0], "msg": INTERNAL[1]})
        elif fault.kind == "timeout_after":
            time.sleep(fault.delay)  # the client has given up by now
            self._answer(status, payload)
        else:  # drop_after: close without a word
            self.close_connection = True

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client left (a timeout): nobody to tell


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.exchange = exchange


# ---- the WebSocket API (the user data stream) ----------------------------------------------

def _admit(ex: Exchange) -> Callable[[ServerConnection, Request], Response | None]:
    def admit(conn: ServerConnection, request: Request) -> Response | None:
        if ex.stream_down:
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "stream unavailable\n")
        if urlsplit(request.path).path != "/ws-api/v3":
            return conn.respond(HTTPStatus.NOT_FOUND, "no such stream\n")
        return None
    return admit


def _stream(ex: Exchange) -> Callable[[ServerConnection], None]:
    def stream(conn: ServerConnection) -> None:
        """One connection: answer its requests, push its subscription's events, and drop it
        without a close frame while the stream is down."""
        sub = Subscription()
        try:
            while not ex.stopping.is_set() and not ex.stream_down:
                try:
                    raw = conn.recv(timeout=0.02)
                except TimeoutError:
                    raw = None
                if raw is not None:
                    with ex.lock:
                        answer = ex.ws_request(json.loads(raw), sub)
                    conn.send(json.dumps(answer))
                while not sub.inbox.empty():
                    conn.send(sub.inbox.get_nowait())
        except (ConnectionClosed, ValueError):
            return
        finally:
            with ex.lock:
                ex.unsubscribe(sub)
        with contextlib.suppress(OSError):  # down: the connection vanishes, as networks do
            conn.socket.shutdown(socket.SHUT_RDWR)
        conn.close_socket()
    return stream


def _authenticate(ex: Exchange, query: str, body: str, key: str | None) -> tuple[Account, dict[str, str]]:
    """Binance's SIGNED rule: HMAC-SHA256 of the query string followed by the body (without
    the signature), keyed with the account's secret; the timestamp within recvWindow."""
    if not key:
        raise Refusal(401, -2014, "API-key format invalid.")
    account = ex.accounts.get(key)
    if account is None:
        raise Refusal(401, -2015, "Invalid API-key, IP, or permissions for action.")
    signature, parts = None, []
    for part in (query, body):
        kept = []
        for pair in part.split("&") if part else []:
            if pair.startswith("signature="):
                signature = pair[len("signature="):]
            else:
                kept.append(pair)
        parts.append("&".join(kept))
    expected = hmac.new(account.secret.encode(), "".join(parts).encode(), hashlib.sha256).hexdigest()
    if signature is None or not hmac.compare_digest(expected, signature):
        raise Refusal(400, -1022, "Signature for this request is not valid.")
    params = dict(parse_qsl(query, keep_blank_values=True)) | dict(parse_qsl(body, keep_blank_values=True))
    stamp, window = _int(params, "timestamp"), _int(params, "recvWindow") or RECV_WINDOW_MS
    now = int(time.time() * 1000)
    if stamp is None or stamp > now + 1000 or now - stamp > window:
        raise Refusal(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return account, params


def api(ex: Exchange, method: str, path: str, query: str, body: str, key: str | None) -> Any:
    """Binance's spot REST API, the endpoints ccxt's binance class calls for the adapter."""
    p = dict(parse_qsl(query, keep_blank_values=True))
    public: dict[tuple[str, str], Callable[[], Any]] = {
        ("GET", "/api/v3/ping"): dict,
        ("GET", "/api/v3/time"): lambda: {"serverTime": int(time.time() * 1000)},
        ("GET", "/api/v3/exchangeInfo"): ex.exchange_info,
        ("GET", "/api/v3/klines"): lambda: ex.klines_for(p),
        ("GET", "/api/v3/ticker/24hr"): lambda: _tickers(ex, p, ex.ticker),
        ("GET", "/api/v3/ticker/price"): lambda: _tickers(
            ex, p, lambda s: {"symbol": s, "price": _fmt(ex.last.get(s, ZERO))}),
    }
    if (method, path) in public:
        return public[(method, path)]()
    private = ("/api/v3/order", "/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/myTrades",
               "/api/v3/account")
    if path not in private:
        raise Refusal(404, -1000, f"no such endpoint: {method} {path}")
    account, p = _authenticate(ex, query, body, key)
    return _private(ex, account, method, path, p)


def _private(ex: Exchange, account: Account, method: str, path: str, p: dict[str, str]) -> Any:
    mine = [o for o in ex.orders if o.account == account.id]
    if (method, path) == ("POST", "/api/v3/order"):
        order = ex.place(account, p)
        fills = [{"price": _fmt(t.price), "qty": _fmt(t.qty), "commission": _fmt(t.commission),
                  "commissionAsset": t.commission_asset, "tradeId": t.id}
                 for t in ex.trades if t.account == account.id and t.symbol == order.symbol
                 and t.order_id == order.order_id]
        return order.json() | {"transactTime": order.created_ms, "fills": fills}
    if (method, path) == ("GET", "/api/v3/order"):
        order = ex.find(account, p)
        if not ex.visible(order):
            raise Refusal(400, -2013, "Order does not exist.")
        return order.json()
    if (method, path) == ("DELETE", "/api/v3/order"):
        order, cancel_id = ex.cancel(account, p)
        return order.json() | {"origClientOrderId": order.client_order_id,
                               "clientOrderId": cancel_id, "transactTime": ex.now_ms()}
    if (method, path) == ("GET", "/api/v3/openOrders"):
        symbol = ex.symbol(p["symbol"]) if p.get("symbol") else None
        return [o.json() for o in mine if o.status in OPEN and symbol in (None, o.symbol)
                and ex.visible(o)]
    if (method, path) == ("GET", "/api/v3/allOrders"):
        symbol = ex.symbol(p.get("symbol"))
        return [o.json() for o in mine if o.symbol == symbol and ex.visible(o)]
    if (method, path) == ("GET", "/api/v3/myTrades"):
        symbol = ex.symbol(p.get("symbol"))
        order_id = _int(p, "orderId")
        return [t.json() for t in ex.trades if t.account == account.id and t.symbol == symbol
                and order_id in (None, t.order_id)]
    if (method, path) == ("GET", "/api/v3/account"):
        return ex.account_json(account)
    raise Refusal(405, -1000, f"{method} is not allowed on {path}")


def _tickers(ex: Exchange, p: dict[str, str], one: Callable[[str], Any]) -> Any:
    if p.get("symbol"):
        return one(ex.symbol(p["symbol"]))
    names = json.loads(p["symbols"]) if p.get("symbols") else [b + ex.quote for b in ex.bases]
    return [one(ex.symbol(name)) for name in names]


def control(ex: Exchange, method: str, path: str, query: str, body: str) -> tuple[int, Any]:
    """The control API (`/_fake/...`): accounts, the market, faults, ground truth."""
    data = json.loads(body) if body else {}
    if (method, path) == ("POST", "/_fake/reset"):
        ex.reset()
        return 200, {}
    if (method, path) == ("POST", "/_fake/accounts"):
        account = ex.create_account(D(str(data.get("cash", "0"))), D(str(data.get("commission", "0"))))
        return 200, {"account": account.id, "apiKey": account.key, "secret": account.secret}
    if (method, path) == ("POST", "/_fake/trade"):
        ex.trade(ex.symbol(data["symbol"]), D(str(data["price"])), data.get("at"))
        return 200, {}
    if (method, path) == ("POST", "/_fake/clock"):
        ex.clock_ms = data.get("at")
        return 200, {}
    if (method, path) == ("POST", "/_fake/klines"):
        ex.load_klines(ex.symbol(data["symbol"]), data["interval"], data["rows"])
        return 200, {}
    if (method, path) == ("POST", "/_fake/faults"):
        ex.faults.append(Fault(**data))
        return 200, {}
    if (method, path) == ("GET", "/_fake/faults"):
        return 200, [vars(f) for f in ex.faults]
    if (method, path) == ("POST", "/_fake/stream"):
        ex.stream_down = bool(data["down"])
        return 200, {}
    if (method, path) == ("GET", "/_fake/streams"):
        return 200, {"listening": ex.listening(dict(parse_qsl(query))["account"])}
    if (method, path) == ("GET", "/_fake/requests"):
        return 200, [list(r) for r in ex.requests]
    if (method, path) == ("GET", "/_fake/orders"):
        account = ex.account_by_id(dict(parse_qsl(query))["account"])
        return 200, [o.json() | {"fills": [t.json() for t in ex.trades if t.account == account.id
                                           and t.symbol == o.symbol and t.order_id == o.order_id]}
                     for o in ex.orders if o.account == account.id]
    return 404, {"error": f"no control route {method} {path}"}


# ---- the Python handle --------------------------------------------------------------------

@dataclass(frozen=True)
class FakeKeys:
    account: str
    api_key: str
    secret: str = field(repr=False)


class FakeExchange:
    """The fake exchange serving on 127.0.0.1 (a free port) from a background thread."""

    def __init__(self, bases: Iterable[str] = DEFAULT_BASES, quote: str = QUOTE) -> None:
        self.exchange = Exchange(bases, quote)
        self._server = _Server(self.exchange)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._http = httpx.Client(base_url=self.url, timeout=10)
        self._ws_server = serve(_stream(self.exchange), "127.0.0.1", 0, compression=None,
                                process_request=_admit(self.exchange))
        self._ws_thread = threading.Thread(target=self._ws_server.serve_forever, daemon=True)
        self._ws_thread.start()
        # The WebSocket API's address without its path (/ws-api/v3, which ccxt keeps).
        self.ws_url = f"ws://127.0.0.1:{self._ws_server.socket.getsockname()[1]}"

    def _call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        r = self._http.request(method, path, json=body, params=params)
        r.raise_for_status()
        return r.json()

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def create_account(self, cash: Decimal | str, commission: Decimal | str = "0") -> FakeKeys:
        made = self._call("POST", "/_fake/accounts", {"cash": str(cash), "commission": str(commission)})
        return FakeKeys(account=made["account"], api_key=made["apiKey"], secret=made["secret"])

    def trade(self, symbol: str, price: Decimal | str, at: datetime | None = None) -> None:
        at_ms = int(at.timestamp() * 1000) if at is not None else None
        self._call("POST", "/_fake/trade", {"symbol": symbol, "price": str(price), "at": at_ms})

    def set_clock(self, at: datetime) -> None:
        self._call("POST", "/_fake/clock", {"at": int(at.timestamp() * 1000)})

    def load_klines(self, symbol: str, interval: str, rows: list[list[Any]]) -> None:
        self._call("POST", "/_fake/klines", {"symbol": symbol, "interval": interval, "rows": rows})

    def fault(self, kind: str, times: int = 1, **options: Any) -> None:
        self._call("POST", "/_fake/faults", {"kind": kind, "times": times, **options})

    def faults(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_fake/faults"))

    def orders(self, account: str) -> list[dict[str, Any]]:
        """Ground truth: every order the account ever had accepted, oldest first, with fills."""
        return list(self._call("GET", "/_fake/orders", account=account))

    def stream_down(self, down: bool = True) -> None:
        """Drop every stream connection and refuse new ones (True), or take them again."""
        self._call("POST", "/_fake/stream", {"down": down})

    def listening(self, account: str) -> int:
        """How many user data stream subscriptions the account has open."""
        return int(self._call("GET", "/_fake/streams", account=account)["listening"])

    def requests(self, account: str | None = None, method: str | None = None,
                 path: str | None = None) -> int:
        """How many REST requests (of the account, method and path, when given) it answered."""
        return sum(1 for who, m, p in self._call("GET", "/_fake/requests")
                   if account in (None, who) and method in (None, m) and path in (None, p))

    def stop(self) -> None:
        self.exchange.stopping.set()
        self._http.close()
        self._server.shutdown()
        self._server.server_close()
        self._ws_server.shutdown()

    def __enter__(self) -> FakeExchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
