"""The CCXT adapter against the fake Binance spot exchange, through ccxt itself: every fault
leaves exactly one order at the exchange (its ground truth) and a definite answer; orders map
to Binance's types; fills are the same on every report; refusals carry reasons; no secret
reaches a log or an error; bars come closed and oldest first."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.ccxt_exchange import FakeExchange, FakeKeys
from tests.support import Server
from tradewire.adapters.brokers.ccxt import CcxtBroker
from tradewire.adapters.brokers.registry import BrokerRegistry
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.market_data.ccxt import CcxtBars, make_exchange
from tradewire.bootstrap import Container
from tradewire.domain.errors import Rejected
from tradewire.domain.orders import OrderStatus
from tradewire.domain.sessions import ALWAYS_OPEN
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.services import accounts
from tradewire.services.credentials import CredentialSource
from tradewire.services.ports import BrokerUnavailable, OrderRequest

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
FAST = {"timeout_s": 0.5, "lookup_delays": (0.02, 0.05), "busy_delays": (0.02, 0.05),
        "rate_limit_ms": 1}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeExchange]:
    with FakeExchange() as f:
        yield f


@dataclass
class Desk:
    """A broker over the fake, and the credential book it reads."""

    fake: FakeExchange
    creds: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, FakeKeys] = field(default_factory=dict)

    def broker(self, **tuning: Any) -> CcxtBroker:
        return CcxtBroker("binance", lambda ref: self.creds[ref], **{**FAST, **tuning})

    def open(self, cash: str = "100000", commission: str = "0") -> str:
        ref = f"acct-{uuid.uuid4().hex[:8]}"
        self.keys[ref] = self.fake.create_account(cash, commission)
        self.creds[ref] = {"apiKey": self.keys[ref].api_key, "secret": self.keys[ref].secret,
                           "base_url": self.fake.url}
        return ref

    def raw(self, ref: str) -> Any:
        """A plain ccxt client of the account, for what the adapter would never do."""
        return make_exchange("binance", base_url=self.fake.url, credentials=self.creds[ref])

    def truth(self, ref: str) -> list[dict[str, Any]]:
        return self.fake.orders(self.keys[ref].account)


@pytest.fixture
def desk(fake: FakeExchange) -> Desk:
    fake.reset()
    return Desk(fake)


@pytest.fixture
def broker(desk: Desk) -> CcxtBroker:
    return desk.broker()


def order(ref: str, side: Side = BUY, qty: str = "10", kind: OrderType = MARKET, *,
          coid: str = "tw-1", symbol: str = "AAPL", tif: TimeInForce = TimeInForce.DAY,
          limit: str | None = None, stop: str | None = None, **extra: Any) -> OrderRequest:
    return OrderRequest(account_ref=ref, client_order_id=coid, symbol=symbol, side=side,
                        qty=D(qty), order_type=kind, time_in_force=tif,
                        limit_price=D(limit) if limit else None,
                        stop_price=D(stop) if stop else None, **extra)


# ---- answers lost after the exchange took the order -----------------------------------------

@pytest.mark.parametrize("fault", ["error_after", "timeout_after", "drop_after"])
def test_an_order_whose_answer_was_lost_is_found_and_never_sent_twice(
        desk: Desk, broker: CcxtBroker, fault: str) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault(fault, delay=1.0)
    first = broker.submit(order(ref))
    assert first.status is OrderStatus.FILLED and first.filled_qty == 10
    again = broker.submit(order(ref))  # the core's retry, same client order id
    assert again == first
    assert len(desk.truth(ref)) == 1


def test_a_filled_market_order_timed_out_then_retried_after_a_restart_is_still_one_order(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("timeout_after", delay=1.0)
    first = broker.submit(order(ref))
    restarted = desk.broker()  # no memory of the send: only the lookup before sending protects
    assert restarted.submit(order(ref)) == first
    assert [o["status"] for o in desk.truth(ref)] == ["FILLED"]


def test_like_binance_the_fake_takes_a_reused_id_once_its_order_is_not_open(desk: Desk) -> None:
    """Why tradewire must look first: the exchange itself would fill the same id twice."""
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    raw = desk.raw(ref)
    for _ in range(2):
        raw.create_order("AAPL/USDT", "market", "buy", "1", None, {"clientOrderId": "tw-1"})
    assert [o["status"] for o in desk.truth(ref)] == ["FILLED", "FILLED"]


def test_a_lookup_that_lags_is_unknown_at_first_then_found_and_never_sent_again(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("timeout_after", delay=1.0)
    desk.fake.fault("slow_lookups", lookups=5)  # the adapter looks 3 times per settle
    with pytest.raises(BrokerUnavailable):
        broker.submit(order(ref))
    assert len(desk.truth(ref)) == 1  # taken, though nobody could tell yet
    assert broker.lookup(ref, "tw-1") is None  # one "not found" proves nothing
    found = broker.submit(order(ref))  # the core's retry settles it by lookup, sends nothing
    assert found.status is OrderStatus.FILLED
    assert broker.lookup(ref, "tw-1") == found
    assert len(desk.truth(ref)) == 1


def test_an_order_taken_whose_fills_could_not_be_read_is_unavailable_then_found(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("error_before", method="GET", path="/api/v3/myTrades")
    with pytest.raises(BrokerUnavailable):
        broker.submit(order(ref))
    found = broker.lookup(ref, "tw-1")
    assert found is not None and found.status is OrderStatus.FILLED and len(found.fills) == 1
    assert broker.submit(order(ref)) == found and len(desk.truth(ref)) == 1


def test_a_5xx_before_accepting_is_unknown_and_not_resent_within_the_settle_window(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("error_before")
    with pytest.raises(BrokerUnavailable):
        broker.submit(order(ref))
    with pytest.raises(BrokerUnavailable, match="not sending it again"):
        broker.submit(order(ref))
    assert desk.truth(ref) == [] and broker.lookup(ref, "tw-1") is None


def test_an_order_never_seen_after_the_settle_window_is_sent_once(desk: Desk) -> None:
    broker = desk.broker(settle_window_s=0)
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("error_before")
    with pytest.raises(BrokerUnavailable):
        broker.submit(order(ref))
    assert broker.submit(order(ref)).status is OrderStatus.FILLED
    assert len(desk.truth(ref)) == 1


# ---- rate limits and duplicate refusals ---------------------------------------------------

def test_a_rate_limit_is_waited_out_and_the_order_sent_once(desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("rate_limit", times=2)
    assert broker.submit(order(ref)).status is OrderStatus.FILLED
    assert desk.fake.faults() == []  # both refusals were met before the send that worked
    assert len(desk.truth(ref)) == 1


def test_a_rate_limit_that_does_not_end_is_unavailable_with_nothing_sent(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("rate_limit", times=20)
    with pytest.raises(BrokerUnavailable, match=r"DDoSProtection|RateLimit"):
        broker.submit(order(ref))
    assert desk.truth(ref) == []


def test_a_duplicate_refusal_of_an_open_order_returns_that_order(desk: Desk,
                                                                 broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "105")
    desk.fake.fault("slow_lookups", lookups=1)  # the restarted adapter's first look misses
    first = broker.submit(order(ref, kind=LIMIT, limit="100", tif=TimeInForce.GTC))
    again = desk.broker().submit(order(ref, kind=LIMIT, limit="100", tif=TimeInForce.GTC))
    assert again.broker_order_id == first.broker_order_id
    assert again.status is OrderStatus.ACCEPTED and len(desk.truth(ref)) == 1


def test_a_duplicate_refusal_of_a_filled_order_returns_that_order(desk: Desk,
                                                                  broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("slow_lookups", lookups=1)
    first = broker.submit(order(ref))
    desk.fake.fault("duplicate")  # an exchange that keeps ids unique forever refuses it
    assert desk.broker().submit(order(ref)) == first
    assert len(desk.truth(ref)) == 1


# ---- order mapping -------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "tif", "limit", "stop", "sent"), [
    (MARKET, TimeInForce.DAY, None, None, {"type": "MARKET"}),
    (LIMIT, TimeInForce.DAY, "99.5", None,
     {"type": "LIMIT", "timeInForce": "GTC", "price": "99.50000000"}),
    (LIMIT, TimeInForce.GTC, "99.5", None, {"type": "LIMIT", "timeInForce": "GTC"}),
    (LIMIT, TimeInForce.IOC, "99.5", None, {"type": "LIMIT", "timeInForce": "IOC"}),
    (LIMIT, TimeInForce.FOK, "99.5", None, {"type": "LIMIT", "timeInForce": "FOK"}),
    (STOP, TimeInForce.GTC, None, "120", {"type": "STOP_LOSS", "stopPrice": "120.00000000"}),
    (STOP_LIMIT, TimeInForce.GTC, "121", "120",
     {"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "price": "121.00000000",
      "stopPrice": "120.00000000"}),
])
def test_each_order_type_reaches_the_exchange_as_its_binance_type(
        desk: Desk, broker: CcxtBroker, kind: OrderType, tif: TimeInForce, limit: str | None,
        stop: str | None, sent: dict[str, str]) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "110")
    report = broker.submit(order(ref, BUY, "0.25", kind, tif=tif, limit=limit, stop=stop))
    [held] = desk.truth(ref)
    assert {k: held[k] for k in sent} == sent
    assert (held["clientOrderId"], held["side"], held["origQty"]) == ("tw-1", "BUY", "0.25000000")
    assert (report.symbol, report.side, report.qty) == ("AAPL", BUY, D("0.25"))
    assert report.broker_order_id == str(held["orderId"])


def test_statuses_map_from_the_exchange(desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "110")
    assert broker.submit(order(ref, coid="m")).status is OrderStatus.FILLED
    resting = broker.submit(order(ref, kind=LIMIT, limit="100", coid="l"))
    assert resting.status is OrderStatus.ACCEPTED and resting.reason is None
    ioc = broker.submit(order(ref, kind=LIMIT, limit="100", tif=TimeInForce.IOC, coid="i"))
    assert ioc.status is OrderStatus.CANCELED and "ioc" in (ioc.reason or "")
    canceled = broker.cancel(ref, "l")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    assert [o.client_order_id for o in broker.open_orders(ref)] == []


def test_fills_are_the_same_list_on_every_report(desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    at = datetime(2026, 2, 6, 15, 0, 7, tzinfo=UTC)
    desk.fake.trade("AAPL", "190.37", at=at)
    first = broker.submit(order(ref, qty="3"))
    [fill] = first.fills
    assert fill.fill_id == "binance:AAPLUSDT:1:buy"
    assert (fill.qty, fill.price, fill.fee, fill.filled_at) == (D(3), D("190.37"), 0, at)
    reports = [broker.lookup(ref, "tw-1"), desk.broker().lookup(ref, "tw-1", symbol="AAPL"),
               broker.cancel(ref, "tw-1")]
    assert all(r is not None and r.fills == first.fills for r in reports)


def test_fees_in_the_base_asset_are_converted_at_the_fill_price(desk: Desk,
                                                                broker: CcxtBroker) -> None:
    ref = desk.open(commission="0.001")
    desk.fake.trade("AAPL", "100")
    bought = broker.submit(order(ref, BUY, "10", coid="b"))
    assert bought.fills[0].fee == D("1")  # 0.01 AAPL at 100
    assert broker.positions(ref) == {"AAPL": D("9.99")}  # a spot buyer's fee is paid in kind
    desk.fake.trade("AAPL", "110")
    sold = broker.submit(order(ref, SELL, "5", coid="s"))
    assert sold.fills[0].fee == D("0.55")  # in USDT: 0.1% of 550


# ---- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize(("request_", "says"), [
    (dict(qty="1000"), "insufficient balance"),
    (dict(kind=LIMIT, limit="150", qty="1000"), "insufficient balance"),
    (dict(side=SELL, qty="1"), "insufficient balance"),  # a spot account cannot sell short
    (dict(symbol="DOGE"), "not a spot market"),
    (dict(qty="0.0000001"), "smallest step"),
    (dict(kind=LIMIT, limit="100.005"), "not a multiple"),
    (dict(kind=STOP, stop="99", side=BUY, tif=TimeInForce.GTC), "would trigger immediately"),
    (dict(extended_hours=True), "extended hours"),
    (dict(oco_group="g1"), "one-cancels-other"),
    (dict(tif=TimeInForce.OPG), "time in force opg"),
    (dict(coid="tw-" + "0" * 40), "client order id longer"),
])
def test_refusals_are_rejected_with_a_reason_and_nothing_held(
        desk: Desk, broker: CcxtBroker, request_: dict[str, Any], says: str) -> None:
    ref = desk.open("1000")
    desk.fake.trade("AAPL", "100")
    report = broker.submit(order(ref, **request_))
    assert report.status is OrderStatus.REJECTED and says in (report.reason or "").lower()
    assert report.fills == () and report.broker_order_id == ""
    assert desk.truth(ref) == [] and broker.account(ref).buying_power == D(1000)


def test_an_account_without_credentials_is_rejected_and_unknown_to_lookups(
        broker: CcxtBroker) -> None:
    report = broker.submit(order("acct-nobody"))
    assert report.status is OrderStatus.REJECTED and "credentials" in (report.reason or "")
    assert broker.lookup("acct-nobody", "tw-1") is None and broker.open_orders("acct-nobody") == []


# ---- secrets -------------------------------------------------------------------------------

def test_no_secret_reaches_a_log_an_error_or_a_repr(desk: Desk, broker: CcxtBroker,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ref, wrong = desk.open(), desk.open()
    desk.creds[wrong] = {**desk.creds[wrong], "secret": "s3cr3t-" + uuid.uuid4().hex}
    secrets = [desk.creds[ref]["apiKey"], desk.creds[ref]["secret"],
               desk.creds[wrong]["apiKey"], desk.creds[wrong]["secret"]]
    desk.fake.trade("AAPL", "100")
    desk.fake.fault("timeout_after", delay=1.0)
    desk.fake.fault("slow_lookups", lookups=9)
    said: list[str] = [repr(broker)]
    with pytest.raises(BrokerUnavailable) as unknown:
        broker.submit(order(ref))
    said.append(str(unknown.value))
    said.append(str(broker.submit(order(wrong, coid="w")).reason))
    with pytest.raises(Rejected) as refused:
        broker.open_account(wrong, D(0))
    said.append(str(refused.value))
    assert "Signature" in said[2] and refused.value.code == "BROKER_CREDENTIALS_INVALID"
    assert "tradewire.ccxt.wire" in caplog.text  # ccxt's request log ran, redacted
    assert not [s for s in secrets if s in caplog.text or any(s in text for text in said)]


# ---- the account ---------------------------------------------------------------------------

def test_a_spot_account_reports_balances_as_positions_cash_and_equity(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open("10000")
    broker.open_account(ref, D(0))  # proves the keys; adds nothing
    desk.fake.trade("AAPL", "100")
    desk.fake.trade("BTC", "2000")
    broker.submit(order(ref, BUY, "10", coid="a"))
    broker.submit(order(ref, BUY, "0.5", symbol="BTC/USDT", coid="b"))
    broker.submit(order(ref, BUY, "20", LIMIT, limit="90", coid="c"))  # locks 1800
    desk.fake.trade("AAPL", "110")
    assert broker.positions(ref) == {"AAPL": D(10), "BTC": D("0.5")}
    account = broker.account(ref)
    assert account.cash == D(8000) and account.buying_power == D(6200)
    assert account.equity == D(8000) + 10 * D(110) + D("0.5") * 2000
    [resting] = broker.open_orders(ref)
    assert (resting.client_order_id, resting.symbol, resting.qty) == ("c", "AAPL", D(20))


def test_amounts_stay_exact_decimals_end_to_end(desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open("1234567890.12345679")  # more digits than a float holds
    desk.fake.trade("AAPL", "27123.45")
    bought = broker.submit(order(ref, qty="0.123457"))
    assert (bought.fills[0].qty, bought.fills[0].price) == (D("0.123457"), D("27123.45"))
    assert broker.account(ref).cash == D("1234567890.12345679") - D("0.123457") * D("27123.45")


def test_open_orders_include_orders_tradewire_never_sent(desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("ETH", "3000")
    raw = desk.raw(ref)
    raw.create_order("ETH/USDT", "limit", "buy", "1", "2500", {"clientOrderId": "by-hand"})
    [stranger] = broker.open_orders(ref)
    assert (stranger.client_order_id, stranger.symbol, stranger.side) == ("by-hand", "ETH", BUY)


def test_a_restarted_adapter_finds_orders_without_being_told_their_market(
        desk: Desk, broker: CcxtBroker) -> None:
    ref = desk.open()
    desk.fake.trade("AAPL", "105")
    desk.fake.trade("ETH", "3000")
    broker.submit(order(ref, kind=LIMIT, limit="100", coid="resting"))
    broker.submit(order(ref, symbol="ETH", qty="1", coid="held"))
    restarted = desk.broker()
    found = restarted.lookup(ref, "resting")
    assert found is not None and found.status is OrderStatus.ACCEPTED  # from the open orders
    held = restarted.lookup(ref, "held")
    assert held is not None and held.symbol == "ETH"  # from the markets of held assets


def test_without_lookup_by_client_id_the_adapter_scans_open_and_closed_orders(
        desk: Desk) -> None:
    broker = desk.broker(lookup_by_client_id=False)
    ref = desk.open()
    desk.fake.trade("AAPL", "100")
    filled = broker.submit(order(ref, coid="f"))
    resting = broker.submit(order(ref, kind=LIMIT, limit="90", coid="r"))
    assert broker.lookup(ref, "f") == filled and broker.lookup(ref, "r") == resting
    assert broker.submit(order(ref, coid="f")) == filled and len(desk.truth(ref)) == 2


def test_capabilities_are_read_from_ccxts_data(broker: CcxtBroker) -> None:
    caps = broker.capabilities
    assert (caps.shorting, caps.netting, caps.client_order_id_max) == (False, False, 36)
    assert caps.order_types == frozenset(OrderType) and caps.markets == (ALWAYS_OPEN,)
    assert caps.time_in_force == {TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC,
                                  TimeInForce.FOK}


# ---- bars ----------------------------------------------------------------------------------

def _hourly(start: datetime, count: int) -> list[list[Any]]:
    return [[int((start + timedelta(hours=i)).timestamp() * 1000), 100 + i, 101 + i, 99 + i,
             100.5 + i, 10] for i in range(count)]


def test_bars_are_the_closed_ones_oldest_first(fake: FakeExchange) -> None:
    fake.reset()
    start = datetime(2026, 2, 1, tzinfo=UTC)
    fake.load_klines("BTC", "1h", _hourly(start, 1200))
    now = start + timedelta(hours=1199, minutes=30)  # the 1200th bar is still forming
    bars = CcxtBars("binance", base_url=fake.url, clock=ManualClock(now), rate_limit_ms=1)
    got = bars.bars("BTC", "1h", 1100)  # more than one page of 1000
    assert len(got) == 1100 and [b.ts for b in got] == sorted(b.ts for b in got)
    assert got[-1].ts == int((start + timedelta(hours=1198)).timestamp())
    assert (got[-1].open, got[-1].close, got[-1].volume) == (1298.0, 1298.5, 10.0)
    assert bars.bars("BTC/USDT", "1h", 2) == bars.bars("BTCUSDT", "1h", 2) == got[-2:]
    before = bars.bars("BTC", "1h", 3, end=start + timedelta(hours=10))
    assert [b.ts for b in before] == [int((start + timedelta(hours=h)).timestamp())
                                      for h in (7, 8, 9)]
    assert bars.bars("DOGE", "1h", 3) == [] and bars.bars("ETH", "1h", 3) == []


# ---- through tradewire's own submit path ---------------------------------------------------

def test_signals_through_tradewire_place_one_order_each_despite_lost_answers(
        container: Container, desk: Desk) -> None:
    keys = desk.fake.create_account("100000")
    source = CredentialSource(container.deps.uow, container.deps.sealer)  # type: ignore[arg-type]
    registry = container.deps.brokers
    assert isinstance(registry, BrokerRegistry)
    registry.register("ccxt:binance", CcxtBroker("binance", source, **FAST))
    user = accounts.create_user("crypto", "pw-" + uuid.uuid4().hex, is_admin=False,
                                deps=container.deps, secrets=container.secrets)
    account = accounts.create_account(
        user.id, "binance", broker="ccxt:binance", cash=D(0), deps=container.deps,
        market=ALWAYS_OPEN,
        secret={"apiKey": keys.api_key, "secret": keys.secret, "base_url": desk.fake.url})
    _, api_key = accounts.create_api_key(user.id, accounts.DEFAULT_KEY_SCOPES, None,
                                         deps=container.deps, secrets=container.secrets)
    desk.fake.trade("AAPL", "100")
    faults: list[list[dict[str, Any]]] = [
        [{"kind": "error_after"}], [{"kind": "timeout_after", "delay": 1.0}],
        # past the adapter's own lookups: the core's lookups settle it
        [{"kind": "timeout_after", "delay": 1.0}, {"kind": "slow_lookups", "lookups": 4}]]
    with Server(container) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for i, armed in enumerate(faults):
            for fault in armed:
                desk.fake.fault(**fault)
            r = client.post("/api/v1/signals", headers={"X-API-Key": api_key}, json={
                "symbol": "AAPL", "action": "openLong", "accountId": account.id,
                "quantity": 1, "executeMode": "immediate", "sourceId": f"s{i}"})
            assert r.status_code == 201, r.text
            assert r.json()["signal"]["status"] == "executed"
        mine = client.get("/api/v1/orders", headers={"X-API-Key": api_key}).json()["orders"]
    truth = desk.fake.orders(keys.account)
    assert sorted(o["clientOrderId"] for o in truth) == sorted(o["clientOrderId"] for o in mine)
    assert len(truth) == 3 and {o["status"] for o in mine} == {"filled"}
