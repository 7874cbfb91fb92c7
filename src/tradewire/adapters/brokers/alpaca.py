"""The Alpaca broker: tradewire's Broker port over alpaca-py's TradingClient.

Safe retries rest on Alpaca's client_order_id, unique per account forever: a second POST with
the same id is refused with 422, so an outcome left unknown (a timeout, a dropped connection, a
5xx) is settled by looking the order up, never by sending it again. alpaca-py resends on 429
and 504 by itself; that is switched off, since a 504 can come after Alpaca accepted the order.
A 429 is a definite "not accepted", so this adapter retries it itself, after a pause.

Quantities and prices travel as decimal text: alpaca-py's request models (which hold floats)
validate the order, then their numbers are replaced by the exact strings.

`stream_updates` follows an account's trade updates (alpaca-py's TradingStream) and reads
each changed order back through the REST API, so a report is the same whichever way it came.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import AssetClass, OrderSide, PositionSide, QueryOrderStatus
from alpaca.trading.enums import OrderStatus as AlpacaStatus
from alpaca.trading.enums import TimeInForce as AlpacaTimeInForce
from alpaca.trading.models import Order, Position, TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)
from alpaca.trading.stream import TradingStream
from pydantic import ValidationError

from tradewire.domain.errors import Rejected, TradewireError
from tradewire.domain.orders import OrderStatus
from tradewire.domain.values import ZERO, OrderType, Side, TimeInForce
from tradewire.domain.venues import BrokerCapabilities
from tradewire.services.ports import (
    BrokerAccount,
    BrokerFill,
    BrokerOrder,
    BrokerUnavailable,
    Credentials,
    OrderRequest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DUPLICATE = "client_order_id must be unique"
ACTIVITY_PAGE = 100  # Alpaca's largest page of account activities
ORDER_PAGE = 500  # ... and of orders
FILL_LOOKBACK = timedelta(minutes=1)  # fills are asked for from a little before submitted_at
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC")  # positions say BTCUSD where orders say BTC/USD

REQUEST_TYPES: dict[OrderType, type[MarketOrderRequest | LimitOrderRequest | StopOrderRequest
                                     | StopLimitOrderRequest]] = {
    OrderType.MARKET: MarketOrderRequest, OrderType.LIMIT: LimitOrderRequest,
    OrderType.STOP: StopOrderRequest, OrderType.STOP_LIMIT: StopLimitOrderRequest,
}
_S = AlpacaStatus
# Alpaca's final states; every other one (new, accepted, pending_new, held, pending_cancel,
# stopped, ...) is an order still working, reported by how much of it has filled.
SETTLED: dict[AlpacaStatus, tuple[OrderStatus, str | None]] = {
    _S.FILLED: (OrderStatus.FILLED, None),
    _S.CANCELED: (OrderStatus.CANCELED, "canceled at alpaca"),
    _S.REPLACED: (OrderStatus.CANCELED, "replaced at alpaca by another order"),
    _S.EXPIRED: (OrderStatus.EXPIRED, "expired at alpaca: its time in force ran out"),
    # Alpaca stops a day's work on it; tradewire's EXPIRED still takes a late fill.
    _S.DONE_FOR_DAY: (OrderStatus.EXPIRED, "done for the day at alpaca"),
    _S.REJECTED: (OrderStatus.REJECTED, "rejected by alpaca"),
}


class TimeoutSession(requests.Session):
    """A requests session that never waits forever (alpaca-py passes no timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def with_timeout(client: RESTClient, timeout: float) -> None:
    """alpaca-py has no public hook for a timeout: its session is replaced."""
    client._session = TimeoutSession(timeout)


def without_resends(client: RESTClient) -> None:
    """No automatic resend: alpaca-py would repeat a POST after a 504 (and a 429) by itself."""
    client._retry = 0


class AlpacaBroker:
    name = "alpaca"
    capabilities = BrokerCapabilities(
        order_types=frozenset(OrderType),
        time_in_force=frozenset(TimeInForce) - {TimeInForce.GTD},  # Alpaca has no gtd
        native_stop=True, native_take_profit=True, native_trailing=True, bracket=True,
        # Alpaca links orders only inside one oco-class submission; orders sent one by one
        # (the port's oco_group) cannot cancel each other there, so such requests are refused.
        oco=False,
        fractional=True, shorting=True, netting=True, client_order_id_max=48,
    )

    def __init__(self, credentials: Credentials, *, timeout: float = 5.0,
                 lookup_delays: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
                 rate_limit_delays: Sequence[float] = (1.0, 2.0, 4.0),
                 cancel_delays: Sequence[float] = (0.1, 0.3, 1.0),
                 stream_url: str | None = None) -> None:
        self._credentials = credentials
        self._stream_url = stream_url  # None: the one the account's keys point at
        self._timeout = timeout
        self._lookup_delays = tuple(lookup_delays)  # brokers lag: one 404 right after proves nothing
        self._rate_limit_delays = tuple(rate_limit_delays)
        self._cancel_delays = tuple(cancel_delays)  # a cancel is pending at Alpaca for a moment
        self._clients: dict[str, TradingClient] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AlpacaBroker(accounts={len(self._clients)})"

    # ---- the Broker port ----------------------------------------------------------------------

    def open_account(self, account_ref: str, cash: Decimal, market: str = "XNYS") -> None:
        """A real broker's money is its own: reading the account proves the keys work."""
        self.account(account_ref)

    def submit(self, request: OrderRequest) -> BrokerOrder:
        problem = unsupported(request)
        if problem is not None:
            return refused(request, problem)
        try:
            body = order_body(request)
        except ValueError as exc:  # alpaca-py's request model refused it
            return refused(request, validation_message(exc))
        try:
            client = self._client(request.account_ref)
        except Rejected as exc:
            return refused(request, exc.message)
        try:
            raw = self._call(partial(client.post, "/orders", body))
            order = Order(**raw)
        except APIError as exc:
            return self._answered(request, exc)
        except (requests.RequestException, ValueError, TypeError) as exc:  # no (readable) answer
            return self._settle(request, type(exc).__name__)
        return self._report(request.account_ref, order)

    def lookup(self, account_ref: str, client_order_id: str) -> BrokerOrder | None:
        try:
            order = self._order(account_ref, client_order_id)
            return None if order is None else self._report(account_ref, order)
        except Rejected as exc:
            # Keys refused: the order's fate is unknown, not absent; reconciliation, which
            # walks every account, goes on with the others and asks again later.
            raise BrokerUnavailable(exc.message) from None

    def cancel(self, account_ref: str, client_order_id: str) -> BrokerOrder | None:
        order = self._order(account_ref, client_order_id)
        if order is None:
            return None
        if order.status not in SETTLED:
            client = self._client(account_ref)
            self._request(account_ref, partial(cancel_unless_settled, client, str(order.id)))
            order = self._settled_after_cancel(account_ref, client_order_id) or order
        return self._report(account_ref, order)

    def account(self, account_ref: str) -> BrokerAccount:
        a = self._request(account_ref, self._client(account_ref).get_account)
        return BrokerAccount(cash=decimal(a.cash), equity=decimal(a.equity),
                             buying_power=decimal(a.buying_power))

    def positions(self, account_ref: str) -> dict[str, Decimal]:
        rows: list[Position] = self._request(account_ref, self._client(account_ref).get_all_positions)
        held = {position_symbol(p): signed_qty(p) for p in rows}
        return {symbol: qty for symbol, qty in held.items() if qty != 0}

    def open_orders(self, account_ref: str) -> list[BrokerOrder]:
        client = self._client(account_ref)
        found: dict[str, Order] = {}
        after: datetime | None = None
        while True:
            query = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=ORDER_PAGE,
                                     direction=Sort.ASC, nested=False, after=after)
            page: list[Order] = self._request(account_ref, partial(client.get_orders, query))
            fresh = {str(o.id): o for o in page if str(o.id) not in found}
            found.update(fresh)
            if len(page) < ORDER_PAGE or not fresh:
                return [self._report(account_ref, o) for o in found.values()]
            # `after` is exclusive: step back a tick so orders sharing the page's last instant
            # come again (repeats are dropped by id).
            after = page[-1].submitted_at - timedelta(microseconds=1)

    def stream_updates(self, account_ref: str, on_report: Callable[[BrokerOrder], None],
                       stop: threading.Event) -> None:
        """Until `stop` is set, hand each change to one of the account's orders to `on_report`,
        read back through the REST API: a trade update's execution id is not the id of the fill
        activity that lookup reports, and the core applies fills by id."""
        keys = self._keys(account_ref)
        stream = TradingStream(str(keys["key_id"]), str(keys["secret_key"]),
                               paper=flag(keys.get("paper", True)),
                               url_override=self._stream_url or stream_url(keys))

        async def on_update(update: TradeUpdate) -> None:
            await asyncio.to_thread(self._pass_on, account_ref, update.order, on_report)

        stream.subscribe_trade_updates(on_update)
        threading.Thread(target=halt_when_set, args=(stream, stop), daemon=True,
                         name=f"alpaca-stream-stop-{account_ref}").start()
        stream.run()

    def _pass_on(self, ref: str, order: Order, on_report: Callable[[BrokerOrder], None]) -> None:
        try:
            on_report(self._report(ref, order))
        except Exception:  # the stream outlives one bad update; reconciliation catches up
            log.exception("alpaca: update of order %s not passed on", order.client_order_id)

    # ---- submitting ---------------------------------------------------------------------------

    def _answered(self, request: OrderRequest, exc: APIError) -> BrokerOrder:
        status, message = exc.status_code, api_message(exc)
        if status == 422 and DUPLICATE in message:
            # Alpaca holds this client_order_id already: that order is the answer.
            return self._settle(request, "client_order_id already at alpaca")
        if status is None or status >= 500:
            return self._settle(request, f"HTTP {status}")
        if status == 429:
            raise BrokerUnavailable("alpaca kept refusing with 429 (rate limit): the order was "
                                    "not accepted")
        if status == 401:
            self._forget(request.account_ref)
            return refused(request, "alpaca refused the account's API keys")
        return refused(request, message or f"alpaca refused the order (HTTP {status})")

    def _settle(self, request: OrderRequest, why: str) -> BrokerOrder:
        """The outcome is unknown: find the order, waiting out the broker's lag, or say so."""
        log.warning("alpaca: order %s unconfirmed (%s); looking it up", request.client_order_id, why)
        for delay in (0.0, *self._lookup_delays):
            time.sleep(delay)
            try:
                found = self.lookup(request.account_ref, request.client_order_id)
            except BrokerUnavailable:
                found = None
            if found is not None:
                return found
        raise BrokerUnavailable(f"alpaca did not confirm order {request.client_order_id} ({why}) "
                                "and does not show it yet: look it up before sending it again")

    # ---- reading ------------------------------------------------------------------------------

    def _order(self, ref: str, client_order_id: str) -> Order | None:
        client = self._client(ref)
        return self._request(ref, partial(order_or_none, client, client_order_id))

    def _settled_after_cancel(self, ref: str, client_order_id: str) -> Order | None:
        """Alpaca answers a cancel at once and carries it out a moment later (pending_cancel)."""
        order = self._order(ref, client_order_id)
        for delay in self._cancel_delays:
            if order is None or order.status in SETTLED:
                break
            time.sleep(delay)
            order = self._order(ref, client_order_id)
        return order

    def _report(self, ref: str, order: Order) -> BrokerOrder:
        filled = decimal(order.filled_qty)
        fills = self._fills(ref, order, filled) if filled > 0 else ()
        seen = sum((f.qty for f in fills), ZERO)
        status, reason = SETTLED.get(order.status, (OrderStatus.ACCEPTED, None))
        if status is OrderStatus.CANCELED and order.time_in_force in (AlpacaTimeInForce.IOC,
                                                                      AlpacaTimeInForce.FOK):
            reason = f"{order.time_in_force.value} order canceled at alpaca: not filled on arrival"
        if order.status not in SETTLED or seen < filled:
            # Working, or settled while the activity feed still trails the order's filled_qty:
            # report it open until every fill shows, so reconciliation asks again.
            status, reason = (OrderStatus.PARTIALLY_FILLED if seen > 0 else OrderStatus.ACCEPTED), None
        return BrokerOrder(client_order_id=order.client_order_id, broker_order_id=str(order.id),
                           status=status, filled_qty=seen, fills=fills, reason=reason,
                           symbol=order.symbol, side=Side(order.side.value) if order.side else None,
                           qty=decimal(order.qty) if order.qty is not None else None)

    def _fills(self, ref: str, order: Order, filled: Decimal) -> tuple[BrokerFill, ...]:
        """The order's fill activities: each fill once, with Alpaca's id, the same every time."""
        client = self._client(ref)
        params: dict[str, Any] = {"after": rfc3339(order.submitted_at - FILL_LOOKBACK),
                                  "direction": "asc", "page_size": ACTIVITY_PAGE}
        fills: list[BrokerFill] = []
        while True:
            page = self._request(ref, partial(client.get, "/account/activities/FILL", params))
            rows = page if isinstance(page, list) else []
            fills += [to_fill(a) for a in rows if a.get("order_id") == str(order.id)]
            if len(rows) < ACTIVITY_PAGE or sum((f.qty for f in fills), ZERO) >= filled:
                return tuple(fills)
            params = {**params, "page_token": rows[-1]["id"]}

    # ---- transport ----------------------------------------------------------------------------

    def _keys(self, ref: str) -> Mapping[str, Any]:
        try:
            keys = self._credentials(ref)
            if not keys.get("key_id") or not keys.get("secret_key"):
                raise KeyError("key_id")
        except (LookupError, TradewireError, ValueError):
            # Whatever the source said stays out of the message: it may quote the secret.
            raise Rejected(f"no usable alpaca credentials for account {ref}",
                           code="BROKER_CREDENTIALS_MISSING") from None
        return keys

    def _client(self, ref: str) -> TradingClient:
        client = self._clients.get(ref)
        if client is not None:
            return client
        keys = self._keys(ref)
        client = TradingClient(api_key=str(keys["key_id"]), secret_key=str(keys["secret_key"]),
                               paper=flag(keys.get("paper", True)),
                               url_override=keys.get("base_url") or None)
        with_timeout(client, self._timeout)
        without_resends(client)
        with self._lock:
            return self._clients.setdefault(ref, client)

    def _forget(self, ref: str) -> None:
        """Keys refused: the next call reads them again (they may have been rotated)."""
        with self._lock:
            self._clients.pop(ref, None)

    def _call(self, fn: Callable[[], T]) -> T:
        """One call to Alpaca; a 429 is retried after a pause (Alpaca did nothing)."""
        for delay in self._rate_limit_delays:
            try:
                return fn()
            except APIError as exc:
                if exc.status_code != 429:
                    raise
            time.sleep(delay)
        return fn()

    def _request(self, ref: str, fn: Callable[[], T]) -> T:
        """A read (or a cancel): what goes wrong becomes BrokerUnavailable, or Rejected keys."""
        try:
            return self._call(fn)
        except APIError as exc:
            if exc.status_code == 401:
                self._forget(ref)
                raise Rejected("alpaca refused the account's API keys",
                               code="BROKER_CREDENTIALS_INVALID") from None
            raise BrokerUnavailable(f"alpaca answered HTTP {exc.status_code}: "
                                    f"{api_message(exc) or 'no details'}") from None
        except (requests.RequestException, ValueError, TypeError) as exc:
            raise BrokerUnavailable(f"alpaca did not answer ({type(exc).__name__})") from None


