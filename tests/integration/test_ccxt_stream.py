"""Order updates of CCXT accounts: from the exchange's stream where ccxt.pro has `watchOrders`
(Binance's WebSocket API user data stream, served by the fake exchange on loopback and followed
by ccxt.pro itself), from polling otherwise. A fill is applied once whichever way it came; a
stream that drops is reconnected, and what happened while it was down is looked up then."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.ccxt_exchange import FakeExchange, FakeKeys
from tests.support import Caller
from tradewire.adapters.brokers.ccxt import CcxtBroker, watches_orders
from tradewire.bootstrap import Container
from tradewire.domain.errors import Rejected
from tradewire.domain.orders import OrderStatus
from tradewire.domain.sessions import ALWAYS_OPEN
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.entrypoints import worker as worker_module
from tradewire.entrypoints.worker import Worker
from tradewire.services import accounts
from tradewire.services.credentials import CredentialSource
from tradewire.services.ports import BrokerOrder, BrokerUnavailable, OrderRequest, Page
from tradewire.services.submit import record_reports

D = Decimal
FAST: dict[str, Any] = {"timeout_s": 2.0, "lookup_delays": (0.02, 0.05),
                        "busy_delays": (0.02, 0.05), "rate_limit_ms": 1,
                        "stream_backoff": (0.1, 0.2, 0.4)}
ORDER_QUERIES = (("GET", "/api/v3/order"), ("GET", "/api/v3/openOrders"),
                 ("GET", "/api/v3/allOrders"))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as f:
        yield f


def order_queries(fake: FakeExchange, keys: FakeKeys) -> int:
    """REST requests that read orders (what polling does), made with the account's key."""
    return sum(fake.requests(keys.account, m, p) for m, p in ORDER_QUERIES)


# ---- the adapter's stream -------------------------------------------------------------------

@dataclass
class Follower:
    """The adapter's stream_updates running in a thread, its reports and up/down news queued."""

    broker: CcxtBroker
    reports: queue.Queue[BrokerOrder]
    states: queue.Queue[bool]
    stop: threading.Event
    thread: threading.Thread

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()  # stopping the stream ends the call


@pytest.fixture
def account(fake: FakeExchange) -> tuple[FakeKeys, dict[str, dict[str, Any]]]:
    keys = fake.create_account("100000")
    return keys, {"ref": {"apiKey": keys.api_key, "secret": keys.secret, "base_url": fake.url}}


def follow(broker: CcxtBroker) -> Follower:
    reports: queue.Queue[BrokerOrder] = queue.Queue()
    states: queue.Queue[bool] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=broker.stream_updates,
                              args=("ref", reports.put, stop, states.put), daemon=True)
    thread.start()
    return Follower(broker, reports, states, stop, thread)


def limit_buy(coid: str, limit: str = "100") -> OrderRequest:
    return OrderRequest(account_ref="ref", client_order_id=coid, symbol="AAPL", side=Side.BUY,
                        qty=D(10), order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                        limit_price=D(limit))


def test_updates_come_from_the_stream_as_lookup_reports_them(
        fake: FakeExchange, account: tuple[FakeKeys, dict[str, dict[str, Any]]]) -> None:
    keys, creds = account
    broker = CcxtBroker("binance", creds.__getitem__, stream_url=fake.ws_url, **FAST)
    assert broker.streaming
    f = follow(broker)
    try:
        assert f.states.get(timeout=10) is True
        wait_until(lambda: fake.listening(keys.account) == 1, "the exchange streams to it")
        fake.trade("AAPL", "105")
        broker.submit(limit_buy("tw-dip"))
        accepted = f.reports.get(timeout=10)
        before = order_queries(fake, keys)
        fake.trade("AAPL", "99")  # the exchange fills it; only the stream says so
        filled = f.reports.get(timeout=10)
        assert order_queries(fake, keys) == before  # no order was looked up to learn it
    finally:
        f.finish()
    assert (accepted.client_order_id, accepted.status) == ("tw-dip", OrderStatus.ACCEPTED)
    assert filled.status is OrderStatus.FILLED and filled.filled_qty == 10
    assert filled == broker.lookup("ref", "tw-dip")  # the same report, the same fill ids
    assert [fl.price for fl in filled.fills] == [D(99)]
    assert f.states.get(timeout=10) is False
    wait_until(lambda: fake.listening(keys.account) == 0, "the stream is closed")


