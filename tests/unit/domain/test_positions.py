"""Positions derived from fills: blended entries, realized P&L, flips, shorts and fees."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradewire.domain.orders import Fill
from tradewire.domain.positions import Position, apply_fill
from tradewire.domain.values import Side

AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
BUY, SELL = Side.BUY, Side.SELL


def fill(side: Side, qty: str, price: str, fee: str = "0") -> Fill:
    return Fill(fill_id="f", order_id="o", account_id="a1", symbol="AAPL", side=side,
                qty=Decimal(qty), price=Decimal(price), fee=Decimal(fee), filled_at=AT)


def after(*fills: Fill) -> Position:
    position = Position(account_id="a1", symbol="AAPL")
    for f in fills:
        position = apply_fill(position, f)
    return position


@pytest.mark.parametrize(("fills", "qty", "avg_entry_price", "realized_pnl"), [
    pytest.param([fill(BUY, "10", "100")], "10", "100", "0", id="open-long"),
    pytest.param([fill(BUY, "10", "100"), fill(BUY, "10", "110")], "20", "105", "0",
                 id="add-at-blended-price"),
    pytest.param([fill(BUY, "3", "10"), fill(BUY, "1", "11")], "4", "10.25", "0",
                 id="add-weighted-by-quantity"),
    pytest.param([fill(BUY, "10", "100"), fill(SELL, "4", "110")], "6", "100", "40",
                 id="partial-close-at-a-profit-keeps-the-entry-price"),
    pytest.param([fill(BUY, "10", "100"), fill(SELL, "10", "90")], "0", "0", "-100",
                 id="full-close-at-a-loss"),
    pytest.param([fill(BUY, "10", "100"), fill(SELL, "4", "110"), fill(SELL, "6", "120")],
                 "0", "0", "160", id="close-in-two-steps"),
    pytest.param([fill(BUY, "10", "100"), fill(SELL, "15", "110")], "-5", "110", "100",
                 id="flip-long-to-short-opens-the-rest-at-the-fill-price"),
    pytest.param([fill(SELL, "10", "50")], "-10", "50", "0", id="open-short"),
    pytest.param([fill(SELL, "10", "50"), fill(SELL, "10", "60")], "-20", "55", "0",
                 id="add-to-short-at-blended-price"),
    pytest.param([fill(SELL, "10", "50"), fill(BUY, "10", "40")], "0", "0", "100",
                 id="cover-short-at-a-profit"),
    pytest.param([fill(SELL, "10", "50"), fill(BUY, "4", "55")], "-6", "50", "-20",
                 id="partial-cover-of-short-at-a-loss"),
    pytest.param([fill(SELL, "10", "50"), fill(BUY, "15", "45")], "5", "45", "50",
                 id="flip-short-to-long"),
    pytest.param([fill(BUY, "10", "100"), fill(SELL, "10", "90"), fill(BUY, "2", "95")],
                 "2", "95", "-100", id="reopen-after-close-starts-a-fresh-entry-price"),
    pytest.param([fill(BUY, "10", "100", fee="1")], "10", "100", "-1",
                 id="fee-on-entry-is-a-realized-cost"),
    pytest.param([fill(BUY, "10", "100", fee="1"), fill(SELL, "10", "110", fee="1.1")],
                 "0", "0", "97.9", id="fees-reduce-realized-pnl"),
    pytest.param([fill(SELL, "10", "50", fee="0.5"), fill(BUY, "10", "40", fee="0.4")],
                 "0", "0", "99.1", id="fees-reduce-realized-pnl-of-shorts"),
])
def test_position_after_fills(fills: list[Fill], qty: str, avg_entry_price: str,
                              realized_pnl: str) -> None:
    position = after(*fills)
    assert position.qty == Decimal(qty)
    assert position.avg_entry_price == Decimal(avg_entry_price)
    assert position.realized_pnl == Decimal(realized_pnl)


@pytest.mark.parametrize(("fills", "is_long", "is_short"), [
    ([], False, False),
    ([fill(BUY, "1", "10")], True, False),
    ([fill(SELL, "1", "10")], False, True),
    ([fill(BUY, "1", "10"), fill(SELL, "1", "11")], False, False),
])
def test_a_position_is_long_short_or_flat_by_the_sign_of_its_quantity(
        fills: list[Fill], is_long: bool, is_short: bool) -> None:
    position = after(*fills)
    assert (position.is_long, position.is_short) == (is_long, is_short)


def test_a_fill_leaves_the_earlier_position_unchanged() -> None:
    flat = Position(account_id="a1", symbol="AAPL")
    apply_fill(flat, fill(BUY, "10", "100"))
    assert flat.qty == 0 and flat.realized_pnl == 0