# ---- the edge: tradewire's values in, Alpaca's out ---------------------------------------------


def unsupported(r: OrderRequest) -> str | None:
    if r.time_in_force is TimeInForce.GTD:
        return "alpaca has no gtd time in force: use day or gtc"
    if r.oco_group is not None:
        return "alpaca cannot link separately sent orders as one-cancels-other"
    if len(r.client_order_id) > AlpacaBroker.capabilities.client_order_id_max:
        return "client_order_id is longer than alpaca's 48 characters"
    return None


def order_body(r: OrderRequest) -> dict[str, Any]:
    """The POST /v2/orders body: checked by alpaca-py's model, numbers as exact decimal text."""
    numbers = {"qty": r.qty, "limit_price": r.limit_price, "stop_price": r.stop_price}
    given = {k: v for k, v in numbers.items() if v is not None}
    model = REQUEST_TYPES[r.order_type](
        symbol=r.symbol, side=OrderSide(str(r.side)), client_order_id=r.client_order_id,
        time_in_force=AlpacaTimeInForce(str(r.time_in_force)),
        extended_hours=r.extended_hours or None, **given)
    return {**model.to_request_fields(), **{k: wire(v) for k, v in given.items()}}


def refused(r: OrderRequest, reason: str) -> BrokerOrder:
    """A refusal: Alpaca holds no order for it (nor a broker_order_id)."""
    return BrokerOrder(client_order_id=r.client_order_id, broker_order_id="",
                       status=OrderStatus.REJECTED, filled_qty=ZERO, reason=reason,
                       symbol=r.symbol, side=r.side, qty=r.qty)


