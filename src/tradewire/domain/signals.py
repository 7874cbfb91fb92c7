"""Signal: one instruction to trade, and the moves its status may make."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tradewire.domain.errors import InvalidTransition
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderType,
    QuantityType,
    TimeInForce,
)


class SignalStatus(StrEnum):
    PENDING = "pending"  # waits for a person to process it
    WAITING = "waiting"  # waits for an earlier signal's order to fill (a reversal's entry)
    SCHEDULED = "scheduled"  # waits for its due time
    QUEUED = "queued"  # its order is stored and on its way to the broker
    EXECUTED = "executed"  # the broker accepted its order
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REPLACED = "replaced"  # superseded by a newer signal with the same sourceId


S = SignalStatus
TRANSITIONS: dict[SignalStatus, frozenset[SignalStatus]] = {
    S.PENDING: frozenset({S.QUEUED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.REPLACED}),
    # Released to the scheduler when the earlier fill arrives; cancelled if it never does.
    S.WAITING: frozenset({S.SCHEDULED, S.CANCELLED, S.EXPIRED}),
    S.SCHEDULED: frozenset({S.QUEUED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.REPLACED}),
    # Replace is allowed only while the order has not reached the broker.
    # A market order held for the open expires with its signal when validUntil comes first.
    S.QUEUED: frozenset({S.EXECUTED, S.REJECTED, S.REPLACED, S.EXPIRED}),
    S.EXECUTED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REPLACED: frozenset(),
}

# A signal in these states still holds its sourceId; the others free it for a retry.
HOLDS_SOURCE_ID = frozenset({S.PENDING, S.WAITING, S.SCHEDULED, S.QUEUED, S.EXECUTED, S.CANCELLED, S.EXPIRED})


class ExitTrigger(StrEnum):
    AFTER_FILL = "after_fill"  # `minutes` after the entry fills
    AT_TIME = "at_time"  # the next `at_time` (HH:MM in `zone`) after the fill
    MARKET_CLOSE = "market_close"  # `minutes` before the session's close, or at once as MOC


@dataclass(frozen=True, slots=True)
class ExitRule:
    """How a position opened by a signal is closed again."""

    trigger: ExitTrigger
    minutes: int = 0
    at_time: str | None = None
    zone: str = "UTC"
    immediate: bool = False
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


class LinkKind(StrEnum):
    OCO = "oco"  # one-cancels-other: the first leg to fill cancels the rest
    ALL = "all"  # sent together: if one leg is refused, the others are cancelled


@dataclass(frozen=True, slots=True)
class Leg:
    """A further order of a multi-leg signal (the signal's own fields are its first leg)."""

    symbol: str
    action: Action
    quantity: Decimal
    quantity_type: QuantityType = QuantityType.FIXED
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY


@dataclass(slots=True)
class Signal:
    id: str
    account_id: str
    symbol: str
    action: Action
    quantity: Decimal
    execute_mode: ExecuteMode
    created_at: datetime
    quantity_type: QuantityType = QuantityType.FIXED
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    extended_hours: bool = False
    scheduled_at: datetime | None = None
    valid_until: datetime | None = None
    strategy_id: str | None = None
    source_id: str | None = None
    replace_existing: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    exit_rule: ExitRule | None = None
    status: SignalStatus = SignalStatus.PENDING
    status_reason: str | None = None
    route: str = "api.v1.signals"
    after_signal_id: str | None = None  # sent only once that signal's order has filled
    legs: tuple[Leg, ...] = ()
    link: LinkKind | None = None
    parent_id: str | None = None  # the partner signal this one fans out from
    protection: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)
    # takeProfit / stopLoss as sent; they become the position's exit plan (not stored here)

    def initial_status(self) -> SignalStatus:
        """The status a freshly accepted signal takes from its execute mode."""
        if self.after_signal_id is not None:
            return SignalStatus.WAITING
        return {
            ExecuteMode.IMMEDIATE: SignalStatus.QUEUED,
            ExecuteMode.SCHEDULED: SignalStatus.SCHEDULED,
            ExecuteMode.PENDING: SignalStatus.PENDING,
        }[self.execute_mode]

    def is_expired(self, now: datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until


def check_transition(current: SignalStatus, target: SignalStatus) -> None:
    """Raise unless the table allows moving from `current` to `target`."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"signal cannot move from {current} to {target}")
