"""The CCXT broker: a crypto exchange's spot account per tradewire account, through ccxt's sync
API. Proven against Binance's REST API (tests/fakes/ccxt_exchange.py); every exchange-specific
choice reads ccxt's data (`exchange.has`, `exchange.features`) rather than the exchange's name.

Idempotency. Every order carries tradewire's client_order_id. Before sending, the adapter looks
the id up: some exchanges (Binance) refuse a reused id only while its order is open, so a market
order that filled at once would be accepted twice. An answer that leaves the outcome unknown
(a timeout, a dropped connection, a 5xx, an error ccxt cannot classify) is settled by looking
the order up a few times, with delays, because exchanges lag; still unseen, it raises
BrokerUnavailable, and the same id is not sent again by this process until `settle_window_s`
has passed without a sighting. A duplicate-id refusal is answered with the order that holds the
id. Rate limits (429, 418) were not processed: the adapter waits and sends again.

Order updates. Where ccxt.pro has the exchange and it `has['watchOrders']`, `stream_updates`
follows the account's orders on the exchange's websocket (for Binance spot: the WebSocket API's
user data stream) and reports each change as `lookup` would: the status and filled quantity
from the update, the fills from the order's trades through the REST API, so a fill has the same
id whichever way it came and the core applies it once. Elsewhere (`streaming` False) the
worker polls. A dropped stream is reopened after a pause that doubles while reconnecting keeps
failing; each time the stream is up again `on_live(True)` tells the caller to look up what
happened meanwhile (the exchange replays nothing).

Spot semantics: no shorting and no netting; positions are the account's non-quote balances;
`cash` is the quote balance (free and locked), `buying_power` its free part, `equity` the quote
balance plus holdings marked at their last price. Numbers stay the exchange's decimal strings
(ccxt's `number = str`) until they become Decimals here. Fees paid in the base asset are converted at
the fill price; a fee in a third asset (BNB) is reported as 0 and logged. Tradewire's `day` has
no session end on a 24/7 venue: it is sent as gtc.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt

from tradewire.adapters.market_data.ccxt import (
    DEFAULT_QUOTE,
    display_symbol,
    make_exchange,
    market_symbol,
)
from tradewire.domain.errors import Rejected, TradewireError
from tradewire.domain.orders import OrderStatus
from tradewire.domain.sessions import ALWAYS_OPEN
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
STATUS = {"open": OrderStatus.ACCEPTED, "canceling": OrderStatus.ACCEPTED,
          "closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
          "expired": OrderStatus.CANCELED, "rejected": OrderStatus.REJECTED}
TIF = {TimeInForce.DAY: "GTC", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC",
       TimeInForce.FOK: "FOK"}
# Documented client order id limits (ccxt does not carry them as data); others: 32, the common floor.
CLIENT_ID_MAX = {"binance": 36, "binanceus": 36, "bybit": 36, "okx": 32, "kucoin": 40}
# Refusals: the exchange answered and did not take the order.
DEFINITE = (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.BadRequest, ccxt.AuthenticationError,
            ccxt.NotSupported, ccxt.ArgumentsRequired, ccxt.OperationRejected)
BUSY = (ccxt.RateLimitExceeded, ccxt.DDoSProtection)  # not processed: wait and send again
DOUBT = (ccxt.OperationFailed, ccxt.ExchangeError)  # network, 5xx, or an unclassified error
Key = tuple[str, str]  # (account_ref, client_order_id)
REMEMBERED = 100_000  # orders whose market this process keeps in mind
STREAM_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # s before reconnecting; the last repeats
STREAM_STEADY_S = 60.0  # a stream up this long starts the backoff over
# A stream that fails so is not reconnected here: the caller hears of it.
STREAM_FATAL = (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.NotSupported,
                ccxt.ArgumentsRequired)


class _Refused(Exception):
    """An order tradewire must not send: the reason becomes a REJECTED report."""


class _UpdateLost(Exception):
    """A streamed update that could not be passed on: the stream starts over."""


@functools.cache
def watches_orders(exchange_id: str) -> bool:
    """Whether ccxt.pro follows this exchange's orders on a websocket (`watchOrders`)."""
    try:
        pro = importlib.import_module("ccxt.pro")
    except ImportError:  # a ccxt without its asyncio side (aiohttp): poll
        return False
    if exchange_id not in pro.exchanges:
        return False
    return bool(getattr(pro, exchange_id)().has.get("watchOrders"))


