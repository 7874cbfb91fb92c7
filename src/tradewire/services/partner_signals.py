"""Use cases of the partner signal API: create (fan out), and cancel with what it opened."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.channels import Channel
from tradewire.domain.errors import TradewireError
from tradewire.domain.exit_plan import ExitPlan, Target
from tradewire.domain.orders import OPEN_STATUSES
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, Side, new_id
from tradewire.services.channels import (
    ChildResult,
    check_limits,
    children,
    entry_child,
    fan_out,
    load_parent,
)
from tradewire.services.deps import Deps
from tradewire.services.ingest import ingest_signal
from tradewire.services.orders import cancel_orders


@dataclass(frozen=True)
class Created:
    parent_id: str
    refused: str | None = None
    children: tuple[ChildResult, ...] = ()


def create(spec: Any, channel: Channel, deps: Deps) -> Created:
    """Store the partner signal, then one child per subscriber, sent concurrently."""
    parent_id = new_id()
    refused = check_limits(channel, spec.stop_loss is not None, deps)
    if refused is not None:
        return Created(parent_id, refused)
    now = deps.clock.now()
    plan = exit_plan_of(spec)
    with deps.uow() as uow:
        uow.partner_signals.add({
            "id": parent_id, "channel_id": channel.id, "version": spec.version,
            "symbol": spec.symbol, "exchange": spec.exchange, "side": spec.side,
            "entry_min": spec.entry_min, "entry_max": spec.entry_max,
            "plan": {"targets": [str(t) for t in spec.targets],
                     "stop_loss": str(spec.stop_loss) if spec.stop_loss is not None else None},
            "invest": spec.invest, "ttl_ms": spec.ttl_ms, "leverage": spec.leverage,
            "margin_type": spec.margin_type, "status": "active", "body": spec.body,
            "created_at": now, "updated_at": now})
        uow.commit()
    long = spec.side == "long"
    price = spec.entry_mid or (spec.entry_max if long else spec.entry_min)
    make = entry_child(parent_id=parent_id, symbol=spec.symbol, side=spec.side, price=price,
                       invest=spec.invest, leverage=spec.leverage, ttl_ms=spec.ttl_ms, now=now,
                       route=f"partner.{spec.version}.signal")
    results = fan_out(channel, parent_id, make, deps, needs_equity=False, plan=plan)
    return Created(parent_id, None, tuple(results))


def exit_plan_of(spec: Any) -> ExitPlan:
    """The plan every child arms when its entry fills: an equal-share ladder and a stop."""
    n = len(spec.targets)
    share = (Decimal(1) / n).quantize(Decimal("1e-9"))
    shares = [share] * (n - 1) + [Decimal(1) - share * (n - 1)]  # summing to exactly one
    return ExitPlan(side=Side.BUY if spec.side == "long" else Side.SELL,
                    targets=tuple(Target(price, s) for price, s in zip(spec.targets, shares,
                                                                          strict=True)),
                    stop_loss=spec.stop_loss)


def cancel(parent_id: str, channel: Channel, deps: Deps) -> list[ChildResult]:
    """Cancel the signal: open orders of every child are cancelled, positions closed at market."""
    load_parent(parent_id, channel, deps)
    now = deps.clock.now()
    with deps.uow() as uow:
        uow.partner_signals.update(parent_id, now, status="cancelled")
        kids = uow.partner_signals.children(parent_id)
        open_orders = [o for kid in kids for o in uow.orders.of_signal(kid.id)
                       if o.status in OPEN_STATUSES]
        uow.commit()
    cancel_orders(open_orders, deps, reason=f"partner signal {parent_id} cancelled")
    return [_close(kid, parent_id, deps) for kid in children(parent_id, deps)]


def _close(kid: Signal, parent_id: str, deps: Deps) -> ChildResult:
    with deps.uow(write=False) as uow:
        position = uow.positions.get(kid.account_id, kid.symbol)
    if position.qty == 0:
        return ChildResult(kid.account_id, kid.id, "flat")
    closing = Signal(
        id=new_id(), account_id=kid.account_id, symbol=kid.symbol,
        action=Action.CLOSE_LONG if position.qty > 0 else Action.CLOSE_SHORT,
        quantity=abs(position.qty), execute_mode=ExecuteMode.IMMEDIATE,
        created_at=deps.clock.now(), source_id=f"partner:{parent_id}:cancel",
        parent_id=parent_id, route="partner.cancel")
    principal = Principal(user_id=f"partner-signal:{parent_id}", is_admin=False,
                          scopes=frozenset({Scope.SIGNALS_WRITE}),
                          account_ids=frozenset({kid.account_id}), via="partner")
    try:
        result = ingest_signal(closing, principal, deps)
    except TradewireError as exc:
        return ChildResult(kid.account_id, None, "rejected", reason=exc.message)
    return ChildResult(kid.account_id, result.signal.id, str(result.signal.status),
                       result.order.id if result.order else None)