def validation_message(exc: ValueError) -> str:
    if isinstance(exc, ValidationError) and exc.errors():
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


def api_message(exc: APIError) -> str:
    """Alpaca's error message, or "" when the body is not Alpaca's JSON (a proxy's page)."""
    try:
        return str(exc.message)
    except (ValueError, KeyError, TypeError):
        return ""


def order_or_none(client: TradingClient, client_order_id: str) -> Order | None:
    try:
        order: Order = client.get_order_by_client_id(client_order_id)
    except APIError as exc:
        if exc.status_code == 404:
            return None
        raise
    return order


def cancel_unless_settled(client: TradingClient, order_id: str) -> None:
    try:
        client.cancel_order_by_id(order_id)
    except APIError as exc:
        if exc.status_code not in (404, 422):  # 422: it filled or ended meanwhile
            raise


def to_fill(activity: Mapping[str, Any]) -> BrokerFill:
    # Alpaca charges no commission on a fill; regulatory and crypto fees arrive as their own
    # activities (FEE, CFEE).
    return BrokerFill(fill_id=str(activity["id"]), qty=Decimal(str(activity["qty"])),
                      price=Decimal(str(activity["price"])), fee=ZERO,
                      filled_at=parse_time(str(activity["transaction_time"])))


def position_symbol(p: Position) -> str:
    if p.asset_class is AssetClass.CRYPTO and "/" not in p.symbol:
        for quote in CRYPTO_QUOTES:
            if p.symbol.endswith(quote) and len(p.symbol) > len(quote):
                return f"{p.symbol[:-len(quote)]}/{quote}"
    return p.symbol