def test_a_cancel_and_an_expiry_come_as_lookup_reports_them(
        fake: FakeExchange, account: tuple[FakeKeys, dict[str, dict[str, Any]]]) -> None:
    _, creds = account
    broker = CcxtBroker("binance", creds.__getitem__, stream_url=fake.ws_url, **FAST)
    f = follow(broker)
    try:
        assert f.states.get(timeout=10) is True
        fake.trade("AAPL", "105")
        broker.submit(limit_buy("tw-cancel"))
        assert f.reports.get(timeout=10).status is OrderStatus.ACCEPTED
        broker.cancel("ref", "tw-cancel")
        canceled = f.reports.get(timeout=10)
        ioc = OrderRequest(account_ref="ref", client_order_id="tw-ioc", symbol="AAPL",
                           side=Side.BUY, qty=D(1), order_type=OrderType.LIMIT,
                           time_in_force=TimeInForce.IOC, limit_price=D(100))
        broker.submit(ioc)
        updates = [f.reports.get(timeout=10)]
        while updates[-1].status is not OrderStatus.CANCELED:
            updates.append(f.reports.get(timeout=10))
    finally:
        f.finish()
    # Binance names the cancel request in `c` and the order in `C`: the report is the order's
    assert canceled.client_order_id == "tw-cancel" and canceled.status is OrderStatus.CANCELED
    assert canceled == broker.lookup("ref", "tw-cancel")
    assert updates[-1] == broker.lookup("ref", "tw-ioc")
    assert "ioc" in str(updates[-1].reason)


def test_a_dropped_stream_says_so_and_reconnects(
        fake: FakeExchange, account: tuple[FakeKeys, dict[str, dict[str, Any]]]) -> None:
    keys, creds = account
    broker = CcxtBroker("binance", creds.__getitem__, stream_url=fake.ws_url, **FAST)
    f = follow(broker)
    try:
        assert f.states.get(timeout=10) is True
        fake.stream_down()
        assert f.states.get(timeout=10) is False
        wait_until(lambda: fake.listening(keys.account) == 0, "the exchange dropped it")
        fake.trade("AAPL", "105")
        broker.submit(limit_buy("tw-while-down", limit="106"))  # fills at once, unheard
        fake.stream_down(False)
        assert f.states.get(timeout=15) is True  # the caller looks up what it missed now
        wait_until(lambda: fake.listening(keys.account) == 1, "it streams again")
        assert f.reports.empty()  # the exchange replays nothing
        broker.submit(limit_buy("tw-after"))
        assert f.reports.get(timeout=10).client_order_id == "tw-after"
    finally:
        fake.stream_down(False)
        f.finish()


def test_keys_the_stream_refuses_end_the_call_with_a_reason(
        fake: FakeExchange, account: tuple[FakeKeys, dict[str, dict[str, Any]]]) -> None:
    keys, creds = account
    bad = {"ref": {**creds["ref"], "secret": "0" * 64}}
    broker = CcxtBroker("binance", bad.__getitem__, stream_url=fake.ws_url, **FAST)
    with pytest.raises(Rejected) as refused:
        broker.stream_updates("ref", lambda report: None, threading.Event())
    assert refused.value.code == "BROKER_CREDENTIALS_INVALID"
    assert "0" * 64 not in str(refused.value)
    assert fake.listening(keys.account) == 0


def test_exchanges_without_watch_orders_are_polled() -> None:
    assert watches_orders("binance") and watches_orders("kraken")
    assert not watches_orders("coincheck")  # in ccxt.pro, without watchOrders
    assert not watches_orders("bitbank")  # not in ccxt.pro at all
    assert not CcxtBroker("coincheck", lambda ref: {}).streaming
    broker = CcxtBroker("binance", lambda ref: {}, watch=False)
    assert not broker.streaming
    with pytest.raises(BrokerUnavailable):
        broker.stream_updates("ref", lambda report: None, threading.Event())


