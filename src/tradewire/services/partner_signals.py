"""Use cases of the partner signal API: create (fan out), and cancel with what it opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.channels import AllocationType, Channel
from tradewire.domain.errors import Rejected, TradewireError
from tradewire.domain.exit_plan import AddLevel, ExitPlan, PlanState, Target, Trailing
from tradewire.domain.orders import OPEN_STATUSES
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, Side, new_id, round_qty
from tradewire.services.channels import (
    ChildResult,
    check_limits,
    children,
    entry_child,
    fan_out,
    load_parent,
)
from tradewire.services.deps import Deps
from tradewire.services.exit_arming import arming_of, end_plan, resting_orders_of
from tradewire.services.ingest import ingest_signal
from tradewire.services.native_exits import NativeWork
from tradewire.services.orders import cancel_orders
from tradewire.services.submit import settle_native


@dataclass(frozen=True)
class Created:
    parent_id: str
    refused: str | None = None
    children: tuple[ChildResult, ...] = ()


def create(spec: Any, channel: Channel, deps: Deps) -> Created:
    """Store the partner signal, then one child per subscriber, sent concurrently."""
    parent_id = new_id()
    refused = check_limits(channel, spec.stop_loss is not None, deps) or _capital_at_risk(
        spec, channel, deps)
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
    make = entry_child(parent_id=parent_id, symbol=spec.symbol, side=spec.side,
                       entries=entry_prices(spec), invest=spec.invest, leverage=spec.leverage,
                       ttl_ms=spec.ttl_ms, now=now,
                       route=f"partner.{spec.version}.signal")
    results = fan_out(channel, parent_id, make, deps, needs_equity=False, plan=plan)
    return Created(parent_id, None, tuple(results))


def entry_prices(spec: Any) -> list[tuple[Decimal, Decimal]]:
    """(price, share in percent) of each entry order: V2's entry_allocation splits it across
    the range's minimum, mid and maximum; otherwise one order at the edge (or the mid)."""
    hundred = Decimal(100)
    if spec.entry_allocation:
        prices = {1: [spec.entry_max if spec.side == "long" else spec.entry_min],
                  2: [spec.entry_min, spec.entry_max],
                  3: [spec.entry_min, spec.entry_mid, spec.entry_max]}[len(spec.entry_allocation)]
        return [(p, s) for p, s in zip(prices, spec.entry_allocation, strict=True) if s > 0]
    edge = spec.entry_max if spec.side == "long" else spec.entry_min
    return [(spec.entry_mid or edge, hundred)]


def _capital_at_risk(spec: Any, channel: Channel, deps: Deps) -> str | None:
    """Refuse a signal whose subscribers together would risk more than the channel allows:
    what each invests times the distance to the stop (the whole investment without a stop)."""
    if channel.max_capital_at_risk is None:
        return None
    entry = spec.entry_mid or (spec.entry_max if spec.side == "long" else spec.entry_min)
    loss_share = abs(entry - spec.stop_loss) / entry if spec.stop_loss is not None else Decimal(1)
    with deps.uow(write=False) as uow:
        subs = [s for s in uow.channels.subscribers(channel.id) if s.auto_execute]
    invested = sum((s.allocation * spec.invest / 100 * min(spec.leverage, s.leverage_cap)
                    for s in subs if s.allocation_type is AllocationType.AMOUNT), Decimal(0))
    at_risk = invested * loss_share
    if at_risk > channel.max_capital_at_risk:
        return (f"this signal puts {at_risk:.2f} at risk across subscribers; the channel allows "
                f"{channel.max_capital_at_risk}")
    return None


def exit_plan_of(spec: Any) -> ExitPlan:
    """The plan every child arms when its entry fills: an equal-share ladder and a stop."""
    n = len(spec.targets)
    share = (Decimal(1) / n).quantize(Decimal("1e-9"))
    shares = [share] * (n - 1) + [Decimal(1) - share * (n - 1)]  # summing to exactly one
    return ExitPlan(side=Side.BUY if spec.side == "long" else Side.SELL,
                    targets=tuple(Target(price, s) for price, s in zip(spec.targets, shares,
                                                                          strict=True)),
                    stop_loss=spec.stop_loss, break_even_after_first=spec.break_even)


def cancel(parent_id: str, channel: Channel, deps: Deps) -> list[ChildResult]:
    """Cancel the signal: open orders of every child are cancelled, positions closed at market."""
    load_parent(parent_id, channel, deps)
    now = deps.clock.now()
    with deps.uow() as uow:
        uow.partner_signals.update(parent_id, now, status="cancelled")
        kids = uow.partner_signals.children(parent_id)
        resting = NativeWork()
        for kid in kids:  # the plans end first: their resting exits are cancelled, not replaced
            resting.merge(end_plan(uow, kid.id, now, reason=f"partner signal {parent_id} cancelled"))
        open_orders = [o for kid in kids for o in uow.orders.of_signal(kid.id)
                       if o.status in OPEN_STATUSES and o.exit_leg is None]
        uow.commit()
    settle_native(resting, deps)
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