def signed_qty(p: Position) -> Decimal:
    qty = decimal(p.qty)
    return -abs(qty) if p.side is PositionSide.SHORT else qty


def decimal(value: str | float | None) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def wire(value: Decimal) -> str:
    """Decimal text Alpaca reads: plain digits, never an exponent (str gives 1E+1)."""
    return format(value, "f")


def flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "live")
    return bool(value)


def stream_url(keys: Mapping[str, Any]) -> str | None:
    """The trade-updates stream beside a REST base URL (https://h -> wss://h/stream); None:
    alpaca-py's paper or live stream."""
    base = str(keys.get("base_url") or "").rstrip("/")
    return re.sub(r"^http", "ws", base) + "/stream" if base else None


def halt_when_set(stream: TradingStream, stop: threading.Event) -> None:
    """Stop the stream once `stop` is set. alpaca-py's stop() alone waits for the next message
    (up to 5 s), so the connection is closed too."""
    stop.wait()
    for _ in range(500):  # run() sets its loop first thing
        loop = stream._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                asyncio.run_coroutine_threadsafe(halt(stream), loop)
            return
        time.sleep(0.01)


async def halt(stream: TradingStream) -> None:
    await stream.stop_ws()
    await stream.close()


def rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    """Alpaca's times carry up to nine fractional digits; Python reads six."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value))
