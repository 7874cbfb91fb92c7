"""Keeping a plan's native exits at the broker in step with the plan, inside the transaction
that moved the plan (or the position).

The plan says which orders should rest (domain/native_exits.resting); this compares them with
the plan's open resting orders. An order no longer wanted is withdrawn here if it was never
sent, otherwise named for cancelling at the broker after the commit. A wanted order is stored
as an ordinary order intent (its client_order_id deterministic from the signal, the leg and
how many orders that leg had before), to be sent after the commit through the submit path:
a crash in between leaves the intent for the worker's sweep, and an order the broker took
before the crash is found by its client_order_id. A replacement is stored only once the
order it replaces is no longer open, so two stops never rest for one plan; two transactions
storing the same replacement collide on the client_order_id's unique index.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradewire.domain.exit_plan import ExitLeg
from tradewire.domain.native_exits import RESTING_TIF, Resting, resting
from tradewire.domain.orders import OPEN_STATUSES, Order, OrderStatus, client_order_id
from tradewire.domain.values import ZERO, OrderPurpose, new_id
from tradewire.services.audit import order_event
from tradewire.services.ports import UnitOfWork

SUPERSEDED = "superseded by the exit plan"  # the reason on a resting exit we cancel ourselves


@dataclass
class NativeWork:
    """What a transaction left for after its commit: cancel these, then send those."""

    cancel: list[Order] = field(default_factory=list)
    send: list[str] = field(default_factory=list)  # order ids

    def __bool__(self) -> bool:
        return bool(self.cancel or self.send)

    def merge(self, other: NativeWork) -> NativeWork:
        self.cancel += [o for o in other.cancel if o.id not in {c.id for c in self.cancel}]
        self.send += [i for i in other.send if i not in self.send]
        return self


def held_in_direction(uow: UnitOfWork, stored: Any) -> Decimal:
    """The plan's position as a positive quantity (0 when flat or the other way)."""
    qty: Decimal = uow.positions.get(stored.account_id, stored.symbol).qty * stored.plan.side.sign
    return max(qty, ZERO)


def sync(uow: UnitOfWork, stored: Any, now: datetime) -> NativeWork:
    """Bring the plan's resting orders in step with `stored` (the plan as just saved)."""
    work = NativeWork()
    mine = [o for o in uow.orders.of_signal(stored.signal_id) if o.exit_leg is not None]
    current = [o for o in mine if o.status in OPEN_STATUSES]
    if not stored.native and not current:
        return work
    wanted = resting(stored.plan, stored.state, stored.native, held_in_direction(uow, stored)) \
        if stored.active else []
    kept = [o for o in current if any(_same(o, r) for r in wanted)]
    for order in current:
        if order not in kept:
            _retire(uow, order, now, work)
    busy = {o.exit_leg for o in current}  # a leg waits for its old order to end
    group = next((o.link_group for o in kept if o.link_group), None) or new_id()
    for want in wanted:
        if any(_same(o, want) for o in kept) or _leg_of(want) in {_leg_name(b) for b in busy}:
            continue
        order = _order(stored, want, len([o for o in mine if _leg_name(o.exit_leg) == _leg_of(want)]),
                       group if len(wanted) > 1 else None, now)
        if uow.orders.by_client_id(order.client_order_id) is None:
            uow.orders.add(order)
            uow.audit.add(order_event(order, "OrderCreated", now, exit=want.name,
                                      native=True))
            work.send.append(order.id)
    return work


def _retire(uow: UnitOfWork, order: Order, now: datetime, work: NativeWork) -> None:
    """An order the plan no longer wants: withdrawn if never sent, else cancelled later."""
    if order.status is OrderStatus.NEW:
        withdrawn = order.moved_to(OrderStatus.CANCELED, reason=SUPERSEDED)
        if uow.orders.save(withdrawn, OrderStatus.NEW, now):
            uow.audit.add(order_event(withdrawn, "OrderCanceled", now, from_status="new",
                                      reason=SUPERSEDED))
            return
    if order.reason != SUPERSEDED:  # marked: never kept again, whatever its price and size
        uow.orders.save(replace(order, reason=SUPERSEDED), order.status, now)
    work.cancel.append(order)


def _same(order: Order, want: Resting) -> bool:
    """The resting order already does what is wanted (what is left of it, at that price)."""
    price = order.stop_price if want.leg is ExitLeg.STOP else order.limit_price
    return (order.exit_leg == want.name and order.side is want.side and price == want.price
            and order.remaining_qty == want.qty and order.reason != SUPERSEDED)


def _leg_name(name: str | None) -> str:
    """`take_profit:1` and `take_profit:2` are one leg: one take-profit rests at a time."""
    return (name or "").partition(":")[0]


def _leg_of(want: Resting) -> str:
    return str(want.leg)


def _order(stored: Any, want: Resting, nth: int, group: str | None, now: datetime) -> Order:
    stop = want.leg is ExitLeg.STOP
    return Order(
        id=new_id(), account_id=stored.account_id, signal_id=stored.signal_id,
        client_order_id=client_order_id(stored.signal_id, f"n{nth}-{want.leg}"),
        symbol=stored.symbol, side=want.side, qty=want.qty, order_type=want.order_type,
        time_in_force=RESTING_TIF, purpose=OrderPurpose.EXIT, created_at=now,
        stop_price=want.price if stop else None, limit_price=None if stop else want.price,
        link_group=group, link_kind="oco" if group is not None else None, exit_leg=want.name)
