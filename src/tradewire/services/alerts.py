"""Use case: a TradersPost-style alert, with its position-aware meaning, becomes signals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradewire.domain.accounts import Principal
from tradewire.domain.alerts import Alert, Plan, Step, exit_plan, is_stale, plan
from tradewire.domain.errors import Rejected
from tradewire.domain.exit_plan import ExitPlan
from tradewire.domain.orders import OrderStatus
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, QuantityType, Side, new_id
from tradewire.services.audit import order_event, signal_event
from tradewire.services.deps import Deps
from tradewire.services.ingest import IngestResult, ingest_signal, load_account
from tradewire.services.ports import Page, UnitOfWork
from tradewire.services.submit import record_reports


@dataclass(frozen=True)
class AlertResult:
    plan: Plan
    results: list[IngestResult] = field(default_factory=list)
    cancelled: int = 0
    waiting: list[Signal] = field(default_factory=list)


def handle_alert(alert: Alert, principal: Principal, account_id: str, deps: Deps, *,
                 received_at: datetime, route: str) -> AlertResult:
    """Plan the alert against the position held now, then store and send its steps."""
    with deps.uow(write=False) as uow:
        account = load_account(uow, account_id, principal)
        position = uow.positions.get(account_id, alert.ticker)
    if is_stale(alert.sent_at, received_at, account.max_lag_s):
        raise Rejected(f"alert sent at {alert.sent_at} is older than the account's maximum lag "
                       f"of {account.max_lag_s} s", code="stale-signal")
    steps = plan(alert, position.qty)
    cancelled = cancel_open_orders(account_id, alert.ticker, deps) if steps.cancel_open_orders else 0
    if not steps.steps:
        return AlertResult(steps, cancelled=cancelled)
    signals = _signals(alert, steps.steps, account_id, abs(position.qty), received_at, route)
    first, rest = signals[0], signals[1:]
    plans = _exit_plans(alert, signals, deps)

    def store_rest(uow: UnitOfWork, stored: Signal, now: datetime) -> None:
        for waiting in rest:
            uow.signals.add_unique(waiting)
            uow.audit.add(signal_event(waiting, "SignalReceived", now, to_status="waiting",
                                       after=stored.id))
        for signal, wanted in plans:
            uow.exit_plans.add(signal.id, signal.account_id, signal.symbol, wanted, now)

    result = ingest_signal(first, principal, deps, received_at=received_at,
                           alert_at=alert.sent_at,
                           on_stored=store_rest if rest or plans else None)
    return AlertResult(steps, [result], cancelled, rest)


def _signals(alert: Alert, steps: tuple[Step, ...], account_id: str, held: Decimal,
             received_at: datetime, route: str) -> list[Signal]:
    out: list[Signal] = []
    for step in steps:
        whole = step.quantity is None
        signal = Signal(
            id=new_id(), account_id=account_id, symbol=alert.ticker, action=step.action,
            quantity=held if whole or step.quantity is None else step.quantity,
            quantity_type=QuantityType.FIXED if whole else alert.quantity_type,
            execute_mode=ExecuteMode.SCHEDULED if step.after_previous_fill else ExecuteMode.IMMEDIATE,
            created_at=received_at, order_type=alert.order_type, limit_price=alert.limit_price,
            stop_price=alert.stop_price, time_in_force=alert.time_in_force,
            extended_hours=alert.extended_hours, route=route,
            metadata={"alert": {"action": str(alert.action), "extras": alert.extras}},
            after_signal_id=out[-1].id if step.after_previous_fill and out else None,
        )
        if step.after_previous_fill:
            signal.status = signal.initial_status()
        out.append(signal)
    return out


def _exit_plans(alert: Alert, signals: list[Signal], deps: Deps) -> list[tuple[Signal, ExitPlan]]:
    """takeProfit / stopLoss become the exit plan of the step that opens a position."""
    out = []
    for signal in signals:
        if signal.action in (Action.OPEN_LONG, Action.OPEN_SHORT):
            side = Side.BUY if signal.action is Action.OPEN_LONG else Side.SELL
            reference = (alert.limit_price or alert.signal_price
                         or deps.prices.last_price(alert.ticker))
            wanted = exit_plan(alert, side, reference)
            if wanted is not None:
                out.append((signal, wanted))
    return out


def cancel_open_orders(account_id: str, symbol: str, deps: Deps) -> int:
    """Cancel the account's open orders in the symbol (the position stays). Returns how many."""
    now = deps.clock.now()
    with deps.uow() as uow:
        account = uow.accounts.get(account_id)
        open_orders = [o for o in uow.orders.list([account_id], Page(limit=1000), symbol=symbol)
                       if o.status in (OrderStatus.NEW, OrderStatus.ACCEPTED,
                                       OrderStatus.PARTIALLY_FILLED)]
        for order in open_orders:
            if order.status is OrderStatus.NEW:
                withdrawn = order.moved_to(OrderStatus.CANCELED, reason="cancelled by alert")
                if uow.orders.save(withdrawn, OrderStatus.NEW, now):
                    uow.audit.add(order_event(withdrawn, "OrderCanceled", now, from_status="new"))
        uow.commit()
    broker = deps.brokers.for_account(account)
    reports = [(o.client_order_id, r) for o in open_orders if o.status is not OrderStatus.NEW
               for r in [broker.cancel(account_id, o.client_order_id)] if r is not None]
    if reports:
        record_reports(reports, deps)
    return len(open_orders)

