"""Order: what tradewire asks a broker to do, its lifecycle, and its fills."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tradewire.domain.errors import InvalidTransition
from tradewire.domain.values import ZERO, OrderPurpose, OrderType, Side, TimeInForce


class OrderStatus(StrEnum):
    NEW = "new"  # stored intent, not yet sent
    SUBMITTING = "submitting"  # a submitter holds the lease and may have sent it
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"


_O = OrderStatus
_LIVE = frozenset({_O.ACCEPTED, _O.PARTIALLY_FILLED, _O.FILLED, _O.CANCELED, _O.EXPIRED, _O.REJECTED})
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # A NEW intent may be withdrawn (replace, cancel) before any submitter takes it.
    _O.NEW: frozenset({_O.SUBMITTING, _O.CANCELED, _O.REJECTED}),
    # After a crash the outcome is looked up; any broker state may come back.
    _O.SUBMITTING: _LIVE | {_O.NEW},
    _O.ACCEPTED: frozenset({_O.PARTIALLY_FILLED, _O.FILLED, _O.CANCELED, _O.EXPIRED}),
    _O.PARTIALLY_FILLED: frozenset({_O.PARTIALLY_FILLED, _O.FILLED, _O.CANCELED, _O.EXPIRED}),
    _O.FILLED: frozenset(),
    # A fill can arrive after the cancel was sent.
    _O.CANCELED: frozenset({_O.PARTIALLY_FILLED, _O.FILLED}),
    _O.EXPIRED: frozenset({_O.PARTIALLY_FILLED, _O.FILLED}),
    _O.REJECTED: frozenset(),
}
OPEN_STATUSES = frozenset({_O.NEW, _O.SUBMITTING, _O.ACCEPTED, _O.PARTIALLY_FILLED})
ACKNOWLEDGED = frozenset({_O.ACCEPTED, _O.PARTIALLY_FILLED, _O.FILLED})


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise unless the table allows moving from `current` to `target`."""
    if current != target and target not in TRANSITIONS[current]:
        raise InvalidTransition(f"order cannot move from {current} to {target}")


def client_order_id(signal_id: str, leg: str) -> str:
    """Deterministic id sent to the broker: same signal and leg, same id (max 48 chars)."""
    digest = hashlib.sha256(f"{signal_id}:{leg}".encode()).hexdigest()[:32]
    return f"tw-{digest}"


@dataclass(frozen=True, slots=True)
class Fill:
    fill_id: str
    order_id: str
    account_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    filled_at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    account_id: str
    signal_id: str | None
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    purpose: OrderPurpose
    created_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    extended_hours: bool = False
    status: OrderStatus = OrderStatus.NEW
    filled_qty: Decimal = ZERO
    avg_fill_price: Decimal | None = None
    broker_order_id: str | None = None
    reason: str | None = None
    expires_at: datetime | None = None  # gtd orders only
    link_group: str | None = None  # the legs of one multi-leg signal share it
    link_kind: str | None = None  # "oco" or "all"
    exit_leg: str | None = None  # an exit resting at the broker for its signal's plan (`stop`)

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    def moved_to(self, status: OrderStatus, *, reason: str | None = None) -> Order:
        check_transition(self.status, status)
        return replace(self, status=status, reason=reason or self.reason)


def apply_fill(order: Order, fill: Fill) -> Order:
    """The order after one new fill (the caller has already refused a repeated fill id)."""
    filled = order.filled_qty + fill.qty
    if filled > order.qty:
        raise InvalidTransition(f"fill of {fill.qty} overfills order {order.id}")
    notional = (order.avg_fill_price or ZERO) * order.filled_qty + fill.price * fill.qty
    status = OrderStatus.FILLED if filled == order.qty else OrderStatus.PARTIALLY_FILLED
    check_transition(order.status, status)
    return replace(order, filled_qty=filled, avg_fill_price=notional / filled, status=status)
