"""Arming exit plans from fills, inside the fill's own transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradewire.domain.exit_plan import arm, levels, on_fill_of_add
from tradewire.domain.orders import Order, OrderStatus
from tradewire.domain.values import OrderPurpose
from tradewire.services.ports import UnitOfWork

Arming = tuple[str, str, Decimal | None, Decimal | None]  # key, symbol, below, above


def on_order_filled(uow: UnitOfWork, signal_id: str, before: Order, order: Order,
                    now: datetime) -> Arming | None:
    """Inside the fill's transaction: arm a plan when its entry fills, count an add's fill."""
    if order.status is not OrderStatus.FILLED or before.status is OrderStatus.FILLED:
        return None
    stored = uow.exit_plans.get(signal_id)
    if stored is None or not stored.active or order.purpose is not OrderPurpose.ENTRY:
        return None
    assert order.avg_fill_price is not None
    # The first entry fill arms the plan (a split entry's legs fill in any order); every later
    # one (another leg, a rebuy, a DCA level) adds to what the plan manages.
    if stored.state is None:
        state = arm(stored.plan, order.filled_qty, order.avg_fill_price)
    else:
        state = on_fill_of_add(stored.state, order.filled_qty, order.avg_fill_price)
    if not uow.exit_plans.save(stored, state=state, at=now):
        raise RuntimeError(f"exit plan of {signal_id} moved under us; the fill is applied again")
    return (signal_id, stored.symbol, *levels(stored.plan, state))