# ---- through the worker ---------------------------------------------------------------------

@dataclass
class Book:
    """A tradewire account on the fake exchange, and what tradewire holds of it."""

    container: Container
    fake: FakeExchange
    keys: FakeKeys
    account_id: str
    broker: CcxtBroker

    def orders(self) -> list[Any]:
        with self.container.deps.uow(write=False) as uow:
            return list(uow.orders.list([self.account_id], Page()))

    def fills(self, order_id: str) -> list[Any]:
        with self.container.deps.uow(write=False) as uow:
            return list(uow.fills.of_order(order_id))

    def position(self) -> Decimal:
        with self.container.deps.uow(write=False) as uow:
            return uow.positions.get(self.account_id, "AAPL").qty

    def filled_events(self) -> list[Any]:
        with self.container.deps.uow(write=False) as uow:
            return [e for e in uow.audit.of_entity("order", self.account_id)
                    if e.event == "OrderFilled"]

    def order_queries(self) -> int:
        return order_queries(self.fake, self.keys)


def ccxt_book(container: Container, alice: Caller, fake: FakeExchange, *,
              watch: bool = True) -> Book:
    keys = fake.create_account("100000")
    broker = CcxtBroker("binance", CredentialSource(container.deps.uow, container.deps.sealer),
                        stream_url=fake.ws_url, watch=watch, **FAST)
    container.deps.brokers.register("ccxt:binance", broker)  # type: ignore[attr-defined]
    account = accounts.create_account(
        alice.user_id, f"binance-{uuid.uuid4().hex[:6]}", broker="ccxt:binance", cash=D(0),
        deps=container.deps, market=ALWAYS_OPEN,
        secret={"apiKey": keys.api_key, "secret": keys.secret, "base_url": fake.url})
    return Book(container, fake, keys, account.id, broker)


def buy_the_dip(client: httpx.Client, alice: Caller, book: Book) -> Any:
    """A limit buy of 10 AAPL at 100 while it trades at 105: it rests at the exchange."""
    book.fake.trade("AAPL", "105")
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": book.account_id, "quantity": 10,
        "orderType": "limit", "limitPrice": 100, "timeInForce": "gtc",
        "executeMode": "immediate"})
    assert r.status_code == 201, r.text
    (ours,) = book.orders()
    assert ours.status is OrderStatus.ACCEPTED
    return ours