def capabilities_of(exchange: Any, exchange_id: str) -> BrokerCapabilities:
    """What the exchange's spot API takes, from ccxt's `features` data."""
    create = ((exchange.features or {}).get("spot") or {}).get("createOrder") or {}
    tifs = create.get("timeInForce") or {"GTC": True}
    trigger = bool(create.get("triggerPrice") or create.get("stopLossPrice"))
    types = {OrderType.MARKET, OrderType.LIMIT} | (
        {OrderType.STOP, OrderType.STOP_LIMIT} if trigger else set())
    tif = {TimeInForce.DAY} | {t for t, name in TIF.items() if tifs.get(name)}
    return BrokerCapabilities(
        order_types=frozenset(types), time_in_force=frozenset(tif), native_stop=trigger,
        native_take_profit=True, native_trailing=False, bracket=False, oco=False,
        fractional=True, shorting=False, netting=False,
        client_order_id_max=CLIENT_ID_MAX.get(exchange_id, 32), markets=(ALWAYS_OPEN,),
        market_rests_without_price=False)


class CcxtBroker:
    def __init__(self, exchange_id: str, credentials: Credentials, *, quote: str = DEFAULT_QUOTE,
                 timeout_s: float = 10.0, lookup_delays: Iterable[float] = (0.2, 0.5, 1.0),
                 busy_delays: Iterable[float] = (0.5, 1.0, 2.0), settle_window_s: float = 30.0,
                 rate_limit_ms: int | None = None, lookup_by_client_id: bool = True,
                 watch: bool = True, stream_url: str | None = None,
                 stream_backoff: Iterable[float] = STREAM_BACKOFF) -> None:
        self.exchange_id = exchange_id
        self.name = f"ccxt:{exchange_id}"
        self.quote = quote
        self._credentials = credentials
        self._timeout_s, self._rate_limit_ms = timeout_s, rate_limit_ms
        self._lookup_delays, self._busy_delays = tuple(lookup_delays), tuple(busy_delays)
        self._settle_window_s = settle_window_s
        self._by_client_id = lookup_by_client_id
        self.capabilities = capabilities_of(make_exchange(exchange_id), exchange_id)
        self._watch, self._stream_url = watch, stream_url
        self._stream_backoff = tuple(stream_backoff)
        self._clients: dict[str, Any] = {}
        self._public: dict[tuple[bool, str | None], Any] = {}
        self._symbols: dict[Key, str] = {}  # where each order lives: lookups need the market
        self._sent: dict[Key, float] = {}  # sends whose outcome is not known yet
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"CcxtBroker({self.exchange_id!r})"

    @property
    def streaming(self) -> bool:
        """Order updates come from the exchange's stream (else the worker polls them):
        ccxt.pro has `watchOrders` for it, and `watch=False` was not asked for."""
        return self._watch and watches_orders(self.exchange_id)

    # ---- the Broker port ----------------------------------------------------------------

    def open_account(self, account_ref: str, cash: Decimal, market: str = ALWAYS_OPEN) -> None:
        """An exchange account holds what was deposited there (`cash` cannot add to it): this
        proves the keys by reading the balance."""
        try:
            self._client(account_ref).fetch_balance()
        except LookupError:
            raise Rejected(f"no exchange credentials for account {account_ref}",
                           code="BROKER_CREDENTIALS_MISSING") from None
        except ccxt.AuthenticationError:
            self._forget(account_ref)
            raise Rejected(f"{self.name} refused the account's API key (check the key, its "
                           "secret and its permissions)", code="BROKER_CREDENTIALS_INVALID") from None
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def submit(self, request: OrderRequest) -> BrokerOrder:
        key = (request.account_ref, request.client_order_id)
        try:
            self._check(request)
            exchange = self._client(request.account_ref)
            symbol = self._market(exchange, request.symbol)
            args = self._order_args(exchange, symbol, request)
        except _Refused as refused:
            return _rejected(request, str(refused))
        except (LookupError, TradewireError) as exc:
            return _rejected(request, f"no usable exchange credentials for the account: {exc}")
        except DOUBT as exc:
            raise self._unavailable(exc) from None
        self._remember(key, symbol)
        try:
            found = self._before_sending(exchange, key, symbol)
            if found is not None:
                return self._report(exchange, found, key[1])
        except ccxt.AuthenticationError as exc:  # nothing was sent: a definite refusal
            self._forget(request.account_ref)
            return _rejected(request, f"{self.name} refused the account's keys: {_message(exc)}")
        except DOUBT as exc:
            raise self._unavailable(exc) from None
        try:
            return self._send(exchange, key, symbol, args, request)
        except DOUBT as exc:  # reading the answer failed (its trades, say): the core looks it up
            raise self._unavailable(exc) from None

    def lookup(self, account_ref: str, client_order_id: str,
               symbol: str | None = None) -> BrokerOrder | None:
        """The order holding `client_order_id`, or None. `symbol` (tradewire's) spares a search
        where the exchange looks orders up per market and this process never saw the order."""
        exchange = self._client_or_none(account_ref)
        if exchange is None:
            return None
        try:
            found = self._locate(exchange, (account_ref, client_order_id), symbol)
            if found is None:
                return None
            self._settled((account_ref, client_order_id))  # seen: no longer of unknown outcome
            return self._report(exchange, found, client_order_id)
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def cancel(self, account_ref: str, client_order_id: str,
               symbol: str | None = None) -> BrokerOrder | None:
        exchange = self._client_or_none(account_ref)
        if exchange is None:
            return None
        try:
            found = self._locate(exchange, (account_ref, client_order_id), symbol)
            if found is None:
                return None
            if STATUS.get(found["status"]) is OrderStatus.ACCEPTED:
                try:
                    found = exchange.cancel_order(found["id"], found["symbol"])
                except ccxt.OrderNotFound:  # it filled or ended meanwhile: what is it now?
                    found = exchange.fetch_order(found["id"], found["symbol"])
            return self._report(exchange, found, client_order_id)
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def account(self, account_ref: str) -> BrokerAccount:
        try:
            exchange = self._client(account_ref)
            balance = exchange.fetch_balance()
            holdings = self._holdings(balance)
            prices = self._last_prices(exchange, holdings)
        except DOUBT as exc:
            raise self._unavailable(exc) from None
        cash = _dec((balance.get("total") or {}).get(self.quote))
        equity = cash + sum((qty * prices.get(code, ZERO) for code, qty in holdings.items()), ZERO)
        return BrokerAccount(cash=cash, equity=equity,
                             buying_power=_dec((balance.get("free") or {}).get(self.quote)))

    def positions(self, account_ref: str) -> dict[str, Decimal]:
        try:
            return self._holdings(self._client(account_ref).fetch_balance())
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def open_orders(self, account_ref: str) -> list[BrokerOrder]:
        exchange = self._client_or_none(account_ref)
        if exchange is None:
            return []
        try:
            if not _symbol_required(exchange, "fetchOpenOrders"):
                orders = exchange.fetch_open_orders()
            else:
                orders = [o for s in self._known_symbols(exchange, account_ref)
                          for o in exchange.fetch_open_orders(s)]
            orders.sort(key=lambda o: (o.get("timestamp") or 0, str(o.get("id"))))
            for o in orders:
                self._remember((account_ref, o.get("clientOrderId") or ""), o["symbol"])
            return [self._report(exchange, o, o.get("clientOrderId") or "") for o in orders]
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def stream_updates(self, account_ref: str, on_report: Callable[[BrokerOrder], None],
                       stop: threading.Event,
                       on_live: Callable[[bool], None] | None = None) -> None:
        """Until `stop` is set, hand each change to one of the account's orders to `on_report`,
        from ccxt.pro's `watch_orders`. `on_live(True)` once the stream's connection is open
        (the caller then looks up what it may have missed), `on_live(False)` when it drops;
        reconnects wait STREAM_BACKOFF. Refused keys and the like end the call by raising."""
        if not self.streaming:
            raise BrokerUnavailable(f"{self.name}: ccxt.pro follows no orders of this exchange; "
                                    "they are polled")
        try:
            self._credentials(account_ref)
        except (LookupError, TradewireError):
            raise Rejected(f"no exchange credentials for account {account_ref}",
                           code="BROKER_CREDENTIALS_MISSING") from None
        try:
            asyncio.run(self._follow(account_ref, on_report, stop, on_live or _ignore))
        except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
            raise Rejected(f"{self.name} refused the account's keys on its stream: "
                           f"{_message(exc)}", code="BROKER_CREDENTIALS_INVALID") from None
        except STREAM_FATAL as exc:
            raise BrokerUnavailable(f"{self.name}: no order stream: {_message(exc)}") from None
        except DOUBT as exc:  # the markets or the first connection could not be had
            raise self._unavailable(exc) from None

    def close(self) -> None:
        """Close every client's connections (they reopen on the next call)."""
        with self._lock:
            clients = [*self._clients.values(), *self._public.values()]
            self._clients.clear()
            self._public.clear()
        for client in clients:
            client.session.close()

    # ---- the order stream -----------------------------------------------------------------

    async def _follow(self, ref: str, on_report: Callable[[BrokerOrder], None],
                      stop: threading.Event, on_live: Callable[[bool], None]) -> None:
        """Sessions of the stream, one after another, until `stop`."""
        asyncio.get_running_loop().set_exception_handler(_quiet_ccxt_futures)
        exchange = await asyncio.to_thread(self._stream_client, ref)
        stopping = asyncio.ensure_future(_until_set(stop))
        failures, live = 0, False

        def tell(state: bool) -> None:
            nonlocal live
            live = state
            on_live(state)

        try:
            while not stop.is_set():
                started = time.monotonic()
                session = asyncio.ensure_future(self._session(exchange, ref, on_report, tell))
                await asyncio.wait({session, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not session.done():  # stopped
                    session.cancel()
                    with contextlib.suppress(asyncio.CancelledError, *DOUBT):
                        await session
                    break
                if live:
                    await asyncio.to_thread(tell, False)
                # The next session starts on a new connection with no subscription left over
                # (ccxt could take a stale one for a live one and wait forever).
                await exchange.close_ws_clients()
                exc = _ccxt_error(session.exception())
                if isinstance(exc, STREAM_FATAL):
                    raise exc
                if time.monotonic() - started >= STREAM_STEADY_S:
                    failures = 0
                pause = self._stream_backoff[min(failures, len(self._stream_backoff) - 1)]
                failures += 1
                log.warning("%s: order stream of account %s ended (%s: %s); reconnecting in "
                            "%.1fs", self.name, ref, type(exc).__name__,
                            _message(exc) if exc else "", pause)
                await asyncio.wait({stopping}, timeout=pause)
        finally:
            stopping.cancel()
            if live:
                await asyncio.to_thread(tell, False)
            await exchange.close()

    async def _session(self, exchange: Any, ref: str, on_report: Callable[[BrokerOrder], None],
                       on_live: Callable[[bool], None]) -> None:
        """One connection: open it, say so, then pass on every update until it fails."""
        watching = asyncio.ensure_future(exchange.watch_orders())
        try:
            await _opened(exchange, watching)
            await asyncio.to_thread(on_live, True)
            while True:
                orders = await watching
                watching = asyncio.ensure_future(exchange.watch_orders())
                for order in orders:
                    await asyncio.to_thread(self._pass_on, ref, order, on_report)
        finally:
            if not watching.done():
                watching.cancel()

    def _pass_on(self, ref: str, order: Mapping[str, Any],
                 on_report: Callable[[BrokerOrder], None]) -> None:
        """An update as `lookup` reports it: the fills are the order's trades. One that cannot
        be passed on (its trades unreadable, say) ends the session: the next one starts by
        having the caller look the account's orders up."""
        coid = str(order.get("clientOrderId") or "")
        try:
            self._remember((ref, coid), order["symbol"])
            on_report(self._report(self._client(ref), order, coid))
        except Exception as exc:
            log.exception("%s: update of order %s not passed on", self.name, coid)
            raise _UpdateLost(f"update of order {coid} not passed on") from exc

    def _stream_client(self, account_ref: str) -> Any:
        """A ccxt.pro client of the account, sharing the markets of its REST client."""
        credentials = self._credentials(account_ref)
        sandbox, base_url = bool(credentials.get("sandbox")), credentials.get("base_url")
        client = make_exchange(self.exchange_id, base_url=base_url, sandbox=sandbox,
                               timeout_s=self._timeout_s, rate_limit_ms=self._rate_limit_ms,
                               credentials=credentials, exact=True, pro=True,
                               stream_url=self._stream_url)
        client.set_markets_from_exchange(self._markets(sandbox, base_url))
        return client

    # ---- sending --------------------------------------------------------------------------

    def _check(self, r: OrderRequest) -> None:
        """Refuse what this exchange would refuse, or silently change, before any network."""
        if r.qty <= 0:
            raise _Refused("quantity must be positive")
        if r.order_type.needs_limit_price and (r.limit_price is None or r.limit_price <= 0):
            raise _Refused(f"a {r.order_type} order needs a positive limit price")
        if r.order_type.needs_stop_price and (r.stop_price is None or r.stop_price <= 0):
            raise _Refused(f"a {r.order_type} order needs a positive stop price")
        if not self.capabilities.supports(r.order_type, r.time_in_force):
            raise _Refused(f"{self.name} takes no {r.order_type} orders with time in force "
                           f"{r.time_in_force}")
        if r.extended_hours:
            raise _Refused(f"{self.name} trades around the clock: extended hours do not apply")
        if r.oco_group is not None:
            raise _Refused(f"{self.name} has no one-cancels-other orders through this adapter")
        if len(r.client_order_id) > self.capabilities.client_order_id_max:
            raise _Refused(f"client order id longer than {self.name}'s "
                           f"{self.capabilities.client_order_id_max} characters")

    def _market(self, exchange: Any, name: str) -> str:
        symbol = market_symbol(exchange, name, self.quote)
        market = exchange.markets.get(symbol)
        if market is None or not market.get("spot") or market.get("active") is False:
            raise _Refused(f"{name} is not a spot market trading at {self.exchange_id} "
                           f"(looked for {symbol})")
        return symbol

    def _order_args(self, exchange: Any, symbol: str, r: OrderRequest) -> tuple[Any, ...]:
        """create_order's arguments, as exact strings: a value the market's step would round
        is refused, never rounded."""
        params: dict[str, Any] = {"clientOrderId": r.client_order_id}
        amount = _exact(exchange.amount_to_precision, symbol, r.qty, "quantity")
        price = None
        if r.order_type.needs_limit_price:
            price = _exact(exchange.price_to_precision, symbol, r.limit_price, "limit price")
            params["timeInForce"] = TIF[r.time_in_force]
        if r.order_type.needs_stop_price:
            params["triggerPrice"] = _exact(exchange.price_to_precision, symbol, r.stop_price,
                                            "stop price")
        kind = "limit" if r.order_type.needs_limit_price else "market"
        return symbol, kind, str(r.side), amount, price, params

    def _before_sending(self, exchange: Any, key: Key, symbol: str) -> dict[str, Any] | None:
        """The order this id already names, if any. After an unknown outcome here, a miss
        is no proof until the settle window has passed: then raise, never send again."""
        sent_at = self._sent.get(key)
        if sent_at is None:
            return self._fetch(exchange, key[1], symbol)
        found = self._settle(exchange, key, symbol)
        if found is not None:
            return found
        waited = time.monotonic() - sent_at
        if waited < self._settle_window_s:
            raise BrokerUnavailable(f"{self.name}: order {key[1]} was sent {waited:.1f}s ago with "
                                    "an unknown outcome and is not visible yet; not sending it again")
        with self._lock:
            self._sent.pop(key, None)  # unseen long after the send: it never arrived
        return None

    def _send(self, exchange: Any, key: Key, symbol: str, args: tuple[Any, ...],
              request: OrderRequest) -> BrokerOrder:
        with self._lock:
            self._sent[key] = time.monotonic()
        try:
            order = self._patiently(lambda: exchange.create_order(*args))
        except BUSY as exc:
            self._settled(key)
            raise self._unavailable(exc) from None
        except DEFINITE as exc:
            if not _duplicate(exc):
                self._settled(key)
                if isinstance(exc, ccxt.AuthenticationError):
                    self._forget(request.account_ref)
                return _rejected(request, f"{self.name} refused the order: {_message(exc)}")
            found = self._settle(exchange, key, symbol)  # the id is taken: by that order
        except DOUBT as exc:
            log.warning("%s: order %s: outcome unknown (%s); looking it up", self.name, key[1],
                        type(exc).__name__)
            found = self._settle(exchange, key, symbol)
        else:
            self._settled(key)
            return self._report(exchange, order, key[1])
        if found is None:
            raise BrokerUnavailable(f"{self.name}: order {key[1]}: outcome unknown, not found yet")
        return self._report(exchange, found, key[1])

    def _patiently(self, call: Callable[[], Any]) -> Any:
        """`call`, again after each rate-limit refusal (those requests were not processed)."""
        for delay in self._busy_delays:
            try:
                return call()
            except BUSY:
                time.sleep(delay)
        return call()

    def _settle(self, exchange: Any, key: Key, symbol: str) -> dict[str, Any] | None:
        """Look an order of unknown outcome up, a few times: one miss right after is no proof."""
        for delay in (0.0, *self._lookup_delays):
            time.sleep(delay)
            try:
                found = self._fetch(exchange, key[1], symbol)
            except DOUBT:
                continue
            if found is not None:
                self._settled(key)
                return found
        return None

    def _settled(self, key: Key) -> None:
        with self._lock:
            self._sent.pop(key, None)

    # ---- finding orders -------------------------------------------------------------------

    def _fetch(self, exchange: Any, coid: str, symbol: str | None) -> dict[str, Any] | None:
        """One look for the order holding `coid` in `symbol`'s market."""
        if self._by_client_id and exchange.has.get("fetchOrder"):
            try:
                return dict(exchange.fetch_order(None, symbol, {"clientOrderId": coid}))
            except ccxt.OrderNotFound:
                return None
        return self._scan(exchange, coid, symbol)

    def _scan(self, exchange: Any, coid: str, symbol: str | None) -> dict[str, Any] | None:
        """For exchanges without lookup by client id: the open orders, then the recent ones."""
        orders = list(exchange.fetch_open_orders(symbol))
        if exchange.has.get("fetchClosedOrders"):
            orders += exchange.fetch_closed_orders(symbol)
        elif exchange.has.get("fetchOrders"):
            orders += exchange.fetch_orders(symbol)
        return next((dict(o) for o in orders if o.get("clientOrderId") == coid), None)

    def _locate(self, exchange: Any, key: Key, symbol: str | None) -> dict[str, Any] | None:
        market = market_symbol(exchange, symbol, self.quote) if symbol else self._symbols.get(key)
        if market is not None or not _symbol_required(exchange, "fetchOrder"):
            return self._fetch(exchange, key[1], market)
        # Unknown market (another process sent it): the open orders, then held assets' markets.
        if not _symbol_required(exchange, "fetchOpenOrders"):
            for order in exchange.fetch_open_orders():
                if order.get("clientOrderId") == key[1]:
                    self._remember(key, order["symbol"])
                    return dict(order)
        for candidate in self._known_symbols(exchange, key[0]):
            found = self._fetch(exchange, key[1], candidate)
            if found is not None:
                self._remember(key, candidate)
                return found
        return None

    def _remember(self, key: Key, symbol: str) -> None:
        with self._lock:
            self._symbols[key] = symbol
            if len(self._symbols) > REMEMBERED:  # the oldest go first (dicts keep order)
                del self._symbols[next(iter(self._symbols))]

    def _known_symbols(self, exchange: Any, account_ref: str) -> list[str]:
        """Markets the account is known to use: its orders seen here, and its holdings."""
        seen = {s for (ref, _), s in list(self._symbols.items()) if ref == account_ref}
        held = {f"{c}/{self.quote}" for c in self._holdings(exchange.fetch_balance())}
        return sorted(s for s in seen | held if s in exchange.markets)

    # ---- reports --------------------------------------------------------------------------

    def _report(self, exchange: Any, order: Mapping[str, Any], coid: str) -> BrokerOrder:
        status = STATUS.get(str(order.get("status")), OrderStatus.ACCEPTED)
        filled = _dec(order.get("filled"))
        if status is OrderStatus.ACCEPTED and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        side = order.get("side")
        return BrokerOrder(
            client_order_id=coid, broker_order_id=str(order.get("id") or ""), status=status,
            filled_qty=filled, fills=self._fills(exchange, order) if filled > 0 else (),
            reason=_reason(order, status), symbol=display_symbol(order["symbol"], self.quote),
            side=Side(side) if side in ("buy", "sell") else None,
            qty=_dec(order["amount"]) if order.get("amount") is not None else None)

    def _fills(self, exchange: Any, order: Mapping[str, Any]) -> tuple[BrokerFill, ...]:
        """The order's trades, the same list on every call (fill id: the exchange's trade id)."""
        wanted = _dec(order.get("filled"))
        for delay in (*self._lookup_delays, None):
            trades = self._trades(exchange, order)
            if sum((_dec(t["amount"]) for t in trades), ZERO) >= wanted or delay is None:
                break
            time.sleep(delay)  # trades can lag the order's own filled quantity
        market = exchange.market(order["symbol"])
        trades.sort(key=lambda t: (t.get("timestamp") or 0, str(t["id"])))
        return tuple(BrokerFill(
            fill_id=f"{exchange.id}:{market['id']}:{t['id']}:{t['side']}", qty=_dec(t["amount"]),
            price=_dec(t["price"]), fee=self._fee(t, market),
            filled_at=datetime.fromtimestamp(t["timestamp"] / 1000, UTC)) for t in trades)

    def _trades(self, exchange: Any, order: Mapping[str, Any]) -> list[dict[str, Any]]:
        if exchange.has.get("fetchOrderTrades"):
            return [dict(t) for t in exchange.fetch_order_trades(order["id"], order["symbol"])]
        return [dict(t) for t in exchange.fetch_my_trades(order["symbol"])
                if str(t.get("order")) == str(order["id"])]

    def _fee(self, trade: Mapping[str, Any], market: Mapping[str, Any]) -> Decimal:
        """The trade's fee in the quote currency."""
        total = ZERO
        for fee in trade.get("fees") or ([trade["fee"]] if trade.get("fee") else []):
            cost = _dec(fee.get("cost"))
            if fee.get("currency") == market["quote"] or cost == 0:
                total += cost
            elif fee.get("currency") == market["base"]:
                total += cost * _dec(trade["price"])  # a buyer's fee comes out of what it bought
            else:
                log.warning("%s: fee of %s %s on trade %s not converted", self.name, cost,
                            fee.get("currency"), trade.get("id"))
        return total

    # ---- balances -------------------------------------------------------------------------

    def _holdings(self, balance: Mapping[str, Any]) -> dict[str, Decimal]:
        totals = {code: _dec(qty) for code, qty in (balance.get("total") or {}).items()}
        return {code: qty for code, qty in totals.items() if code != self.quote and qty != 0}

    def _last_prices(self, exchange: Any, holdings: Mapping[str, Decimal]) -> dict[str, Decimal]:
        symbols = [f"{c}/{self.quote}" for c in holdings if f"{c}/{self.quote}" in exchange.markets]
        if not symbols:
            return {}
        if exchange.has.get("fetchTickers"):
            tickers = exchange.fetch_tickers(symbols)
        else:
            tickers = {s: exchange.fetch_ticker(s) for s in symbols}
        return {s.partition("/")[0]: _dec(t.get("last")) for s, t in tickers.items()}

    # ---- clients --------------------------------------------------------------------------

    def _client(self, account_ref: str) -> Any:
        """The account's ccxt client (made once; credentials read then)."""
        with self._lock:
            found = self._clients.get(account_ref)
        if found is not None:
            return found
        credentials = self._credentials(account_ref)
        sandbox, base_url = bool(credentials.get("sandbox")), credentials.get("base_url")
        client = make_exchange(self.exchange_id, base_url=base_url, sandbox=sandbox,
                               timeout_s=self._timeout_s, rate_limit_ms=self._rate_limit_ms,
                               credentials=credentials, exact=True)
        client.set_markets_from_exchange(self._markets(sandbox, base_url))
        with self._lock:
            return self._clients.setdefault(account_ref, client)

    def _client_or_none(self, account_ref: str) -> Any:
        try:
            return self._client(account_ref)
        except (LookupError, TradewireError):
            return None
        except DOUBT as exc:
            raise self._unavailable(exc) from None

    def _markets(self, sandbox: bool, base_url: str | None) -> Any:
        """A keyless client per address, holding the markets every account's client shares."""
        with self._lock:
            public = self._public.get((sandbox, base_url))
            if public is None:
                public = make_exchange(self.exchange_id, base_url=base_url, sandbox=sandbox,
                                       timeout_s=self._timeout_s, rate_limit_ms=self._rate_limit_ms,
                                       exact=True)
                public.load_markets()
                self._public[(sandbox, base_url)] = public
            return public

    def _forget(self, account_ref: str) -> None:
        """Drop a client whose keys were refused: the next call reads the credentials again."""
        with self._lock:
            self._clients.pop(account_ref, None)

    def _unavailable(self, exc: BaseException) -> BrokerUnavailable:
        return BrokerUnavailable(f"{self.name}: {type(exc).__name__}: {_message(exc)}")


# ---- helpers -------------------------------------------------------------------------------

def _ignore(live: bool) -> None:
    """No one to tell that the stream is up or down."""


def _quiet_ccxt_futures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """ccxt.pro leaves futures of a failed connection that no one awaits (the error reached
    the watch that failed): those go to debug, anything else to asyncio's own handler."""
    if isinstance(context.get("exception"), ccxt.BaseError):
        log.debug("ccxt: %s: %s", context.get("message"), context["exception"])
    else:
        loop.default_exception_handler(context)


def _ccxt_error(exc: BaseException | None) -> BaseException | None:
    """The ccxt error behind `exc`: ccxt.pro can mask one (a refused subscription) with an
    error of its own cleanup (a KeyError) raised while handling it."""
    seen = exc
    for _ in range(5):
        if seen is None or isinstance(seen, ccxt.BaseError):
            break
        seen = seen.__cause__ or seen.__context__
    return seen if isinstance(seen, ccxt.BaseError) else exc


async def _until_set(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.05)


async def _opened(exchange: Any, watching: asyncio.Future[Any]) -> None:
    """Return once one of the client's websockets is open; raise what the watch raised if it
    ended first (ccxt gives up on a connection after its own timeout)."""
    while not watching.done():
        for client in list((exchange.clients or {}).values()):
            connected = client.connected
            if connected.done() and not connected.cancelled() and connected.exception() is None:
                return
        await asyncio.sleep(0.01)
    watching.result()


def _dec(value: Any) -> Decimal:
    """A Decimal from what ccxt returns: the exchange's own decimal string (clients are made
    `exact`), or a float's shortest repr where an exchange computes one."""
    if value is None or value == "":
        return ZERO
    return Decimal(str(value))


def _exact(to_precision: Callable[[str, str], str], symbol: str, value: Decimal | None,
           what: str) -> str:
    assert value is not None
    try:
        sent = to_precision(symbol, format(value, "f"))
    except (ccxt.InvalidOrder, InvalidOperation):
        raise _Refused(f"{what} {value} is below the smallest step of {symbol}") from None
    if Decimal(sent) != value:
        raise _Refused(f"{what} {value} is not a multiple of {symbol}'s step (the exchange "
                       f"would take {sent})")
    return str(sent)


def _symbol_required(exchange: Any, method: str) -> bool:
    spec = ((exchange.features or {}).get("spot") or {}).get(method) or {}
    return bool(spec.get("symbolRequired", True))


def _duplicate(exc: BaseException) -> bool:
    return isinstance(exc, ccxt.DuplicateOrderId) or (
        isinstance(exc, ccxt.InvalidOrder) and "duplicate" in str(exc).lower())


_URL_QUERY = re.compile(r"\?\S*")


def _message(exc: BaseException) -> str:
    """The exchange's own words from a ccxt error: its JSON `msg` when there is one, without
    the exchange id ccxt prefixes and without query strings (signatures)."""
    text = _URL_QUERY.sub("", str(exc))
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
            if isinstance(body, dict) and body.get("msg"):
                return str(body["msg"])[:300]
        except ValueError:
            pass
    return text.partition(" ")[2][:300] or type(exc).__name__


def _reason(order: Mapping[str, Any], status: OrderStatus) -> str | None:
    if status is OrderStatus.REJECTED:
        return "rejected by the exchange"
    if order.get("status") == "expired":
        tif = str(order.get("timeInForce") or "")
        if order.get("type") == "limit" and tif in ("IOC", "FOK"):
            return f"{tif.lower()} order not filled on arrival: the exchange expired it"
        if order.get("type") == "market":
            return "market order could not fill (no liquidity or balance): the exchange expired it"
        return "expired at the exchange"
    if status is OrderStatus.CANCELED:
        return "canceled at the exchange"
    return None


def _rejected(r: OrderRequest, reason: str) -> BrokerOrder:
    return BrokerOrder(client_order_id=r.client_order_id, broker_order_id="",
                       status=OrderStatus.REJECTED, filled_qty=ZERO, reason=reason,
                       symbol=r.symbol, side=r.side, qty=r.qty)
