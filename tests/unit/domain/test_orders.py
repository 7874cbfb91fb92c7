"""Order lifecycle: the transition table, fills, and the client_order_id sent to brokers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradewire.domain.errors import InvalidTransition
from tradewire.domain.orders import (
    TRANSITIONS,
    Fill,
    Order,
    OrderStatus,
    apply_fill,
    check_transition,
    client_order_id,
)
from tradewire.domain.values import OrderPurpose, OrderType, Side, TimeInForce

S = OrderStatus
AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)


def order(status: OrderStatus = S.ACCEPTED, qty: str = "10") -> Order:
    return Order(id="o1", account_id="a1", signal_id="s1", client_order_id="tw-1", symbol="AAPL",
                 side=Side.BUY, qty=Decimal(qty), order_type=OrderType.MARKET,
                 time_in_force=TimeInForce.DAY, purpose=OrderPurpose.ENTRY, created_at=AT,
                 status=status)


def fill(qty: str, price: str, fill_id: str = "f1") -> Fill:
    return Fill(fill_id=fill_id, order_id="o1", account_id="a1", symbol="AAPL", side=Side.BUY,
                qty=Decimal(qty), price=Decimal(price), fee=Decimal(0), filled_at=AT)


# ---- the transition table ---------------------------------------------------------------------

@pytest.mark.parametrize(("current", "target"), [
    (S.NEW, S.SUBMITTING),
    (S.NEW, S.CANCELED),  # withdrawn (replace, cancel) before any submitter took it
    (S.NEW, S.REJECTED),  # refused by tradewire before it reached a broker
    (S.SUBMITTING, S.ACCEPTED),
    (S.SUBMITTING, S.FILLED),  # a market order can come back already filled
    (S.SUBMITTING, S.REJECTED),
    (S.SUBMITTING, S.CANCELED),  # ioc / fok misses
    (S.SUBMITTING, S.NEW),  # the broker never saw it: the intent goes back to the queue
    (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.ACCEPTED, S.FILLED),
    (S.ACCEPTED, S.CANCELED),
    (S.ACCEPTED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELED),
    (S.CANCELED, S.FILLED),  # a fill can race the cancel
    (S.CANCELED, S.PARTIALLY_FILLED),
    (S.EXPIRED, S.FILLED),
])
def test_allowed_moves_pass_the_table(current: OrderStatus, target: OrderStatus) -> None:
    check_transition(current, target)
    assert order(current).moved_to(target).status is target


@pytest.mark.parametrize(("current", "target"), [
    (S.NEW, S.ACCEPTED),  # only a submitter that holds the lease talks to the broker
    (S.NEW, S.FILLED),
    (S.ACCEPTED, S.NEW),
    (S.ACCEPTED, S.SUBMITTING),
    (S.FILLED, S.CANCELED),
    (S.FILLED, S.PARTIALLY_FILLED),
    (S.FILLED, S.NEW),
    (S.REJECTED, S.ACCEPTED),
    (S.REJECTED, S.FILLED),
    (S.CANCELED, S.ACCEPTED),
    (S.CANCELED, S.NEW),
    (S.EXPIRED, S.ACCEPTED),
    (S.PARTIALLY_FILLED, S.ACCEPTED),
])
def test_refused_moves_raise_invalid_transition(current: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)
    with pytest.raises(InvalidTransition):
        order(current).moved_to(target)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_staying_in_the_same_status_is_a_no_op(status: OrderStatus) -> None:
    check_transition(status, status)


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize("status", [S.FILLED, S.REJECTED])
def test_filled_and_rejected_are_terminal(status: OrderStatus) -> None:
    assert TRANSITIONS[status] == frozenset()


def test_moving_keeps_the_earlier_reason_unless_given_a_new_one() -> None:
    rejected = order(S.SUBMITTING).moved_to(S.REJECTED, reason="insufficient buying power")
    assert rejected.reason == "insufficient buying power"
    canceled = order(S.ACCEPTED).moved_to(S.CANCELED, reason="ioc not marketable")
    assert canceled.moved_to(S.FILLED).reason == "ioc not marketable"


# ---- fills --------------------------------------------------------------------------------------

def test_partial_then_full_fill_averages_the_price() -> None:
    partly = apply_fill(order(qty="10"), fill("4", "100", "f1"))
    assert (partly.status, partly.filled_qty, partly.avg_fill_price) == (
        S.PARTIALLY_FILLED, Decimal(4), Decimal(100))
    assert partly.remaining_qty == Decimal(6)
    full = apply_fill(partly, fill("6", "110", "f2"))
    assert (full.status, full.filled_qty, full.avg_fill_price) == (
        S.FILLED, Decimal(10), Decimal(106))
    assert full.remaining_qty == 0


def test_one_fill_of_the_whole_quantity_fills_the_order_at_its_price() -> None:
    filled = apply_fill(order(S.SUBMITTING, qty="2.5"), fill("2.5", "190.37"))
    assert (filled.status, filled.filled_qty, filled.avg_fill_price) == (
        S.FILLED, Decimal("2.5"), Decimal("190.37"))


@pytest.mark.parametrize(("first", "second"), [("10", "0.000001"), ("4", "7"), ("0", "10.5")])
def test_a_fill_beyond_the_order_quantity_is_refused(first: str, second: str) -> None:
    start = order(qty="10")
    if first != "0":
        start = apply_fill(start, fill(first, "100", "f1"))
    with pytest.raises(InvalidTransition):
        apply_fill(start, fill(second, "100", "f2"))


def test_fill_after_cancel_is_accepted() -> None:
    canceled = order(S.ACCEPTED).moved_to(S.CANCELED, reason="canceled by user")
    filled = apply_fill(canceled, fill("10", "101"))
    assert filled.status is S.FILLED and filled.filled_qty == Decimal(10)


def test_partial_fill_after_cancel_is_accepted() -> None:
    canceled = order(S.CANCELED)
    assert apply_fill(canceled, fill("3", "101")).status is S.PARTIALLY_FILLED


def test_a_fill_on_an_order_never_sent_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        apply_fill(order(S.NEW), fill("10", "100"))


def test_a_fill_on_a_rejected_order_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        apply_fill(order(S.REJECTED), fill("10", "100"))


def test_applying_a_fill_leaves_the_original_order_unchanged() -> None:
    before = order()
    apply_fill(before, fill("10", "100"))
    assert before.filled_qty == 0 and before.avg_fill_price is None and before.status is S.ACCEPTED


# ---- client_order_id -----------------------------------------------------------------------------

def test_client_order_id_is_the_same_for_the_same_signal_and_leg() -> None:
    assert client_order_id("sig-1", "entry") == client_order_id("sig-1", "entry")


@pytest.mark.parametrize(("a", "b"), [
    (("sig-1", "entry"), ("sig-1", "timed-exit")),
    (("sig-1", "entry"), ("sig-2", "entry")),
])
def test_client_order_id_differs_between_signals_and_legs(a: tuple[str, str],
                                                          b: tuple[str, str]) -> None:
    assert client_order_id(*a) != client_order_id(*b)


@pytest.mark.parametrize(("signal_id", "leg"), [
    ("550e8400-e29b-41d4-a716-446655440099", "entry"),
    ("x" * 500, "timed-exit-" + "y" * 200),
    ("", ""),
    ("sigñal-✓", "légé"),
])
def test_client_order_id_fits_in_48_characters_of_plain_ascii(signal_id: str, leg: str) -> None:
    coid = client_order_id(signal_id, leg)
    assert len(coid) <= 48
    assert coid.isascii() and coid.startswith("tw-")
