"""Use case: run every position's exit plan on the ticks it cares about, exactly once.

A plan's evaluation, the orders it produces and its new state commit together, guarded by the
plan's version: a crash before that commit leaves the plan as it was, so the next tick fires it
again and the orders are stored once (their client_order_ids derive from plan and version).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradewire.domain.exit_plan import ExitAction, ExitKind, on_price
from tradewire.domain.orders import Order, client_order_id
from tradewire.domain.risk import RiskRefused
from tradewire.domain.values import OrderPurpose, OrderType, Side, TimeInForce, new_id
from tradewire.services.audit import order_event
from tradewire.services.deps import Deps
from tradewire.services.exit_arming import after_reports, arming_of
from tradewire.services.native_exits import NativeWork, sync
from tradewire.services.ports import Tick, UnitOfWork
from tradewire.services.risk import check_order
from tradewire.services.submit import settle_native, submit_order

log = logging.getLogger(__name__)


def load_armed(deps: Deps) -> int:
    """Rebuild the trigger book from the database (at start)."""
    with deps.uow(write=False) as uow:
        plans = uow.exit_plans.armed()
    for p in plans:
        deps.exits.arm(*arming_of(p))
    return len(plans)


def resync_resting(deps: Deps) -> int:
    """The sweep: bring every plan with resting exits in step with the broker's side of it
    (a cancel the broker did not answer, a crash between a cancel and its replacement).
    Returns how many plans had work."""
    with deps.uow(write=False) as uow:
        keys = set(uow.exit_plans.with_resting_legs())
        keys |= set(uow.orders.signals_with_resting_exits())
    done = 0
    for key in sorted(keys):
        try:
            with deps.uow() as uow:
                work, armings = after_reports(uow, {key}, set(), deps.clock.now())
                uow.commit()
            for arming in armings:
                deps.exits.arm(*arming)
            settle_native(work, deps)
        except Exception:
            log.exception("bringing the resting exits of %s in step failed; next pass", key)
            continue
        done += bool(work)
    return done


def on_ticks(ticks: Sequence[Tick], deps: Deps) -> int:
    """Evaluate the plans each tick crosses. Returns how many orders they produced."""
    placed = 0
    for tick in ticks:
        for key in deps.exits.fired(tick.symbol, tick.price):
            try:
                placed += _evaluate(key, tick.price, deps)
            except Exception:
                log.exception("exit plan %s failed at %s; it stays as it was", key, tick.price)
                _rearm(key, deps)
    return placed


def _evaluate(signal_id: str, price: Decimal, deps: Deps) -> int:
    now = deps.clock.now()
    with deps.uow() as uow:
        stored = uow.exit_plans.get(signal_id)
        if stored is None or not stored.active or stored.state is None:
            return 0
        actions, state = on_price(stored.plan, stored.state, price, stored.native)
        made = ((_order(stored, action, i, uow, now), action) for i, action in enumerate(actions))
        placed = [(o, a) for o, a in made
                  if o is not None and _allowed(o, price, uow, now, deps)]
        orders = [o for o, _ in placed]
        for order, action in placed:
            if uow.orders.by_client_id(order.client_order_id) is None:
                uow.orders.add(order)
                uow.audit.add(order_event(order, "OrderCreated", now, trigger=str(price),
                                          exit=str(action.kind)))
        if not uow.exit_plans.save(stored, state=state, active=not state.closed, at=now):
            return 0  # another evaluator moved it first; its orders stand
        saved = uow.exit_plans.get(signal_id)
        native = sync(uow, saved, now)  # a moved trailing stop, a smaller position ...
        if orders:
            deps.failpoint("exit-fired")  # fired, nothing stored yet
        uow.commit()
    if orders:
        deps.failpoint("exit-stored")  # stored, not yet sent
    deps.exits.arm(*arming_of(saved))
    # Resting exits the plan no longer wants are cancelled before its market orders go out:
    # a stop that filled meanwhile then shows in the position, and the plan, first.
    settle_native(NativeWork(cancel=native.cancel), deps)
    for order in orders:
        submit_order(order.id, deps)
    settle_native(NativeWork(send=native.send), deps)
    return len(orders)


def _allowed(order: Order, price: Decimal, uow: UnitOfWork, now: datetime, deps: Deps) -> bool:
    """A rebuy or DCA level adds to the position: the account's risk limits apply to it as to
    any entry. A refused add is recorded and dropped; its level is spent."""
    if order.purpose is not OrderPurpose.ENTRY:
        return True
    held = uow.positions.get(order.account_id, order.symbol).qty
    try:
        check_order(uow, order, held, price, now, deps.calendar)
    except RiskRefused as refused:
        uow.audit.add(order_event(order, "AddRefused", now, code=refused.code,
                                  reason=refused.message))
        return False
    return True


def _order(stored: Any, action: ExitAction, index: int, uow: UnitOfWork,
           now: datetime) -> Order | None:
    """The market order an action asks for; a close never exceeds what is held."""
    plan_side: Side = stored.plan.side
    if action.kind is ExitKind.ADD:
        side, qty, purpose = plan_side, action.qty, OrderPurpose.ENTRY
    else:
        held = uow.positions.get(stored.account_id, stored.symbol).qty * plan_side.sign
        side = Side.SELL if plan_side is Side.BUY else Side.BUY
        qty, purpose = min(action.qty, max(held, Decimal(0))), OrderPurpose.EXIT
    if qty <= 0:
        return None
    return Order(id=new_id(), account_id=stored.account_id, signal_id=stored.signal_id,
                 client_order_id=client_order_id(stored.signal_id, f"x{stored.version}-{index}"),
                 symbol=stored.symbol, side=side, qty=qty, order_type=OrderType.MARKET,
                 time_in_force=TimeInForce.GTC, purpose=purpose, created_at=now)


def _rearm(signal_id: str, deps: Deps) -> None:
    with deps.uow(write=False) as uow:
        stored = uow.exit_plans.get(signal_id)
    if stored is not None:
        deps.exits.arm(*arming_of(stored))

