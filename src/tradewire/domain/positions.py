"""Position: the net quantity of one symbol in one account, derived from its fills."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from tradewire.domain.orders import Fill
from tradewire.domain.values import ZERO


@dataclass(frozen=True, slots=True)
class Position:
    account_id: str
    symbol: str
    qty: Decimal = ZERO  # positive long, negative short
    avg_entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @property
    def is_long(self) -> bool:
        return self.qty > 0

    @property
    def is_short(self) -> bool:
        return self.qty < 0


def apply_fill(position: Position, fill: Fill) -> Position:
    """The position after a fill: adds at a blended price, reduces at a realized profit or loss."""
    signed = fill.qty * fill.side.sign
    qty = position.qty
    pnl = position.realized_pnl - fill.fee
    if qty == 0 or (qty > 0) == (signed > 0):
        new_qty = qty + signed
        avg = (position.avg_entry_price * abs(qty) + fill.price * fill.qty) / abs(new_qty)
        return replace(position, qty=new_qty, avg_entry_price=avg, realized_pnl=pnl)
    closed = min(abs(qty), fill.qty)
    direction = 1 if qty > 0 else -1
    pnl += (fill.price - position.avg_entry_price) * closed * direction
    new_qty = qty + signed
    if new_qty == 0:
        avg = ZERO
    elif (new_qty > 0) == (qty > 0):
        avg = position.avg_entry_price
    else:  # the fill flipped the position: the remainder opens at the fill price
        avg = fill.price
    return replace(position, qty=new_qty, avg_entry_price=avg, realized_pnl=pnl)
