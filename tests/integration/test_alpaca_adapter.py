"""The Alpaca adapter through alpaca-py against the fake Alpaca server: lost answers never make
a second order, Alpaca's refusals become rejections with reasons, fills are reported the same
way every time, keys never leak, and bars come back closed and oldest first."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fakes.alpaca import FakeAlpaca, FakeKeys, shared_fake_alpaca
from tests.support import Caller
from tradewire.adapters.brokers.alpaca import AlpacaBroker, stream_url
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.market_data.alpaca import AlpacaBars
from tradewire.bootstrap import Container
from tradewire.domain.errors import Rejected
from tradewire.domain.orders import OrderStatus
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.entrypoints.worker import Worker
from tradewire.services import accounts
from tradewire.services.credentials import CredentialSource
from tradewire.services.ports import BrokerOrder, BrokerUnavailable, OrderRequest, Page
from tradewire.services.submit import reconcile_open_orders, submit_claimable

D = Decimal
REF = "acct-alpaca"
TIMEOUT = 0.5  # the adapter's request timeout here; a "timeout" fault holds its answer longer
FAST = {"timeout": TIMEOUT, "lookup_delays": (0.02, 0.05, 0.1), "rate_limit_delays": (0.02, 0.02),
        "cancel_delays": (0.02,)}


@dataclass
class Desk:
    """One account at the fake, in a market of its own, and the adapter speaking for it."""

    fake: FakeAlpaca
    keys: FakeKeys
    market: str
    broker: AlpacaBroker

    def trade(self, symbol: str, price: str, size: str | None = None) -> None:
        self.fake.trade(symbol, price, market=self.market, size=size)

    def fault(self, kind: str, times: int = 1, **options: Any) -> None:
        self.fake.fault(kind, times, account=self.keys, **options)

    def orders(self) -> list[dict[str, Any]]:
        return self.fake.orders(self.keys)

    def sent(self) -> list[dict[str, Any]]:
        """Every POST /v2/orders the fake received for the account."""
        return self.fake.requests(self.keys, "submit")


def new_desk(fake: FakeAlpaca, cash: str = "100000", *, secret: str | None = None) -> Desk:
    market = f"it-{uuid.uuid4().hex[:12]}"
    keys = fake.create_account(cash, market=market)
    creds = {REF: {"key_id": keys.key_id, "secret_key": secret or keys.secret_key, "paper": True,
                   "base_url": fake.url}}
    return Desk(fake, keys, market, AlpacaBroker(creds.__getitem__, **FAST))


@pytest.fixture
def fake() -> FakeAlpaca:
    return shared_fake_alpaca()


@pytest.fixture
def desk(fake: FakeAlpaca) -> Desk:
    return new_desk(fake)


def order(coid: str = "c-1", side: Side = Side.BUY, qty: str = "10",
          order_type: OrderType = OrderType.MARKET, *, symbol: str = "AAPL",
          tif: TimeInForce = TimeInForce.DAY, limit: str | None = None, stop: str | None = None,
          **extra: Any) -> OrderRequest:
    return OrderRequest(account_ref=REF, client_order_id=coid, symbol=symbol, side=side,
                        qty=D(qty), order_type=order_type, time_in_force=tif,
                        limit_price=D(limit) if limit else None,
                        stop_price=D(stop) if stop else None, **extra)


def assert_the_one_order(desk: Desk, report: BrokerOrder) -> None:
    truth = desk.orders()
    assert len(truth) == 1, truth
    assert report.broker_order_id == truth[0]["id"]
    assert report.client_order_id == truth[0]["client_order_id"]


# ---- lost answers: zero duplicates, a definite answer --------------------------------------------

@pytest.mark.parametrize(("kind", "status"), [
    pytest.param("error_after", 500, id="500-after-accepting"),
    pytest.param("error_after", 502, id="502-after-accepting"),
    pytest.param("error_after", 504, id="504-after-accepting"),
    pytest.param("timeout_after", None, id="timeout-after-accepting"),
    pytest.param("drop_after", None, id="dropped-connection-after-accepting"),
])
def test_an_order_accepted_before_the_answer_was_lost_is_found_and_never_sent_again(
        desk: Desk, kind: str, status: int | None) -> None:
    desk.trade("AAPL", "100")
    desk.fault(kind, status=status, hold=TIMEOUT * 3)
    report = desk.broker.submit(order("c-1"))
    assert report.status is OrderStatus.FILLED and report.filled_qty == D(10)
    assert_the_one_order(desk, report)
    assert len(desk.sent()) == 1  # alpaca-py's own resend (of a 504) is off


def test_a_silent_alpaca_is_given_up_on_after_the_timeout(desk: Desk) -> None:
    desk.fault("timeout_after", hold=30)
    desk.broker.submit(order("c-1"))
    (sent,) = desk.sent()
    assert sent["client_gave_up"] is True  # alpaca-py alone would have waited the 30 seconds


def test_a_5xx_before_accepting_is_unknown_and_sending_again_makes_one_order(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("error_before", status=503)
    with pytest.raises(BrokerUnavailable):
        desk.broker.submit(order("c-1"))
    assert desk.orders() == []
    assert desk.broker.lookup(REF, "c-1") is None
    report = desk.broker.submit(order("c-1"))  # the sweep sends it again once a lookup found none
    assert report.status is OrderStatus.FILLED
    assert_the_one_order(desk, report)


def test_lookups_that_lag_behind_the_accept_are_waited_out(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("error_after")
    desk.fault("lag", times=2)
    report = desk.broker.submit(order("c-1"))
    assert report.status is OrderStatus.FILLED
    assert_the_one_order(desk, report)
    assert [r["status"] for r in desk.fake.requests(desk.keys, "lookup")] == [404, 404, 200]


def test_an_order_hidden_longer_than_the_lookups_is_unavailable_then_found_not_resent(
        desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("timeout_after", hold=TIMEOUT * 3)
    desk.fault("lag", times=100)
    with pytest.raises(BrokerUnavailable, match="look it up"):
        desk.broker.submit(order("c-1"))
    assert len(desk.orders()) == 1  # Alpaca has it; the adapter could not see it yet
    desk.fake.clear_faults()  # the broker catches up
    found = desk.broker.lookup(REF, "c-1")
    assert found is not None and found.status is OrderStatus.FILLED
    again = desk.broker.submit(order("c-1"))  # a caller that sends it again anyway
    assert again == found
    assert_the_one_order(desk, again)


def test_a_lookup_answered_with_a_5xx_is_unavailable_not_absent(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.broker.submit(order("c-1"))
    desk.fault("error_before", route="lookup")
    with pytest.raises(BrokerUnavailable):
        desk.broker.lookup(REF, "c-1")
    assert desk.broker.lookup(REF, "c-1") is not None


def test_a_rate_limited_submit_is_retried_and_makes_one_order(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("rate_limit", times=2)
    report = desk.broker.submit(order("c-1"))
    assert report.status is OrderStatus.FILLED
    assert_the_one_order(desk, report)
    assert [r["status"] for r in desk.sent()] == [429, 429, 200]


def test_a_rate_limit_that_does_not_lift_is_unavailable_and_makes_no_order(desk: Desk) -> None:
    desk.fault("rate_limit", times=100)
    with pytest.raises(BrokerUnavailable, match="429"):
        desk.broker.submit(order("c-1"))
    assert desk.orders() == []


def test_a_duplicate_id_refusal_returns_the_order_alpaca_already_has(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("duplicate")
    report = desk.broker.submit(order("c-1"))
    assert report.status is OrderStatus.FILLED and report.reason is None
    assert_the_one_order(desk, report)


# ---- what is sent -------------------------------------------------------------------------------

@pytest.mark.parametrize(("request_", "expected"), [
    pytest.param(order("lim", qty="1.5", order_type=OrderType.LIMIT, tif=TimeInForce.GTC,
                       limit="100.25"),
                 {"type": "limit", "time_in_force": "gtc", "qty": "1.5", "limit_price": "100.25",
                  "stop_price": None, "side": "buy", "extended_hours": False}, id="limit-gtc"),
    pytest.param(order("stp", qty="2", order_type=OrderType.STOP, stop="105"),
                 {"type": "stop", "time_in_force": "day", "stop_price": "105",
                  "limit_price": None}, id="stop-day"),
    pytest.param(order("sl", order_type=OrderType.STOP_LIMIT, tif=TimeInForce.GTC, stop="105",
                       limit="106.5"),
                 {"type": "stop_limit", "stop_price": "105", "limit_price": "106.5"},
                 id="stop-limit"),
    pytest.param(order("ext", order_type=OrderType.LIMIT, limit="99", extended_hours=True),
                 {"type": "limit", "time_in_force": "day", "extended_hours": True},
                 id="extended-hours"),
    pytest.param(order("cls", symbol="MSFT", tif=TimeInForce.CLS), {"time_in_force": "cls"},
                 id="close-auction"),
    pytest.param(order("opg", symbol="MSFT", tif=TimeInForce.OPG), {"time_in_force": "opg"},
                 id="opening-auction"),
    pytest.param(order("btc", qty="0.5", symbol="BTC/USD", tif=TimeInForce.GTC),
                 {"symbol": "BTC/USD", "asset_class": "crypto", "qty": "0.5"}, id="crypto"),
])
def test_an_order_reaches_alpaca_as_it_was_asked(desk: Desk, request_: OrderRequest,
                                                 expected: dict[str, Any]) -> None:
    report = desk.broker.submit(request_)
    assert report.status is OrderStatus.ACCEPTED, report
    (truth,) = desk.orders()
    assert {k: truth[k] for k in expected} == expected
    assert truth["client_order_id"] == request_.client_order_id


def test_quantities_and_prices_travel_as_exact_decimal_text(desk: Desk) -> None:
    desk.broker.submit(order(qty="0.123456789", order_type=OrderType.LIMIT,
                             limit="1234567.123456789"))
    (sent,) = desk.sent()
    assert sent["body"]["qty"] == "0.123456789"  # text, never a float
    assert sent["body"]["limit_price"] == "1234567.123456789"


def test_crypto_positions_come_back_under_the_symbol_they_were_bought_as(desk: Desk) -> None:
    desk.trade("BTC/USD", "60000")
    report = desk.broker.submit(order(qty="0.5", symbol="BTC/USD", tif=TimeInForce.GTC))
    assert report.status is OrderStatus.FILLED and report.symbol == "BTC/USD"
    assert desk.broker.positions(REF) == {"BTC/USD": D("0.5")}


@pytest.mark.parametrize(("request_", "reason"), [
    pytest.param(order(tif=TimeInForce.GTD, expires_at=datetime(2030, 1, 1, tzinfo=UTC)), "gtd",
                 id="gtd"),
    pytest.param(order(oco_group="group-1"), "one-cancels-other", id="oco-group"),
    pytest.param(order(coid="x" * 49), "48", id="long-client-order-id"),
    pytest.param(order(order_type=OrderType.LIMIT), "limit_price", id="limit-without-price"),
])
def test_what_alpaca_cannot_take_is_refused_before_anything_is_sent(
        desk: Desk, request_: OrderRequest, reason: str) -> None:
    report = desk.broker.submit(request_)
    assert report.status is OrderStatus.REJECTED and reason in (report.reason or "")
    assert desk.sent() == []


def test_the_capabilities_say_what_alpaca_takes(desk: Desk) -> None:
    caps = desk.broker.capabilities
    assert caps.supports(OrderType.STOP_LIMIT, TimeInForce.CLS)
    assert not caps.supports(OrderType.LIMIT, TimeInForce.GTD)
    assert caps.netting and caps.shorting and caps.client_order_id_max == 48


# ---- what comes back ----------------------------------------------------------------------------

def test_partial_fills_are_reported_one_by_one_and_the_same_every_time(desk: Desk) -> None:
    desk.trade("AAPL", "105")
    desk.broker.submit(order("dip", order_type=OrderType.LIMIT, tif=TimeInForce.GTC, limit="100"))
    desk.trade("AAPL", "99", size="3")
    part = desk.broker.lookup(REF, "dip")
    assert part is not None and part.status is OrderStatus.PARTIALLY_FILLED
    assert [(f.qty, f.price) for f in part.fills] == [(D(3), D(99))]
    assert desk.broker.open_orders(REF) == [part]
    desk.trade("AAPL", "98", size="100")
    first, second = desk.broker.lookup(REF, "dip"), desk.broker.lookup(REF, "dip")
    assert first is not None and first == second
    assert first.status is OrderStatus.FILLED and first.filled_qty == D(10)
    assert [(f.qty, f.price) for f in first.fills] == [(D(3), D(99)), (D(7), D(98))]
    assert first.fills[0] == part.fills[0]  # the same fill id, qty, price and time as before
    assert len({f.fill_id for f in first.fills}) == 2


def test_fills_the_activity_feed_has_not_shown_yet_keep_the_order_open(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.fault("fills_lag")
    early = desk.broker.submit(order("c-1"))
    assert early.status is OrderStatus.ACCEPTED and early.fills == () and early.filled_qty == 0
    later = desk.broker.lookup(REF, "c-1")
    assert later is not None and later.status is OrderStatus.FILLED and len(later.fills) == 1


def test_canceling_a_partly_filled_order_keeps_its_fills(desk: Desk) -> None:
    desk.trade("AAPL", "105")
    desk.broker.submit(order("dip", order_type=OrderType.LIMIT, tif=TimeInForce.GTC, limit="100"))
    desk.trade("AAPL", "99", size="4")
    canceled = desk.broker.cancel(REF, "dip")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED and canceled.reason
    assert canceled.filled_qty == D(4) and [f.qty for f in canceled.fills] == [D(4)]
    assert desk.broker.positions(REF) == {"AAPL": D(4)}


def test_a_day_order_still_open_at_the_close_expires_with_a_reason(desk: Desk) -> None:
    desk.trade("AAPL", "105")
    desk.broker.submit(order("day", order_type=OrderType.LIMIT, limit="100"))
    desk.broker.submit(order("gtc", order_type=OrderType.LIMIT, tif=TimeInForce.GTC, limit="100"))
    desk.fake.close_session(desk.market)
    day, gtc = desk.broker.lookup(REF, "day"), desk.broker.lookup(REF, "gtc")
    assert day is not None and day.status is OrderStatus.EXPIRED and "expired" in (day.reason or "")
    assert gtc is not None and gtc.status is OrderStatus.ACCEPTED


def place_by_hand(desk: Desk, *client_order_ids: str) -> None:
    """Orders typed in at Alpaca itself, not through tradewire."""
    headers = {"APCA-API-KEY-ID": desk.keys.key_id, "APCA-API-SECRET-KEY": desk.keys.secret_key}
    with httpx.Client(base_url=desk.fake.url, headers=headers) as http:
        for coid in client_order_ids:
            http.post("/v2/orders", json={
                "symbol": "TSLA", "qty": "3", "side": "buy", "type": "limit", "limit_price": "10",
                "time_in_force": "gtc", "client_order_id": coid}).raise_for_status()


def test_open_orders_include_ones_tradewire_never_sent(desk: Desk) -> None:
    place_by_hand(desk, "typed-in-by-hand")
    (stranger,) = desk.broker.open_orders(REF)
    assert (stranger.client_order_id, stranger.symbol, stranger.side, stranger.qty) == (
        "typed-in-by-hand", "TSLA", Side.BUY, D(3))


def test_open_orders_are_read_page_by_page_past_alpacas_500(desk: Desk) -> None:
    coids = [f"hand-{i:03d}" for i in range(501)]
    place_by_hand(desk, *coids)
    assert sorted(o.client_order_id for o in desk.broker.open_orders(REF)) == coids


# ---- refusals -----------------------------------------------------------------------------------

def test_insufficient_buying_power_is_a_rejection_with_alpacas_reason(fake: FakeAlpaca) -> None:
    desk = new_desk(fake, "1000")
    desk.trade("AAPL", "190")
    report = desk.broker.submit(order("big"))
    assert report.status is OrderStatus.REJECTED and report.reason == "insufficient buying power"
    assert report.broker_order_id == "" and desk.orders() == []


def test_a_flip_from_long_to_short_is_refused_and_the_long_stays(desk: Desk) -> None:
    desk.trade("AAPL", "100")
    desk.broker.submit(order("long", qty="5"))
    report = desk.broker.submit(order("flip", Side.SELL, "10"))
    assert report.status is OrderStatus.REJECTED
    assert "insufficient qty available" in (report.reason or "")
    assert desk.broker.positions(REF) == {"AAPL": D(5)}


def test_an_order_alpaca_itself_refuses_as_invalid_is_a_rejection(desk: Desk) -> None:
    report = desk.broker.submit(order(extended_hours=True))  # a market order: day limits only
    assert report.status is OrderStatus.REJECTED and "extended hours" in (report.reason or "")
    assert [r["status"] for r in desk.sent()] == [422]


def test_refused_keys_reject_orders_and_fail_the_account_check(fake: FakeAlpaca) -> None:
    desk = new_desk(fake, secret="not-the-secret")
    report = desk.broker.submit(order())
    assert report.status is OrderStatus.REJECTED and "API keys" in (report.reason or "")
    with pytest.raises(Rejected, match="API keys"):
        desk.broker.open_account(REF, D(1))
    with pytest.raises(BrokerUnavailable, match="API keys"):  # unknown, not absent
        desk.broker.lookup(REF, "c-1")
    assert desk.orders() == []


def test_keys_refused_once_are_read_again_on_the_next_call(fake: FakeAlpaca) -> None:
    keys = fake.create_account("100000", market=f"it-{uuid.uuid4().hex[:12]}")
    creds = {REF: {"key_id": keys.key_id, "secret_key": "an-old-secret", "base_url": fake.url}}
    broker = AlpacaBroker(creds.__getitem__, **FAST)
    assert broker.submit(order("c-1")).status is OrderStatus.REJECTED
    creds[REF] = {**creds[REF], "secret_key": keys.secret_key}  # the user rotated the keys
    assert broker.submit(order("c-2")).status is OrderStatus.ACCEPTED
    assert [o["client_order_id"] for o in fake.orders(keys)] == ["c-2"]


def test_no_secret_reaches_a_log_line_an_error_or_a_repr(
        fake: FakeAlpaca, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + uuid.uuid4().hex
    good, bad = new_desk(fake), new_desk(fake, secret=wrong)
    secrets = [good.keys.secret_key, bad.keys.secret_key, wrong]
    texts = [repr(good.broker), str(bad.broker.submit(order()).reason)]
    with pytest.raises(Rejected) as refused:
        bad.broker.account(REF)
    good.fault("timeout_after", hold=TIMEOUT * 3)
    good.fault("lag", times=100)
    with pytest.raises(BrokerUnavailable) as unknown:
        good.broker.submit(order("c-1"))
    good.fake.clear_faults()
    good.fault("error_before", route="account", status=500)
    with pytest.raises(BrokerUnavailable) as down:
        good.broker.account(REF)

    def leaky(ref: str) -> dict[str, Any]:
        raise KeyError(f"no row; the secret was {good.keys.secret_key}")

    texts.append(str(AlpacaBroker(leaky, **FAST).submit(order()).reason))
    texts += [str(refused.value), str(unknown.value), str(down.value), repr(good.keys), caplog.text]
    assert "unconfirmed" in caplog.text  # the log did speak
    for secret in secrets:
        assert not [t for t in texts if secret in t]


# ---- the trade-updates stream ------------------------------------------------------------------

def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.02)


def test_trade_updates_come_as_the_reports_lookup_gives(desk: Desk) -> None:
    creds = {REF: {"key_id": desk.keys.key_id, "secret_key": desk.keys.secret_key,
                   "base_url": desk.fake.url}}
    broker = AlpacaBroker(creds.__getitem__, stream_url=desk.fake.stream_url, **FAST)
    reports: queue.Queue[BrokerOrder] = queue.Queue()
    stop = threading.Event()
    worker = threading.Thread(target=broker.stream_updates, args=(REF, reports.put, stop))
    worker.start()
    try:
        wait_until(lambda: desk.fake.listening(desk.keys) == 1, "the stream listens")
        desk.trade("AAPL", "105")
        broker.submit(order("dip", order_type=OrderType.LIMIT, tif=TimeInForce.GTC, limit="100"))
        accepted = reports.get(timeout=10)
        desk.trade("AAPL", "99", size="4")
        partly = reports.get(timeout=10)
        desk.trade("AAPL", "98")
        filled = reports.get(timeout=10)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()  # stopping the stream ends the call
    assert [r.status for r in (accepted, partly, filled)] == [
        OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    assert filled == broker.lookup(REF, "dip")
    assert filled.fills[0] == partly.fills[0]
    wait_until(lambda: desk.fake.listening(desk.keys) == 0, "the stream is closed")


def test_the_stream_sits_beside_the_rest_endpoint() -> None:
    assert stream_url({"base_url": "https://paper-api.alpaca.markets/"}) == (
        "wss://paper-api.alpaca.markets/stream")
    assert stream_url({"base_url": "http://127.0.0.1:8123"}) == "ws://127.0.0.1:8123/stream"
    assert stream_url({}) is None  # alpaca-py's own paper or live stream


# ---- bars ---------------------------------------------------------------------------------------

MINUTE_BARS_FROM = datetime(2026, 2, 6, 14, 30, tzinfo=UTC)


def alpaca_bars(start: datetime, step: timedelta, n: int, base: float = 100) -> list[dict[str, Any]]:
    return [{"t": (start + i * step).isoformat().replace("+00:00", "Z"), "o": base + i,
             "h": base + i + 1, "l": base + i - 1, "c": base + i + 0.5, "v": 1000 + i,
             "n": 10, "vw": base + i} for i in range(n)]


@dataclass
class MinuteBars:
    source: AlpacaBars
    symbol: str


@pytest.fixture
def minute_bars(fake: FakeAlpaca, desk: Desk) -> MinuteBars:
    symbol = desk.market.upper()  # a symbol of this test's own
    fake.load_bars(symbol, "1Min", alpaca_bars(MINUTE_BARS_FROM, timedelta(minutes=1), 10))
    clock = ManualClock(MINUTE_BARS_FROM + timedelta(minutes=9, seconds=30))  # the 10th is forming
    source = AlpacaBars(desk.keys.key_id, desk.keys.secret_key, fake.url, clock=clock, timeout=2)
    return MinuteBars(source, symbol)


def test_bars_are_the_newest_closed_ones_oldest_first(minute_bars: MinuteBars) -> None:
    rows = minute_bars.source.bars(minute_bars.symbol, "1m", 5)
    start = int(MINUTE_BARS_FROM.timestamp())
    assert [b.ts for b in rows] == [start + 60 * i for i in range(4, 9)]
    assert (rows[0].open, rows[0].high, rows[0].low, rows[0].close, rows[0].volume) == (
        104.0, 105.0, 103.0, 104.5, 1004.0)


def test_bars_before_an_end_stop_before_it(minute_bars: MinuteBars) -> None:
    end = MINUTE_BARS_FROM + timedelta(minutes=6)
    rows = minute_bars.source.bars(minute_bars.symbol, "1m", 3, end=end)
    start = int(MINUTE_BARS_FROM.timestamp())
    assert [b.ts for b in rows] == [start + 60 * i for i in (3, 4, 5)]


@pytest.mark.parametrize(("ours", "theirs", "step"), [
    ("1D", "1Day", timedelta(days=1)), ("4h", "4Hour", timedelta(hours=4)),
    ("15m", "15Min", timedelta(minutes=15)),
])
def test_each_timeframe_asks_alpaca_for_its_own_spelling(fake: FakeAlpaca, desk: Desk, ours: str,
                                                         theirs: str, step: timedelta) -> None:
    symbol = desk.market.upper()
    fake.load_bars(symbol, theirs, alpaca_bars(MINUTE_BARS_FROM, step, 4))
    clock = ManualClock(MINUTE_BARS_FROM + 10 * step)
    rows = AlpacaBars(desk.keys.key_id, desk.keys.secret_key, fake.url, clock=clock).bars(
        symbol, ours, 10)
    assert [b.ts for b in rows] == [int((MINUTE_BARS_FROM + i * step).timestamp()) for i in range(4)]


def test_crypto_bars_need_no_keys_and_stock_bars_do(fake: FakeAlpaca) -> None:
    symbol = f"T{uuid.uuid4().hex[:6].upper()}/USD"
    fake.load_bars(symbol, "1Hour", alpaca_bars(MINUTE_BARS_FROM, timedelta(hours=1), 3, 60000))
    source = AlpacaBars(base_url=fake.url, clock=ManualClock(MINUTE_BARS_FROM + timedelta(days=1)))
    assert [b.close for b in source.bars(symbol, "1h", 5)] == [60000.5, 60001.5, 60002.5]
    with pytest.raises(Rejected, match="API key"):
        source.bars("AAPL", "1h", 5)
    with pytest.raises(Rejected, match="timeframe"):
        source.bars(symbol, "2h", 5)


# ---- through tradewire's own submit path ---------------------------------------------------------

def alpaca_account(container: Container, alice: Caller, fake: FakeAlpaca) -> tuple[str, Desk]:
    """An account of alice's at the fake, its keys sealed in tradewire's credential store."""
    desk = new_desk(fake)
    broker = AlpacaBroker(CredentialSource(container.deps.uow, container.deps.sealer), **FAST)
    container.deps.brokers.register("alpaca", broker)
    desk.broker = broker
    account = accounts.create_account(
        alice.user_id, "alpaca", broker="alpaca", cash=D(100000), deps=container.deps,
        secret={"key_id": desk.keys.key_id, "secret_key": desk.keys.secret_key, "paper": True,
                "base_url": fake.url})
    return account.id, desk


def send_signal(client: httpx.Client, alice: Caller, account_id: str) -> dict[str, Any]:
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": account_id, "quantity": 10,
        "executeMode": "immediate"})
    assert r.status_code == 201, r.text
    return dict(r.json()["signal"])


def tradewire_orders(container: Container, account_id: str) -> list[Any]:
    with container.deps.uow(write=False) as uow:
        return list(uow.orders.list([account_id], Page()))


@pytest.mark.parametrize(("kind", "status"), [
    pytest.param("error_after", 502, id="5xx-after-accepting"),
    pytest.param("timeout_after", None, id="timeout-after-accepting"),
])
def test_a_signal_makes_one_order_at_alpaca_though_the_answer_was_lost(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeAlpaca,
        kind: str, status: int | None) -> None:
    account_id, desk = alpaca_account(container, alice, fake)
    desk.trade("AAPL", "190")
    desk.fault(kind, status=status, hold=TIMEOUT * 3)
    signal = send_signal(client, alice, account_id)
    assert signal["status"] == "executed"
    (ours,) = tradewire_orders(container, account_id)
    (theirs,) = desk.orders()
    assert (ours.client_order_id, ours.broker_order_id) == (theirs["client_order_id"], theirs["id"])
    assert ours.status is OrderStatus.FILLED and ours.filled_qty == D(10)
    assert ours.avg_fill_price == D(190)


def test_an_order_alpaca_hides_for_a_while_is_found_by_the_sweep_not_sent_again(
        client: httpx.Client, container: Container, clock: ManualClock, alice: Caller,
        fake: FakeAlpaca) -> None:
    account_id, desk = alpaca_account(container, alice, fake)
    desk.trade("AAPL", "190")
    desk.fault("timeout_after", hold=TIMEOUT * 3)
    desk.fault("lag", times=1000)
    send_signal(client, alice, account_id)
    (ours,) = tradewire_orders(container, account_id)
    assert ours.status is OrderStatus.SUBMITTING  # unknown: neither sent again nor given up
    desk.fake.clear_faults()  # Alpaca catches up
    clock.advance(container.deps.lease + timedelta(seconds=1))
    submit_claimable(container.deps)
    (ours,) = tradewire_orders(container, account_id)
    assert ours.status is OrderStatus.FILLED
    (theirs,) = desk.orders()
    assert ours.broker_order_id == theirs["id"]
    assert len(desk.sent()) == 1


def test_the_worker_follows_alpacas_stream_and_records_fills_without_polling(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeAlpaca) -> None:
    desk = new_desk(fake)
    broker = AlpacaBroker(CredentialSource(container.deps.uow, container.deps.sealer),
                          stream_url=fake.stream_url, **FAST)
    container.deps.brokers.register("alpaca", broker)
    account = accounts.create_account(
        alice.user_id, "alpaca", broker="alpaca", cash=D(100000), deps=container.deps,
        secret={"key_id": desk.keys.key_id, "secret_key": desk.keys.secret_key, "paper": True,
                "base_url": fake.url})
    worker = Worker(container)
    try:
        assert worker.streams.refresh() == 1
        assert worker.streams.refresh() == 0  # one stream per account
        wait_until(lambda: fake.listening(desk.keys) == 1, "the worker's stream listens")
        desk.trade("AAPL", "105")
        r = client.post("/api/v1/signals", headers=alice.headers, json={
            "symbol": "AAPL", "action": "openLong", "accountId": account.id, "quantity": 10,
            "orderType": "limit", "limitPrice": 100, "timeInForce": "gtc",
            "executeMode": "immediate"})
        assert r.status_code == 201, r.text
        (ours,) = tradewire_orders(container, account.id)
        assert ours.status is OrderStatus.ACCEPTED
        desk.trade("AAPL", "99")  # Alpaca fills it; only the stream tells tradewire
        wait_until(lambda: tradewire_orders(container, account.id)[0].status
                   is OrderStatus.FILLED, "the fill arrives through the stream")
        with container.deps.uow(write=False) as uow:
            assert uow.positions.get(account.id, "AAPL").qty == D(10)
    finally:
        worker.stop()
    wait_until(lambda: fake.listening(desk.keys) == 0, "the stream is closed")


def test_a_signals_stop_rests_at_alpaca_and_its_fill_closes_the_plan(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeAlpaca) -> None:
    """Alpaca declares native stops but no one-cancels-other between separate orders: the
    stop rests there, the target is watched by tradewire."""
    account_id, desk = alpaca_account(container, alice, fake)
    desk.trade("AAPL", "190")
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": account_id, "quantity": 10,
        "executeMode": "immediate", "stopLoss": {"type": "stop", "stopPrice": 180},
        "takeProfit": {"limitPrice": 200}})
    assert r.status_code == 201, r.text
    sid = r.json()["signal"]["id"]
    ours = {o.exit_leg: o for o in tradewire_orders(container, account_id)}
    assert set(ours) == {None, "stop"}  # the entry and the stop; no resting target
    stop = ours["stop"]
    (theirs,) = [o for o in desk.orders() if o["client_order_id"] == stop.client_order_id]
    assert (theirs["type"], theirs["side"], theirs["qty"], theirs["stop_price"],
            theirs["time_in_force"], theirs["status"]) == ("stop", "sell", "10", "180", "gtc", "new")
    assert len(container.deps.exits) == 1  # the target (200) is armed here, the stop is not
    desk.trade("AAPL", "179")  # Alpaca's stop fills; tradewire hears it by polling
    assert reconcile_open_orders(container.deps) == 1
    stop = {o.exit_leg: o for o in tradewire_orders(container, account_id)}["stop"]
    assert (stop.status, stop.filled_qty, stop.avg_fill_price) == (OrderStatus.FILLED, D(10),
                                                                   D(179))
    with container.deps.uow(write=False) as uow:
        assert uow.exit_plans.get(sid).active is False
        assert uow.positions.get(account_id, "AAPL").qty == 0
    assert len(container.deps.exits) == 0  # the emulated target is disarmed with the plan
    assert len(desk.sent()) == 2  # the entry and the stop, each once


def test_planted_keys_are_nowhere_in_the_database_files_the_logs_or_any_answer(
        client: httpx.Client, container: Container, alice: Caller, fake: FakeAlpaca,
        caplog: pytest.LogCaptureFixture) -> None:
    """The bar of the broker issue: the keys of a real account, used to trade, are found in no
    byte of the database (SQLite: the file and its WAL; PostgreSQL: every row of every table),
    no log line and no answer of the routes that show the account and its work."""
    caplog.set_level(logging.DEBUG)
    account_id, desk = alpaca_account(container, alice, fake)
    planted = (desk.keys.key_id, desk.keys.secret_key)
    desk.trade("AAPL", "190")
    signal = send_signal(client, alice, account_id)  # the adapter opens the keys to trade
    assert signal["status"] == "executed"
    answers = [client.post(f"/api/v1/accounts/{account_id}/reconcile", headers=alice.headers)]
    answers += [client.get(path, headers=alice.headers) for path in (
        "/api/v1/accounts", f"/api/v1/accounts/{account_id}",
        f"/api/v1/accounts/{account_id}/reconciliation", "/api/v1/orders",
        f"/api/v1/signals/{signal['id']}", f"/api/v1/signals/{signal['id']}/timeline")]
    assert [r.status_code for r in answers].count(200) >= 5, [r.text for r in answers]
    url = container.settings.database_url
    if url.startswith("sqlite:///"):
        db = url.removeprefix("sqlite:///")
        stored = [open(db, "rb").read()]  # noqa: SIM115 -- read while the server holds it open
        wal = f"{db}-wal"
        stored += [open(wal, "rb").read()] if os.path.exists(wal) else []  # noqa: SIM115
        assert sum(len(b) for b in stored) > 0
    else:
        with container.db.engine.connect() as conn:
            tables = conn.execute(text("SELECT tablename FROM pg_tables "
                                       "WHERE schemaname = current_schema()")).scalars().all()
            stored = [json.dumps([list(map(str, row)) for row in conn.execute(
                text(f'SELECT * FROM "{name}"')).all()]).encode() for name in tables]
        assert len(tables) > 10
    assert any(account_id.encode() in b for b in stored)  # the search sees what is stored
    logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "AAPL" in "".join(r.text for r in answers) and logs
    for secret in planted:
        assert all(secret.encode() not in b for b in stored), "a key in the database"
        assert secret not in logs, "a key in a log line"
        assert all(secret not in r.text for r in answers), "a key in an answer"
