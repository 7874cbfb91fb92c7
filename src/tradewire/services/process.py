"""Use cases that move a stored signal on: process it, cancel it, expire it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Principal
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.orders import Order
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import QuantityType
from tradewire.services import logcontext
from tradewire.services.audit import order_event, signal_event
from tradewire.services.deps import Deps
from tradewire.services.orders import orders_for, send_signal_orders
from tradewire.services.ports import UnitOfWork
from tradewire.services.submit import RESERVATION, reservation


def visible_signal(uow: UnitOfWork, signal_id: str, principal: Principal) -> Signal:
    """The signal if the caller may see it; otherwise NotFound, the same as a missing one."""
    signal = uow.signals.get(signal_id)
    account = uow.accounts.get(signal.account_id) if signal else None
    if signal is None or account is None or not principal.can_see(account):
        raise NotFound(f"signal {signal_id} not found", code="SIGNAL_NOT_FOUND")
    return signal


def process_pending(signal_id: str, principal: Principal, deps: Deps) -> tuple[Signal, Order | None]:
    """A person approves a pending signal: its order is stored and sent."""
    with deps.uow(write=False) as uow:
        signal = visible_signal(uow, signal_id, principal)
    if signal.status is not SignalStatus.PENDING:
        raise Rejected(f"signal {signal_id} is {signal.status}, not pending")
    order = queue_signal(signal, deps, expected=SignalStatus.PENDING)
    return _reload(signal_id, deps), order


BeforeQueue = Callable[[UnitOfWork, Signal, datetime], None]


def queue_signal(signal: Signal, deps: Deps, *, expected: SignalStatus,
                 before_queue: BeforeQueue | None = None) -> Order | None:
    """Move a waiting signal to queued with its order stored, then send the order.

    `before_queue` runs first inside the same transaction and may raise to refuse (a one-use
    token is consumed there, so using it and queueing the order are one atomic step).
    """
    logcontext.bind(signal_id=signal.id, account_id=signal.account_id)
    equity = _equity(signal, deps)
    now = deps.clock.now()
    with deps.uow() as uow:
        current = uow.signals.get(signal.id)
        if before_queue is not None and current is not None:
            before_queue(uow, current, now)
        if current is None or current.status is not expected:
            raise Rejected(f"signal {signal.id} is {current.status if current else 'gone'}")
        if current.is_expired(now):
            expire(uow, current, now, "validUntil passed before it was processed")
            uow.commit()
            raise Rejected(f"signal {signal.id} expired at {current.valid_until}",
                           code="SIGNAL_EXPIRED")
        try:
            orders = orders_for(uow, current, equity=equity, price_of=uow.market.last_price,
                                now=now, calendar=deps.calendar)
        except Rejected as refused:
            uow.signals.move(current, SignalStatus.REJECTED, now, reason=refused.message,
                             free_source_id=True)
            uow.audit.add(signal_event(current, "SignalRejected", now, from_status=str(expected),
                                       to_status="rejected", code=refused.code))
            uow.commit()
            raise
        uow.signals.move(current, SignalStatus.QUEUED, now)
        uow.timings.mark(current.id, received_at=now, decided_at=now)
        for order in orders:
            uow.orders.add(order, reserved_by=reservation(order, deps),
                           reserved_until=now + RESERVATION)
        uow.jobs.cancel_for_signal(current.id, now, "signal processed")
        uow.audit.add_many([
            signal_event(current, "SignalQueued", now, from_status=str(expected),
                         to_status="queued"),
            *(order_event(order, "OrderCreated", now) for order in orders),
        ])
        uow.commit()
    return send_signal_orders(orders, deps)[0]


def cancel_signal(signal_id: str, principal: Principal, deps: Deps, *,
                  reason: str = "cancelled by user",
                  cancellable: tuple[SignalStatus, ...] = (SignalStatus.PENDING,
                                                           SignalStatus.SCHEDULED),
                  **event: Any) -> Signal:
    """Withdraw a pending or scheduled signal (its jobs are cancelled with it). Its sourceId
    stays taken: a resend is a duplicate, not a new signal."""
    now = deps.clock.now()
    with deps.uow() as uow:
        signal = visible_signal(uow, signal_id, principal)
        if signal.status not in cancellable:
            raise Rejected(f"signal {signal_id} is {signal.status} and can no longer be cancelled")
        if not uow.signals.move(signal, SignalStatus.CANCELLED, now, reason=reason):
            raise Rejected(f"signal {signal_id} changed while cancelling; retry", code="CONFLICT")
        uow.jobs.cancel_for_signal(signal.id, now, "signal cancelled")
        uow.audit.add(signal_event(signal, "SignalCancelled", now, from_status=str(signal.status),
                                   to_status="cancelled", reason=reason, **event))
        uow.commit()
    return _reload(signal_id, deps)


def expire(uow: UnitOfWork, signal: Signal, now: datetime, reason: str) -> bool:
    if not uow.signals.move(signal, SignalStatus.EXPIRED, now, reason=reason):
        return False
    uow.jobs.cancel_for_signal(signal.id, now, reason)
    uow.audit.add(signal_event(signal, "SignalExpired", now, from_status=str(signal.status),
                               to_status="expired", reason=reason))
    return True


def _equity(signal: Signal, deps: Deps) -> Decimal | None:
    if signal.quantity_type is not QuantityType.PERCENT_EQUITY:
        return None
    with deps.uow(write=False) as uow:
        account = uow.accounts.get(signal.account_id)
    return deps.brokers.for_account(account).account(account.id).equity


def _reload(signal_id: str, deps: Deps) -> Signal:
    with deps.uow(write=False) as uow:
        signal = uow.signals.get(signal_id)
    assert signal is not None
    return signal