@pytest.fixture
def polling_every_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker pass polls open orders (instead of every 5 s); the full pass runs at the
    first pass only."""
    monkeypatch.setattr(worker_module, "RECONCILE_EVERY_S", 0.0)
    monkeypatch.setattr(worker_module, "FULL_RECONCILE_EVERY_S", 3600.0)


@pytest.mark.usefixtures("polling_every_pass")
def test_the_worker_takes_fills_from_the_stream_not_by_polling_and_applies_them_once(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeExchange) -> None:
    book = ccxt_book(container, alice, fake)
    worker = Worker(container)
    try:
        worker.run_once()  # the first pass reconciles in full and opens the stream
        assert worker.streams.refresh() == 0  # one stream per account
        wait_until(lambda: book.account_id in worker.streams.live(), "the stream is up")
        ours = buy_the_dip(client, alice, book)
        before = book.order_queries()
        worker.run_once()  # a polling pass: the streamed account is left out
        fake.trade("AAPL", "99")  # the exchange fills it
        wait_until(lambda: book.orders()[0].status is OrderStatus.FILLED,
                   "the fill arrives through the stream")
        worker.run_once()
        assert book.order_queries() == before  # nothing was polled: the stream told it
        # The poll's report of the same order (what reconciliation would record) adds nothing.
        record_reports([(ours.client_order_id, book.broker.lookup(book.account_id,
                                                                   ours.client_order_id))],
                       container.deps)
    finally:
        worker.stop()
    (theirs,) = fake.orders(book.keys.account)
    assert theirs["status"] == "FILLED"
    (fill,) = book.fills(ours.id)
    assert (fill.qty, fill.price) == (D(10), D(99))
    assert book.position() == D(10)
    assert len(book.filled_events()) == 1
    wait_until(lambda: fake.listening(book.keys.account) == 0, "the stream is closed")


def test_a_fill_made_while_the_stream_was_down_is_caught_up_once_on_reconnecting(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeExchange) -> None:
    book = ccxt_book(container, alice, fake)
    worker = Worker(container)  # its loop does not run: no polling, only the stream
    try:
        assert worker.streams.refresh() == 1
        wait_until(lambda: book.account_id in worker.streams.live(), "the stream is up")
        ours = buy_the_dip(client, alice, book)
        fake.stream_down()
        wait_until(lambda: book.account_id not in worker.streams.live(), "the drop is noticed")
        wait_until(lambda: fake.listening(book.keys.account) == 0, "the stream is gone")
        fake.trade("AAPL", "99")  # filled at the exchange while no stream listens
        assert fake.orders(book.keys.account)[0]["status"] == "FILLED"
        assert book.orders()[0].status is OrderStatus.ACCEPTED  # nobody told tradewire
        fake.stream_down(False)
        wait_until(lambda: book.orders()[0].status is OrderStatus.FILLED,
                   "the reconnected stream's catch-up finds the fill")
        wait_until(lambda: book.account_id in worker.streams.live(), "the stream is up again")
        fake.trade("AAPL", "98")  # nothing more to fill; the stream stays quiet
    finally:
        fake.stream_down(False)
        worker.stop()
    (fill,) = book.fills(ours.id)
    assert (fill.qty, fill.price) == (D(10), D(99))
    assert book.position() == D(10)
    assert len(book.filled_events()) == 1
    wait_until(lambda: fake.listening(book.keys.account) == 0, "the stream is closed")


@pytest.mark.usefixtures("polling_every_pass")
def test_an_account_whose_exchange_has_no_stream_gets_its_fills_by_polling(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeExchange) -> None:
    book = ccxt_book(container, alice, fake, watch=False)
    worker = Worker(container)
    try:
        worker.run_once()
        assert worker.streams.refresh() == 0 and not worker.streams.live()
        ours = buy_the_dip(client, alice, book)
        fake.trade("AAPL", "99")
        before = book.order_queries()
        worker.run_once()  # the poll looks the order up and finds it filled
        assert book.order_queries() > before
        assert book.orders()[0].status is OrderStatus.FILLED
        worker.run_once()
    finally:
        worker.stop()
    assert fake.listening(book.keys.account) == 0
    (fill,) = book.fills(ours.id)
    assert (fill.qty, fill.price) == (D(10), D(99))
    assert book.position() == D(10)
    assert len(book.filled_events()) == 1


def test_an_update_whose_fills_cannot_be_read_restarts_the_stream_and_is_caught_up_once(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeExchange) -> None:
    book = ccxt_book(container, alice, fake)
    worker = Worker(container)  # no polling: the stream and its catch-up only
    try:
        assert worker.streams.refresh() == 1
        wait_until(lambda: book.account_id in worker.streams.live(), "the stream is up")
        ours = buy_the_dip(client, alice, book)
        fake.fault("error_before", method="GET", path="/api/v3/myTrades")
        fake.trade("AAPL", "99")  # streamed at once; reading its trades fails once
        wait_until(lambda: book.orders()[0].status is OrderStatus.FILLED,
                   "the restarted stream's catch-up records the fill")
        assert fake.faults() == []  # the failure did happen
        wait_until(lambda: book.account_id in worker.streams.live(), "the stream is up again")
    finally:
        worker.stop()
    (fill,) = book.fills(ours.id)
    assert (fill.qty, fill.price) == (D(10), D(99))
    assert book.position() == D(10)
    assert len(book.filled_events()) == 1
