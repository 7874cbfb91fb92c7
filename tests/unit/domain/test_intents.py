"""From a signal to its order: side, quantity caps, refusals, and the timed exit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradewire.domain.errors import Rejected
from tradewire.domain.intents import entry_order, exit_order, reference_price
from tradewire.domain.orders import Order, OrderStatus, client_order_id
from tradewire.domain.positions import Position
from tradewire.domain.signals import ExitRule, ExitTrigger, Signal
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderPurpose,
    OrderType,
    QuantityType,
    Side,
    TimeInForce,
)

AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
AFTER_30 = ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=30)


def signal(action: Action = Action.OPEN_LONG, quantity: str = "100", **fields: object) -> Signal:
    return Signal(id="sig-1", account_id="a1", symbol="AAPL", action=action,
                  quantity=Decimal(quantity), execute_mode=ExecuteMode.IMMEDIATE, created_at=AT,
                  **fields)  # type: ignore[arg-type]


def held(qty: str) -> Position:
    return Position(account_id="a1", symbol="AAPL", qty=Decimal(qty),
                    avg_entry_price=Decimal(100) if qty != "0" else Decimal(0))


def entry(sig: Signal, position: Position, last: str | None = "190",
          equity: str | None = "100000") -> Order:
    return entry_order(sig, order_id="o1", position=position,
                       last_price=Decimal(last) if last else None,
                       equity=Decimal(equity) if equity else None, at=AT)


# ---- entry_order ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "position", "quantity", "side", "qty", "purpose"), [
    pytest.param(Action.OPEN_LONG, "0", "100", Side.BUY, "100", OrderPurpose.ENTRY, id="open-long"),
    pytest.param(Action.OPEN_LONG, "50", "100", Side.BUY, "100", OrderPurpose.ENTRY,
                 id="open-long-adds-to-a-long"),
    pytest.param(Action.OPEN_SHORT, "0", "100", Side.SELL, "100", OrderPurpose.ENTRY,
                 id="open-short"),
    pytest.param(Action.OPEN_SHORT, "-20", "100", Side.SELL, "100", OrderPurpose.ENTRY,
                 id="open-short-adds-to-a-short"),
    pytest.param(Action.CLOSE_LONG, "30", "100", Side.SELL, "30", OrderPurpose.EXIT,
                 id="close-long-is-capped-at-the-position"),
    pytest.param(Action.CLOSE_LONG, "30", "10", Side.SELL, "10", OrderPurpose.EXIT,
                 id="close-long-may-close-part"),
    pytest.param(Action.CLOSE_SHORT, "-30", "100", Side.BUY, "30", OrderPurpose.EXIT,
                 id="close-short-is-capped-at-the-position"),
    pytest.param(Action.CLOSE_SHORT, "-30", "10", Side.BUY, "10", OrderPurpose.EXIT,
                 id="close-short-may-close-part"),
])
def test_entry_order_side_quantity_and_purpose(action: Action, position: str, quantity: str,
                                               side: Side, qty: str,
                                               purpose: OrderPurpose) -> None:
    order = entry(signal(action, quantity), held(position))
    assert (order.side, order.qty, order.purpose) == (side, Decimal(qty), purpose)
    assert order.status is OrderStatus.NEW


@pytest.mark.parametrize(("action", "position", "code"), [
    pytest.param(Action.CLOSE_LONG, "0", "NO_POSITION", id="close-long-with-no-position"),
    pytest.param(Action.CLOSE_LONG, "-5", "NO_POSITION", id="close-long-while-short"),
    pytest.param(Action.CLOSE_SHORT, "0", "NO_POSITION", id="close-short-with-no-position"),
    pytest.param(Action.CLOSE_SHORT, "5", "NO_POSITION", id="close-short-while-long"),
    pytest.param(Action.OPEN_LONG, "-5", "OPPOSING_POSITION_OPEN", id="open-long-while-short"),
    pytest.param(Action.OPEN_SHORT, "5", "OPPOSING_POSITION_OPEN", id="open-short-while-long"),
])
def test_entry_order_refusals_carry_a_code(action: Action, position: str, code: str) -> None:
    with pytest.raises(Rejected) as caught:
        entry(signal(action), held(position))
    assert caught.value.code == code


def test_entry_order_carries_the_signal_and_a_deterministic_client_order_id() -> None:
    sig = signal(order_type=OrderType.LIMIT, limit_price=Decimal(250),
                 time_in_force=TimeInForce.GTC, extended_hours=True)
    order = entry(sig, held("0"))
    assert order.client_order_id == client_order_id("sig-1", "entry")
    assert order.client_order_id == entry(sig, held("0")).client_order_id
    assert (order.id, order.account_id, order.signal_id, order.symbol) == ("o1", "a1", "sig-1", "AAPL")
    assert (order.order_type, order.limit_price, order.time_in_force) == (
        OrderType.LIMIT, Decimal(250), TimeInForce.GTC)
    assert order.extended_hours and order.created_at == AT


@pytest.mark.parametrize(("fields", "last", "expected"), [
    ({}, "190", "190"),
    ({"limit_price": Decimal(180)}, "190", "180"),
    ({"stop_price": Decimal(200)}, "190", "200"),
    ({"limit_price": Decimal(180), "stop_price": Decimal(200)}, "190", "180"),
    ({}, None, None),
])
def test_reference_price_prefers_the_signals_own_limit_then_stop_then_the_last(
        fields: dict[str, Decimal], last: str | None, expected: str | None) -> None:
    price = reference_price(signal(**fields), Decimal(last) if last else None)
    assert price == (Decimal(expected) if expected else None)


def test_dollar_amount_entry_is_sized_at_its_limit_price() -> None:
    sig = signal(quantity="1000", quantity_type=QuantityType.DOLLAR_AMOUNT,
                 order_type=OrderType.LIMIT, limit_price=Decimal(100))
    assert entry(sig, held("0"), last="50").qty == Decimal(10)


def test_percent_equity_close_is_capped_at_the_position() -> None:
    sig = signal(Action.CLOSE_LONG, "50", quantity_type=QuantityType.PERCENT_EQUITY)
    assert entry(sig, held("7"), last="100", equity="100000").qty == Decimal(7)


def test_dollar_amount_entry_without_a_price_is_refused() -> None:
    sig = signal(quantity="1000", quantity_type=QuantityType.DOLLAR_AMOUNT)
    with pytest.raises(Rejected) as caught:
        entry(sig, held("0"), last=None)
    assert caught.value.code == "NO_PRICE"


# ---- exit_order -------------------------------------------------------------------------------

def filled_entry(side: Side, qty: str) -> Order:
    order = entry(signal(Action.OPEN_LONG if side is Side.BUY else Action.OPEN_SHORT, qty), held("0"))
    return replace(order, status=OrderStatus.FILLED, filled_qty=Decimal(qty),
                   avg_fill_price=Decimal(100))


@pytest.mark.parametrize(("side", "filled", "position", "exit_side", "exit_qty"), [
    pytest.param(Side.BUY, "100", "100", Side.SELL, "100", id="long-entry-sells-what-it-bought"),
    pytest.param(Side.BUY, "100", "40", Side.SELL, "40", id="long-capped-by-what-is-still-held"),
    pytest.param(Side.BUY, "100", "250", Side.SELL, "100", id="long-leaves-other-entries-alone"),
    pytest.param(Side.SELL, "50", "-50", Side.BUY, "50", id="short-entry-buys-back"),
    pytest.param(Side.SELL, "50", "-20", Side.BUY, "20", id="short-capped-by-what-is-still-held"),
])
def test_exit_undoes_the_entry_fill(side: Side, filled: str, position: str,
                                          exit_side: Side, exit_qty: str) -> None:
    order = exit_order(signal(), AFTER_30, entry=filled_entry(side, filled),
                             position=held(position), order_id="o2", at=AT)
    assert order is not None
    assert (order.side, order.qty, order.purpose) == (exit_side, Decimal(exit_qty), OrderPurpose.EXIT)
    assert (order.order_type, order.time_in_force) == (OrderType.MARKET, TimeInForce.DAY)
    assert order.client_order_id == client_order_id("sig-1", "exit")
    assert order.client_order_id != filled_entry(side, filled).client_order_id


@pytest.mark.parametrize(("side", "position"), [
    pytest.param(Side.BUY, "0", id="long-already-closed"),
    pytest.param(Side.BUY, "-10", id="long-flipped-to-short"),
    pytest.param(Side.SELL, "0", id="short-already-covered"),
    pytest.param(Side.SELL, "10", id="short-flipped-to-long"),
])
def test_exit_has_nothing_to_do_when_the_position_is_gone(side: Side, position: str) -> None:
    order = exit_order(signal(), AFTER_30, entry=filled_entry(side, "100"),
                             position=held(position), order_id="o2", at=AT)
    assert order is None


def test_exit_of_an_unfilled_entry_is_nothing() -> None:
    unfilled = entry(signal(), held("0"))
    assert exit_order(signal(), AFTER_30, entry=unfilled,
                            position=held("100"), order_id="o2", at=AT) is None


def test_limit_exit_after_a_fill_rests_good_till_cancelled_at_its_limit() -> None:
    rule = ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=30, order_type=OrderType.LIMIT,
                    limit_price=Decimal("195.5"))
    order = exit_order(signal(), rule, entry=filled_entry(Side.BUY, "100"),
                             position=held("100"), order_id="o2", at=AT)
    assert order is not None
    assert (order.order_type, order.limit_price, order.time_in_force) == (
        OrderType.LIMIT, Decimal("195.5"), TimeInForce.GTC)


@pytest.mark.parametrize("tif", [TimeInForce.CLS, TimeInForce.DAY])
def test_market_close_exit_keeps_the_rules_time_in_force(tif: TimeInForce) -> None:
    rule = ExitRule(trigger=ExitTrigger.MARKET_CLOSE, immediate=True, time_in_force=tif)
    order = exit_order(signal(), rule, entry=filled_entry(Side.BUY, "100"), position=held("100"),
                       order_id="o2", at=AT)
    assert order is not None
    assert (order.side, order.qty, order.time_in_force) == (Side.SELL, Decimal(100), tif)


@pytest.mark.parametrize(("tif", "expires"), [
    (TimeInForce.GTD, True), (TimeInForce.GTC, False), (TimeInForce.DAY, False),
])
def test_only_a_gtd_entry_expires_at_the_signals_valid_until(tif: TimeInForce,
                                                             expires: bool) -> None:
    until = datetime(2026, 2, 7, 21, 0, tzinfo=UTC)
    order = entry(signal(order_type=OrderType.LIMIT, limit_price=Decimal(180), time_in_force=tif,
                         valid_until=until), held("0"))
    assert order.expires_at == (until if expires else None)
