"""Arming exit plans from fills, and moving them on the news of their resting exits, inside
the fill's own transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradewire.domain.audit import AuditEvent
from tradewire.domain.exit_plan import (
    ExitKind,
    ExitLeg,
    arm,
    levels,
    on_fill_of_add,
    on_native_fill,
)
from tradewire.domain.native_exits import parse_leg, without
from tradewire.domain.orders import Order, OrderStatus
from tradewire.domain.values import ZERO, OrderPurpose
from tradewire.services.audit import order_event
from tradewire.services.native_exits import NativeWork, held_in_direction, sync
from tradewire.services.ports import MovedUnderUs, UnitOfWork

Arming = tuple[str, str, Decimal | None, Decimal | None]  # key, symbol, below, above


def arming_of(stored: Any) -> Arming:
    """What the trigger book should watch for a stored plan (nothing once it is done)."""
    if not stored.active or stored.state is None:
        return stored.signal_id, stored.symbol, None, None
    return (stored.signal_id, stored.symbol,
            *levels(stored.plan, stored.state, stored.native))


def on_order_filled(uow: UnitOfWork, signal_id: str, before: Order, order: Order,
                    now: datetime, native: frozenset[ExitLeg]) -> Arming | None:
    """Inside the fill's transaction: arm a plan when its entry fills, count an add's fill.
    `native` is what the account's broker can rest (fixed for the plan when it is armed)."""
    if order.status is not OrderStatus.FILLED or before.status is OrderStatus.FILLED:
        return None
    stored = uow.exit_plans.get(signal_id)
    if stored is None or not stored.active or order.purpose is not OrderPurpose.ENTRY:
        return None
    assert order.avg_fill_price is not None
    # The first entry fill arms the plan (a split entry's legs fill in any order); every later
    # one (another leg, a rebuy, a DCA level) adds to what the plan manages.
    legs = stored.native
    if stored.state is None:
        state, legs = arm(stored.plan, order.filled_qty, order.avg_fill_price), native
    else:
        state = on_fill_of_add(stored.state, order.filled_qty, order.avg_fill_price)
    if not uow.exit_plans.save(stored, state=state, native=legs, at=now):
        raise MovedUnderUs(f"exit plan of {signal_id} moved under us; the fill is applied again")
    return (signal_id, stored.symbol, *levels(stored.plan, state, legs))


def on_resting_exit(uow: UnitOfWork, before: Order, order: Order, now: datetime) -> None:
    """A native exit filled (some or all) or was refused: the plan moves as the emulated exit
    would have, or falls back to emulating that leg."""
    if order.exit_leg is None or order.signal_id is None:
        return
    stored = uow.exit_plans.get(order.signal_id)
    if stored is None or stored.state is None:
        return
    leg, index = parse_leg(order.exit_leg)
    filled = order.filled_qty - before.filled_qty
    if filled > 0 and stored.active:
        state = on_native_fill(stored.plan, stored.state, leg, index, filled)
        _save(uow, stored, state=state, active=not state.closed, at=now)
        # Said as the emulated exit says it (a stop hit is heard the same either way).
        level = order.stop_price if leg is ExitLeg.STOP else order.limit_price
        uow.audit.add(order_event(order, "NativeExitFilled", now, exit=str(_kind(stored, order)),
                                  trigger=str(level), leg=order.exit_leg, qty=str(filled),
                                  closed=state.closed))
    elif order.status is OrderStatus.REJECTED and before.status is not OrderStatus.REJECTED \
            and leg in stored.native:
        # The broker will not hold it (fractional stop, a type it refuses): watch it here.
        _save(uow, stored, native=without(stored.native, leg), at=now)
        uow.audit.add(_plan_event(stored, "NativeExitRefused", now, leg=order.exit_leg,
                                  order_id=order.id, reason=order.reason))


def after_reports(uow: UnitOfWork, plans: set[str], positions: set[tuple[str, str]],
                  now: datetime) -> tuple[NativeWork, list[Arming]]:
    """Once a batch of reports is applied: plans whose position another route closed are
    done, and every plan the batch touched (its own orders, or its position) has its resting
    exits brought in step."""
    keys = set(plans) | {p.signal_id for account_id, symbol in positions
                         for p in uow.exit_plans.armed_on(account_id, symbol)}
    work, armings = NativeWork(), []
    for key in sorted(keys):
        stored = uow.exit_plans.get(key)
        if stored is None or stored.state is None:
            continue
        if stored.active and held_in_direction(uow, stored) <= 0 and stored.state.open_qty > 0:
            state = replace(stored.state, open_qty=ZERO, closed=True)
            stored = _save(uow, stored, state=state, active=False, at=now)
            uow.audit.add(_plan_event(stored, "ExitPlanClosed", now,
                                      reason="the position was closed by another order"))
        work.merge(sync(uow, stored, now))
        armings.append(arming_of(stored))
    return work, armings


def resting_orders_of(uow: UnitOfWork, signal_id: str, now: datetime) -> NativeWork:
    """Bring one plan's resting exits in step (a plan changed by a call, or the sweep)."""
    stored = uow.exit_plans.get(signal_id)
    return sync(uow, stored, now) if stored is not None else NativeWork()


def end_plan(uow: UnitOfWork, signal_id: str, now: datetime, *, reason: str) -> NativeWork:
    """Stop a plan (its signal was cancelled): nothing more fires, its resting exits go."""
    stored = uow.exit_plans.get(signal_id)
    if stored is None or not stored.active:
        return NativeWork()
    stored = _save(uow, stored, active=False, at=now)
    uow.audit.add(_plan_event(stored, "ExitPlanCancelled", now, reason=reason))
    return sync(uow, stored, now)


def _kind(stored: Any, order: Order) -> ExitKind:
    """Which rule a filled resting exit stood for: the trailing stop once it is the tighter."""
    if order.exit_leg is not None and order.exit_leg.startswith(str(ExitLeg.TAKE_PROFIT)):
        return ExitKind.TAKE_PROFIT
    fixed = stored.state.stop if stored.state is not None else None
    return ExitKind.STOP_LOSS if order.stop_price == fixed else ExitKind.TRAILING_STOP


def _save(uow: UnitOfWork, stored: Any, *, at: datetime, **changes: Any) -> Any:
    if not uow.exit_plans.save(stored, at=at, **changes):
        raise MovedUnderUs(f"exit plan of {stored.signal_id} moved under us; applied again")
    return uow.exit_plans.get(stored.signal_id)


def _plan_event(stored: Any, event: str, at: datetime, **data: Any) -> AuditEvent:
    return AuditEvent(entity="exit_plan", entity_id=stored.signal_id, event=event, at=at,
                      account_id=stored.account_id, signal_id=stored.signal_id, data=data)
