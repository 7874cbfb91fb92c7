"""Audit helpers: one event per state change, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tradewire.domain.audit import AuditEvent
from tradewire.domain.orders import Order
from tradewire.domain.signals import Signal


def signal_event(signal: Signal, event: str, at: datetime, *, from_status: str | None = None,
                 to_status: str | None = None, **data: Any) -> AuditEvent:
    return AuditEvent(entity="signal", entity_id=signal.id, event=event, at=at,
                      account_id=signal.account_id, signal_id=signal.id,
                      from_status=from_status, to_status=to_status, data=data)


def order_event(order: Order, event: str, at: datetime, *, from_status: str | None = None,
                **data: Any) -> AuditEvent:
    return AuditEvent(entity="order", entity_id=order.id, event=event, at=at,
                      account_id=order.account_id, signal_id=order.signal_id,
                      from_status=from_status, to_status=str(order.status), data=data)
