"""The contract every Broker adapter passes, on SQLite and PostgreSQL.

Written against the Broker port only; the `venue` fixture (conftest.py) supplies each broker
kind with a way to make its market trade at a price.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest

from tests.contract.conftest import Venue
from tradewire.domain.matching import FillModel
from tradewire.domain.orders import OrderStatus
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.domain.venues import BrokerCapabilities
from tradewire.services.ports import BrokerOrder, OrderRequest

BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
D = Decimal


def request(ref: str, side: Side = BUY, qty: str = "10", order_type: OrderType = MARKET, *,
            symbol: str = "AAPL", tif: TimeInForce = DAY, limit: str | None = None,
            stop: str | None = None, coid: str | None = None) -> OrderRequest:
    return OrderRequest(account_ref=ref, client_order_id=coid or f"c-{uuid.uuid4().hex[:16]}",
                        symbol=symbol, side=side, qty=D(qty), order_type=order_type,
                        time_in_force=tif, limit_price=D(limit) if limit else None,
                        stop_price=D(stop) if stop else None)


def now_of(venue: Venue, ref: str, coid: str) -> BrokerOrder:
    found = venue.broker.lookup(ref, coid)
    assert found is not None
    return found


def assert_filled_at(report: BrokerOrder, qty: str, price: str) -> None:
    assert report.status is OrderStatus.FILLED, report
    assert report.filled_qty == D(qty)
    assert [(f.qty, f.price) for f in report.fills] == [(D(qty), D(price))]


def assert_resting(report: BrokerOrder) -> None:
    assert report.status is OrderStatus.ACCEPTED, report
    assert report.filled_qty == 0 and report.fills == ()


# ---- accounts -----------------------------------------------------------------------------------

def test_an_opened_account_reports_its_cash_as_equity_and_buying_power(venue: Venue) -> None:
    ref = venue.open("100000.25")
    account = venue.broker.account(ref)
    assert (account.cash, account.equity, account.buying_power) == (
        D("100000.25"), D("100000.25"), D("100000.25"))
    assert venue.broker.positions(ref) == {}


def test_opening_an_account_again_keeps_what_it_holds(venue: Venue) -> None:
    ref = venue.open("10000")
    venue.trade_at("AAPL", D(100))
    venue.broker.submit(request(ref, BUY, "10"))
    venue.broker.open_account(ref, D(10000))
    assert venue.broker.account(ref).cash == D(9000)
    assert venue.broker.positions(ref) == {"AAPL": D(10)}


def test_equity_marks_positions_at_the_last_price(venue: Venue) -> None:
    ref = venue.open("10000")
    venue.trade_at("AAPL", D(100))
    venue.broker.submit(request(ref, BUY, "10"))
    venue.trade_at("AAPL", D(110))
    account = venue.broker.account(ref)
    assert (account.cash, account.equity) == (D(9000), D(10100))


# ---- market orders ------------------------------------------------------------------------------

def test_a_market_order_with_a_known_price_fills_at_once(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D("190.37"))
    report = venue.broker.submit(request(ref, BUY, "10", coid="entry-1"))
    assert report.client_order_id == "entry-1" and report.broker_order_id
    assert_filled_at(report, "10", "190.37")
    assert report.fills[0].fill_id and report.fills[0].fee == 0
    assert report.fills[0].filled_at == venue.clock.now()
    assert report.fills[0].filled_at.utcoffset() is not None
    assert venue.broker.account(ref).cash == D(100000) - D("1903.7")


def test_fill_ids_and_broker_order_ids_are_unique(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    reports = [venue.broker.submit(request(ref, side, "1")) for side in (BUY, BUY, SELL, BUY)]
    fill_ids = [f.fill_id for r in reports for f in r.fills]
    assert len(fill_ids) == 4 and len(set(fill_ids)) == 4
    assert len({r.broker_order_id for r in reports}) == 4


def test_a_market_order_with_no_known_price_rests_and_fills_on_the_next_tick(venue: Venue) -> None:
    ref = venue.open()
    report = venue.broker.submit(request(ref, BUY, "5", symbol="NVDA", coid="nvda-1"))
    if not venue.broker.capabilities.market_rests_without_price:
        # Such a venue ends it at once, says why, and holds nothing back for it.
        assert report.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED), report
        assert report.reason and report.fills == ()
        venue.trade_at("NVDA", D("120.5"))
        assert now_of(venue, ref, "nvda-1").fills == ()
        assert venue.broker.positions(ref) == {}
        assert venue.broker.account(ref).buying_power == D(100000)
        return
    assert_resting(report)
    venue.trade_at("NVDA", D("120.5"))
    filled = now_of(venue, ref, "nvda-1")
    assert_filled_at(filled, "5", "120.5")
    assert filled.fills[0].filled_at == venue.clock.now()
    assert venue.broker.positions(ref) == {"NVDA": D(5)}


def waiting(venue: Venue, ref: str, symbol: str, qty: str, *, coid: str | None = None,
            at: str = "100") -> OrderRequest:
    """An order that waits for `symbol`'s first trade: a market order where the venue rests
    those, else a limit the first trade at `at` will cross."""
    if venue.broker.capabilities.market_rests_without_price:
        return request(ref, BUY, qty, symbol=symbol, coid=coid)
    return request(ref, BUY, qty, LIMIT, symbol=symbol, tif=GTC, limit=at, coid=coid)


def test_a_tick_for_another_symbol_fills_nothing(venue: Venue) -> None:
    ref = venue.open()
    venue.broker.submit(waiting(venue, ref, "NVDA", "5", coid="nvda-1", at="130"))
    venue.trade_at("AMD", D(150))
    assert_resting(now_of(venue, ref, "nvda-1"))


# ---- idempotency and lookup ---------------------------------------------------------------------

def test_the_same_client_order_id_twice_is_one_order_with_one_fill(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    first = venue.broker.submit(request(ref, BUY, "10", coid="entry-1"))
    venue.trade_at("AAPL", D(101))
    again = venue.broker.submit(request(ref, BUY, "10", coid="entry-1"))
    assert again.broker_order_id == first.broker_order_id
    assert again.fills == first.fills and len(again.fills) == 1
    assert venue.broker.positions(ref) == {"AAPL": D(10)}
    assert venue.broker.account(ref).cash == D(99000)


def test_a_resting_order_sent_twice_fills_once(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(105))
    first = venue.broker.submit(request(ref, BUY, "10", LIMIT, limit="100", coid="dip-1"))
    again = venue.broker.submit(request(ref, BUY, "10", LIMIT, limit="100", coid="dip-1"))
    assert again.broker_order_id == first.broker_order_id
    venue.trade_at("AAPL", D(99))
    venue.trade_at("AAPL", D(98))
    assert_filled_at(now_of(venue, ref, "dip-1"), "10", "99")
    assert venue.broker.positions(ref) == {"AAPL": D(10)}


def test_the_same_client_order_id_in_two_accounts_is_two_orders(venue: Venue) -> None:
    alice, bob = venue.open(), venue.open()
    venue.trade_at("AAPL", D(100))
    a = venue.broker.submit(request(alice, BUY, "1", coid="same"))
    b = venue.broker.submit(request(bob, BUY, "2", coid="same"))
    assert a.broker_order_id != b.broker_order_id
    assert venue.broker.positions(alice) == {"AAPL": D(1)}
    assert venue.broker.positions(bob) == {"AAPL": D(2)}


def test_lookup_of_an_unknown_client_order_id_is_none(venue: Venue) -> None:
    ref = venue.open()
    assert venue.broker.lookup(ref, "never-sent") is None


def test_lookup_in_another_account_does_not_find_the_order(venue: Venue) -> None:
    alice, bob = venue.open(), venue.open()
    venue.broker.submit(request(alice, BUY, "1", coid="alice-1"))
    assert venue.broker.lookup(bob, "alice-1") is None


@pytest.mark.parametrize("arrival", ["fills", "rests", "ioc-canceled", "stop-rests"])
def test_lookup_reports_what_submit_reported(venue: Venue, arrival: str) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    sent = {"fills": request(ref, BUY, "3", coid="entry-1"),
            "rests": request(ref, BUY, "3", LIMIT, limit="90", coid="entry-1"),
            "ioc-canceled": request(ref, BUY, "3", LIMIT, tif=IOC, limit="90", coid="entry-1"),
            "stop-rests": request(ref, BUY, "3", STOP, stop="105", coid="entry-1")}[arrival]
    report = venue.broker.submit(sent)
    assert venue.broker.lookup(ref, "entry-1") == report
    assert (report.status is OrderStatus.FILLED) == (arrival == "fills"), report


def test_open_orders_are_the_resting_ones_with_what_was_ordered(venue: Venue) -> None:
    ref, other = venue.open(), venue.open()
    venue.trade_at("AAPL", D(105))
    venue.broker.submit(request(ref, BUY, "10", LIMIT, tif=GTC, limit="100", coid="rest-1"))
    venue.broker.submit(request(ref, BUY, "1", coid="filled-1"))
    venue.broker.submit(request(ref, BUY, "2", LIMIT, tif=GTC, limit="90", coid="gone-1"))
    venue.broker.cancel(ref, "gone-1")
    venue.broker.submit(request(other, BUY, "3", LIMIT, tif=GTC, limit="95", coid="other-1"))
    open_now = venue.broker.open_orders(ref)
    assert [(o.client_order_id, o.symbol, o.side, o.qty, o.status) for o in open_now] == [
        ("rest-1", "AAPL", BUY, D(10), OrderStatus.ACCEPTED)]


def test_the_broker_declares_what_it_can_do(venue: Venue) -> None:
    caps = venue.broker.capabilities
    assert isinstance(caps, BrokerCapabilities)
    assert caps.supports(MARKET, DAY) and caps.supports(LIMIT, GTC)
    assert caps.client_order_id_max >= len("tw-") + 32  # tradewire's ids fit


# ---- limit orders and cancels -------------------------------------------------------------------

@pytest.mark.parametrize(("side", "last", "limit", "still_away", "through", "fills_at"), [
    pytest.param(BUY, "105", "100", "102", "98", "98", id="buy"),
    pytest.param(SELL, "95", "100", "98", "103", "103", id="sell"),
])
def test_a_limit_that_is_not_marketable_rests_and_fills_later_at_the_better_price(
        venue: Venue, side: Side, last: str, limit: str, still_away: str, through: str,
        fills_at: str) -> None:
    ref = venue.open()
    if side is SELL:  # hold what is sold, so the contract needs no short selling
        venue.trade_at("AAPL", D(limit))
        venue.broker.submit(request(ref, BUY, "10"))
    venue.trade_at("AAPL", D(last))
    assert_resting(venue.broker.submit(request(ref, side, "10", LIMIT, limit=limit, coid="lim")))
    venue.trade_at("AAPL", D(still_away))
    assert_resting(now_of(venue, ref, "lim"))
    venue.trade_at("AAPL", D(through))
    assert_filled_at(now_of(venue, ref, "lim"), "10", fills_at)


@pytest.mark.parametrize(("side", "limit"), [(BUY, "110"), (SELL, "90")])
def test_a_marketable_limit_fills_at_once_at_the_quote(venue: Venue, side: Side,
                                                       limit: str) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    if side is SELL:
        venue.broker.submit(request(ref, BUY, "10"))
    assert_filled_at(venue.broker.submit(request(ref, side, "10", LIMIT, limit=limit)), "10", "100")


def test_a_canceled_order_never_fills(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(105))
    venue.broker.submit(request(ref, BUY, "10", LIMIT, tif=GTC, limit="100", coid="dip-1"))
    canceled = venue.broker.cancel(ref, "dip-1")
    assert canceled is not None and canceled.status is OrderStatus.CANCELED
    venue.trade_at("AAPL", D(95))
    after = now_of(venue, ref, "dip-1")
    assert after.status is OrderStatus.CANCELED and after.fills == ()
    assert venue.broker.positions(ref) == {}
    assert venue.broker.account(ref).buying_power == D(100000)


def test_canceling_a_filled_order_changes_nothing(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    filled = venue.broker.submit(request(ref, BUY, "10", coid="entry-1"))
    assert venue.broker.cancel(ref, "entry-1") == filled
    assert venue.broker.positions(ref) == {"AAPL": D(10)}


def test_cancel_of_an_unknown_client_order_id_is_none(venue: Venue) -> None:
    ref = venue.open()
    assert venue.broker.cancel(ref, "never-sent") is None


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_ioc_or_fok_that_is_not_marketable_is_canceled(venue: Venue, tif: TimeInForce) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(105))
    report = venue.broker.submit(request(ref, BUY, "10", LIMIT, tif=tif, limit="100", coid="x"))
    assert report.status is OrderStatus.CANCELED and report.fills == () and report.reason
    venue.trade_at("AAPL", D(95))
    assert now_of(venue, ref, "x").fills == ()
    assert venue.broker.account(ref).buying_power == D(100000)


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_ioc_or_fok_that_is_marketable_fills(venue: Venue, tif: TimeInForce) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(99))
    report = venue.broker.submit(request(ref, BUY, "10", LIMIT, tif=tif, limit="100"))
    assert_filled_at(report, "10", "99")


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_ioc_or_fok_with_no_known_price_does_not_rest(venue: Venue, tif: TimeInForce) -> None:
    ref = venue.open()
    report = venue.broker.submit(request(ref, BUY, "10", LIMIT, symbol="NVDA", tif=tif,
                                         limit="100", coid="x"))
    assert report.status is OrderStatus.CANCELED and report.fills == ()
    venue.trade_at("NVDA", D(95))
    assert now_of(venue, ref, "x").fills == ()


# ---- stops --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "stop", "short_of_it", "through"), [
    pytest.param(SELL, "95", "96", "94", id="sell-stop-on-the-way-down"),
    pytest.param(BUY, "105", "104", "106", id="buy-stop-on-the-way-up"),
])
def test_a_stop_order_rests_until_its_stop_then_fills_at_the_market(
        venue: Venue, side: Side, stop: str, short_of_it: str, through: str) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    if side is SELL:
        venue.broker.submit(request(ref, BUY, "10"))
    assert_resting(venue.broker.submit(request(ref, side, "10", STOP, tif=GTC, stop=stop,
                                               coid="stop-1")))
    venue.trade_at("AAPL", D(short_of_it))
    assert_resting(now_of(venue, ref, "stop-1"))
    venue.trade_at("AAPL", D(through))
    assert_filled_at(now_of(venue, ref, "stop-1"), "10", through)


def test_a_stop_limit_triggers_then_waits_for_its_limit(venue: Venue) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    venue.broker.submit(request(ref, BUY, "10", STOP_LIMIT, tif=GTC, stop="105", limit="106",
                                coid="sl-1"))
    venue.trade_at("AAPL", D(107))  # the stop fires, but the quote is past the limit
    assert_resting(now_of(venue, ref, "sl-1"))
    venue.trade_at("AAPL", D(104))  # back under the stop: a triggered stop-limit is a limit now
    assert_filled_at(now_of(venue, ref, "sl-1"), "10", "104")


# ---- buying power and refusals ------------------------------------------------------------------

@pytest.mark.parametrize(("order_type", "limit"), [(MARKET, None), (LIMIT, "190")])
def test_an_order_beyond_buying_power_is_rejected_with_a_reason(
        venue: Venue, order_type: OrderType, limit: str | None) -> None:
    ref = venue.open("1000")
    venue.trade_at("AAPL", D(190))
    report = venue.broker.submit(request(ref, BUY, "10", order_type, limit=limit))
    assert report.status is OrderStatus.REJECTED and report.reason
    assert report.fills == ()
    assert venue.broker.account(ref).cash == D(1000)
    assert venue.broker.positions(ref) == {}


def test_a_resting_buy_holds_back_buying_power(venue: Venue) -> None:
    ref = venue.open("10000")
    venue.trade_at("AAPL", D(105))
    venue.broker.submit(request(ref, BUY, "50", LIMIT, tif=GTC, limit="100", coid="dip-1"))
    assert venue.broker.account(ref).buying_power == D(5000)
    second = venue.broker.submit(request(ref, BUY, "60", LIMIT, tif=GTC, limit="100"))
    assert second.status is OrderStatus.REJECTED and second.reason
    venue.broker.cancel(ref, "dip-1")
    assert venue.broker.account(ref).buying_power == D(10000)


def test_a_sell_that_only_closes_a_position_needs_no_buying_power(venue: Venue) -> None:
    ref = venue.open("1000")
    venue.trade_at("AAPL", D(100))
    venue.broker.submit(request(ref, BUY, "10"))
    assert venue.broker.account(ref).cash == 0
    venue.trade_at("AAPL", D(90))
    assert_filled_at(venue.broker.submit(request(ref, SELL, "10")), "10", "90")
    assert venue.broker.account(ref).cash == D(900)


def test_short_sale_proceeds_do_not_add_buying_power(venue: Venue) -> None:
    if not venue.can_short:
        pytest.skip(f"{venue.broker.name} does not sell short")
    ref = venue.open("1000")
    venue.trade_at("AAPL", D(100))
    assert_filled_at(venue.broker.submit(request(ref, SELL, "10")), "10", "100")
    assert venue.broker.account(ref).equity == D(1000)
    assert venue.broker.account(ref).buying_power == 0  # the short ties up all the equity
    again = venue.broker.submit(request(ref, SELL, "10"))
    assert again.status is OrderStatus.REJECTED and again.reason
    assert venue.broker.positions(ref) == {"AAPL": D(-10)}


def test_an_order_for_an_unknown_account_is_rejected(venue: Venue) -> None:
    venue.trade_at("AAPL", D(100))
    report = venue.broker.submit(request("acct-nobody", BUY, "1"))
    assert report.status is OrderStatus.REJECTED and report.reason


@pytest.mark.parametrize("bad", [
    pytest.param(dict(qty="0"), id="zero-quantity"),
    pytest.param(dict(qty="-1"), id="negative-quantity"),
    pytest.param(dict(order_type=LIMIT), id="limit-without-limit-price"),
    pytest.param(dict(order_type=STOP), id="stop-without-stop-price"),
    pytest.param(dict(order_type=STOP_LIMIT, stop="105"), id="stop-limit-without-limit-price"),
])
def test_a_malformed_order_is_rejected_with_a_reason(venue: Venue, bad: dict[str, object]) -> None:
    ref = venue.open()
    venue.trade_at("AAPL", D(100))
    report = venue.broker.submit(request(ref, **bad))  # type: ignore[arg-type]
    assert report.status is OrderStatus.REJECTED and report.reason and report.fills == ()


# ---- positions ----------------------------------------------------------------------------------

def test_positions_follow_buys_and_sells(venue: Venue) -> None:
    ref = venue.open("10000")
    venue.trade_at("AAPL", D(100))
    venue.trade_at("MSFT", D(50))
    venue.broker.submit(request(ref, BUY, "10", symbol="AAPL"))
    venue.broker.submit(request(ref, BUY, "5", symbol="MSFT"))
    venue.trade_at("AAPL", D(110))
    venue.broker.submit(request(ref, SELL, "4", symbol="AAPL"))
    assert venue.broker.positions(ref) == {"AAPL": D(6), "MSFT": D(5)}
    venue.broker.submit(request(ref, SELL, "5", symbol="MSFT"))
    assert venue.broker.positions(ref) == {"AAPL": D(6)}
    account = venue.broker.account(ref)
    assert account.cash == D(10000) - 1000 - 250 + 440 + 250
    assert account.equity == account.cash + 6 * D(110)


def test_fills_on_many_symbols_at_once_all_reach_the_cash(venue: Venue) -> None:
    ref = venue.open("100000")
    symbols = [f"SYM{i}" for i in range(12)]
    for symbol in symbols:  # no price yet: each rests until its market trades
        venue.broker.submit(waiting(venue, ref, symbol, "1"))
    start = threading.Barrier(len(symbols))

    def trade(symbol: str) -> None:
        start.wait()
        venue.trade_at(symbol, D(100))

    threads = [threading.Thread(target=trade, args=(s,)) for s in symbols]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert venue.broker.positions(ref) == dict.fromkeys(symbols, D(1))
    assert venue.broker.account(ref).cash == D(100000) - 100 * len(symbols)


# ---- costs --------------------------------------------------------------------------------------

def test_fees_and_slippage_of_the_fill_model_are_applied(venue: Venue) -> None:
    if venue.with_costs is None:
        pytest.skip(f"{venue.broker.name} charges its own costs")
    venue = venue.with_costs(FillModel(fee_bps=D(10), slippage_bps=D(5)))
    ref = venue.open("100000")
    venue.trade_at("AAPL", D(100))
    bought = venue.broker.submit(request(ref, BUY, "10"))
    assert_filled_at(bought, "10", "100.05")  # buyers pay the slippage up
    assert bought.fills[0].fee == D("1.0005")  # 10 bps of 1000.5
    venue.trade_at("AAPL", D(110))
    sold = venue.broker.submit(request(ref, SELL, "10"))
    assert_filled_at(sold, "10", "109.945")  # sellers get less
    assert sold.fills[0].fee == D("1.09945")
    cash = D(100000) - D("1000.5") - D("1.0005") + D("1099.45") - D("1.09945")
    assert venue.broker.account(ref).cash == cash


def test_a_limit_fill_pays_the_fee_but_no_slippage(venue: Venue) -> None:
    if venue.with_costs is None:
        pytest.skip(f"{venue.broker.name} charges its own costs")
    venue = venue.with_costs(FillModel(fee_bps=D(10), slippage_bps=D(5)))
    ref = venue.open("100000")
    venue.trade_at("AAPL", D(105))
    venue.broker.submit(request(ref, BUY, "10", LIMIT, limit="100", coid="dip-1"))
    venue.trade_at("AAPL", D(100))
    filled = now_of(venue, ref, "dip-1")
    assert_filled_at(filled, "10", "100")
    assert filled.fills[0].fee == D(1)