PlanChange = Callable[[ExitPlan, PlanState | None], tuple[ExitPlan, PlanState | None]]


def amend(parent_id: str, channel: Channel, change: PlanChange, deps: Deps,
          *, body: dict[str, Any] | None = None) -> int:
    """Change every live child's plan (a compare-and-set per plan) and re-arm it at once."""
    parent = load_parent(parent_id, channel, deps)
    if parent["status"] != "active":
        raise Rejected(f"signal {parent_id} is {parent['status']}", code="SIGNAL_CLOSED")
    now = deps.clock.now()
    rearm, native = [], NativeWork()
    with deps.uow() as uow:
        for kid in uow.partner_signals.children(parent_id):
            stored = uow.exit_plans.get(kid.id)
            if stored is None or not stored.active:
                continue
            plan, state = change(stored.plan, stored.state)
            if not uow.exit_plans.save(stored, plan=plan, state=state, at=now):
                raise Rejected("the plan changed meanwhile; retry", code="CONFLICT")
            native.merge(resting_orders_of(uow, kid.id, now))  # a moved stop rests anew
            if state is not None and not state.closed:
                rearm.append(arming_of(uow.exit_plans.get(kid.id)))
        calls = [*list(parent["body"].get("calls", [])), body or {}]
        uow.partner_signals.update(parent_id, now, body={**parent["body"], "calls": calls})
        uow.commit()
    for key, symbol, below, above in rearm:
        deps.exits.arm(key, symbol, below, above)
    settle_native(native, deps)
    return len(rearm)


def add_target(price: Decimal, share: Decimal | None) -> PlanChange:
    """A further take-profit target; without a share it takes what the ladder leaves."""

    def change(plan: ExitPlan, state: PlanState | None) -> tuple[ExitPlan, PlanState | None]:
        left = Decimal(1) - sum((t.share for t in plan.targets), Decimal(0))
        take = share if share is not None else left
        if take <= 0 or take > left:
            raise Rejected(f"the ladder has {left} of the position left to assign",
                           code="LADDER_FULL")
        _check_side(plan, state, price, favourable=True, what="a take-profit target")
        return replace(plan, targets=(*plan.targets, Target(price, take))), state

    return change


def set_trailing(trailing: Trailing) -> PlanChange:
    def change(plan: ExitPlan, state: PlanState | None) -> tuple[ExitPlan, PlanState | None]:
        state = replace(state, trail_anchor=None) if state is not None else None
        return replace(plan, trailing=trailing), state

    return change


def add_level(price: Decimal, invest_percent: Decimal) -> PlanChange:
    """A rebuy zone or DCA level: add `invest`% of the child's entry quantity at `price`."""

    def change(plan: ExitPlan, state: PlanState | None) -> tuple[ExitPlan, PlanState | None]:
        _check_side(plan, state, price, favourable=False, what="a rebuy or DCA level")
        base = state.entry_qty if state is not None else Decimal(0)
        qty = round_qty(base * invest_percent / 100)
        if qty <= 0:
            raise Rejected("the entry has not filled yet: nothing to size the level from",
                           code="NOT_ENTERED")
        return replace(plan, adds=(*plan.adds, AddLevel(price, qty))), state

    return change


def update_prices(stop_loss: Decimal | None, targets: dict[int, Decimal]) -> PlanChange:
    """New stop and target prices (targets by their 1-based number, nearest first)."""

    def change(plan: ExitPlan, state: PlanState | None) -> tuple[ExitPlan, PlanState | None]:
        ladder = list(plan.targets)
        for number, price in targets.items():
            if not 1 <= number <= len(ladder):
                raise Rejected(f"there is no target {number}", code="NO_SUCH_TARGET")
            if state is not None and number <= state.targets_hit:
                raise Rejected(f"target {number} has already been reached", code="TARGET_HIT")
            ladder[number - 1] = Target(price, ladder[number - 1].share)
        plan = replace(plan, targets=tuple(ladder),
                       stop_loss=stop_loss if stop_loss is not None else plan.stop_loss)
        if state is not None and stop_loss is not None:
            state = replace(state, stop=stop_loss)
        return plan, state

    return change


def _check_side(plan: ExitPlan, state: PlanState | None, price: Decimal, *, favourable: bool,
                what: str) -> None:
    if state is None:
        return
    gains = (price > state.avg_entry_price) == (plan.side is Side.BUY)
    if gains != favourable:
        side = "above" if (plan.side is Side.BUY) == favourable else "below"
        raise Rejected(f"{what} must be {side} the entry price {state.avg_entry_price}",
                       code="WRONG_SIDE")
