"""The orders a signal asks for (one per leg), and sending a signal's orders as linked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from tradewire.domain.accounts import Account
from tradewire.domain.intents import counts_toward_working, entry_order, leg_signal, linked
from tradewire.domain.orders import Order, OrderStatus
from tradewire.domain.signals import LinkKind, Signal
from tradewire.domain.values import ZERO, new_id
from tradewire.services.audit import order_event
from tradewire.services.deps import Deps
from tradewire.services.ports import MarketCalendar, UnitOfWork
from tradewire.services.risk import check_order
from tradewire.services.submit import Seen, record_reports, submit_after_commit


def orders_for(uow: UnitOfWork, signal: Signal, *, equity: Decimal | None,
               price_of: Callable[[str], Decimal | None], now: datetime,
               calendar: MarketCalendar) -> list[Order]:
    """One order per leg, each sized, checked against the position and what is working, and
    against the account's risk limits (RiskRefused, a Rejected, names the limit)."""
    specs = [signal, *(leg_signal(signal, leg) for leg in signal.legs)]
    added: dict[str, Decimal] = {}
    out = []
    for index, spec in enumerate(specs):
        position = uow.positions.lock(spec.account_id, spec.symbol, now)
        working = uow.orders.working_qty(spec.account_id, spec.symbol)
        if counts_toward_working(signal):
            working += added.get(spec.symbol, ZERO)
        last = price_of(spec.symbol)
        order = entry_order(spec, order_id=new_id(), at=now, equity=equity,
                            last_price=last, working_qty=working, position=position)
        order = linked(order, signal, index)
        held = (position.qty if position is not None else ZERO) + working
        check_order(uow, order, held, last, now, calendar)
        added[spec.symbol] = added.get(spec.symbol, ZERO) + order.side.sign * order.qty
        out.append(order)
    return out


def send_signal_orders(orders: list[Order], deps: Deps, account: Account | None = None,
                       claimed: frozenset[str] = frozenset(), *, seen: Seen | None = None
                       ) -> list[Order | None]:
    """Send each stored order (those in `claimed` already hold their lease); legs sent
    together fall together when one is refused. `seen`: see `record_reports` (emptied when
    legs were cancelled after, which may move their signal again)."""
    sent = [submit_after_commit(order, deps, account, claimed=order.id in claimed, seen=seen)
            for order in orders]
    together = any(o.link_kind == str(LinkKind.ALL) for o in orders)
    if together and any(o is not None and o.status is OrderStatus.REJECTED for o in sent):
        if seen is not None:
            seen.clear()
        cancel_orders([o for o in sent if o is not None and o.status is not OrderStatus.REJECTED],
                      deps, reason="another leg sent with it was refused")
    return sent


def cancel_orders(orders: list[Order], deps: Deps, *, reason: str) -> int:
    """Cancel orders: withdrawn here while unsent, else cancelled at the broker."""
    now = deps.clock.now()
    at_broker = []
    with deps.uow() as uow:
        accounts = {o.account_id: uow.accounts.get(o.account_id) for o in orders}
        for order in orders:
            current = uow.orders.get(order.id)
            if current is None:
                continue
            if current.status is OrderStatus.NEW:
                withdrawn = current.moved_to(OrderStatus.CANCELED, reason=reason)
                if uow.orders.save(withdrawn, OrderStatus.NEW, now):
                    uow.audit.add(order_event(withdrawn, "OrderCanceled", now, from_status="new",
                                              reason=reason))
            elif current.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
                at_broker.append(current)
        uow.commit()
    reports = []
    for order in at_broker:
        report = deps.brokers.for_account(accounts[order.account_id]).cancel(
            order.account_id, order.client_order_id)
        if report is not None:
            reports.append((order.client_order_id, report))
    if reports:
        record_reports(reports, deps)
    return len(orders)
