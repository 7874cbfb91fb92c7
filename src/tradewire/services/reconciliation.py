"""Reconciliation: the broker's open orders and positions compared with tradewire's.

What the broker knows about an order tradewire sent becomes the same events as a live update
(fills, cancels, rejections, through `record_reports`). What cannot be explained is recorded
as a difference and shown: an order at the broker that tradewire never sent (reported, never
adopted or cancelled), an order tradewire believes is open that the broker does not have, and
a position whose size differs. A difference is recorded when it appears or changes, not again
on every pass while it stands."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Account
from tradewire.domain.audit import AuditEvent
from tradewire.domain.orders import OrderStatus
from tradewire.services.deps import Deps
from tradewire.services.ports import BrokerOrder, BrokerUnavailable, Page
from tradewire.services.submit import record_reports

log = logging.getLogger(__name__)
OPEN = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
ENTITY = "reconciliation"


@dataclass(frozen=True)
class Difference:
    kind: str  # unknown_order | missing_order | position
    key: str  # what it is about: a client order id or a symbol
    ours: dict[str, Any]
    theirs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "ours": self.ours, "theirs": self.theirs}


@dataclass
class Outcome:
    account_id: str
    updated: int = 0  # orders brought up to date from the broker's reports
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None


def reconcile_account(account: Account, deps: Deps) -> Outcome:
    out = Outcome(account.id)
    broker = deps.brokers.for_account(account)
    try:  # the broker first, outside any transaction
        theirs_open = {o.client_order_id: o for o in broker.open_orders(account.id)}
        theirs_held = broker.positions(account.id)
    except BrokerUnavailable as exc:
        out.error = f"broker did not answer: {type(exc).__name__}"
        return out
    with deps.uow(write=False) as uow:
        ours_open = [o for s in OPEN
                     for o in uow.orders.list([account.id], Page(limit=1000), status=str(s))]
        ours_held = {p.symbol: p.qty for p in uow.positions.list([account.id], Page(limit=1000))}
        known = {c: uow.orders.by_client_id(c) is not None for c in theirs_open}
    reports: list[tuple[str, BrokerOrder]] = []
    for coid, report in theirs_open.items():
        if not known[coid]:
            out.differences.append(Difference("unknown_order", coid, {}, _order_view(report)))
    for order in ours_open:
        report = theirs_open.get(order.client_order_id)
        if report is None:  # not open there: ask for it, it may have filled or been canceled
            try:
                report = broker.lookup(account.id, order.client_order_id)
            except BrokerUnavailable:
                continue
            if report is None:
                out.differences.append(Difference(
                    "missing_order", order.client_order_id,
                    {"status": str(order.status), "symbol": order.symbol, "qty": str(order.qty)},
                    {}))
                continue
        if report.status != order.status or report.filled_qty != order.filled_qty:
            reports.append((order.client_order_id, report))
    if reports:
        record_reports(reports, deps)
        out.updated = len(reports)
        with deps.uow(write=False) as uow:  # fills just recorded move our positions
            ours_held = {p.symbol: p.qty
                         for p in uow.positions.list([account.id], Page(limit=1000))}
    for symbol in sorted(set(ours_held) | set(theirs_held)):
        ours, theirs = ours_held.get(symbol, Decimal(0)), theirs_held.get(symbol, Decimal(0))
        if ours != theirs:
            out.differences.append(Difference("position", symbol, {"qty": str(ours)},
                                              {"qty": str(theirs)}))
    _record(account, out, deps)
    return out


def reconcile_all(deps: Deps, *, include_paper: bool = True) -> list[Outcome]:
    """Every account; one broker down does not stop the rest. The paper broker keeps its book
    in tradewire's own database, so the worker's periodic pass leaves it out."""
    with deps.uow(write=False) as uow:
        accounts = uow.accounts.list(None, None, Page(limit=10_000))
    outcomes = []
    for account in accounts:
        if account.broker == "paper" and not include_paper:
            continue
        try:
            outcomes.append(reconcile_account(account, deps))
        except Exception as exc:  # a broken adapter or bad keys: reported, the rest go on
            log.warning("reconciling account %s failed: %s", account.id, type(exc).__name__)
            outcomes.append(Outcome(account.id, error=type(exc).__name__))
    return outcomes


def standing(account_id: str, deps: Deps) -> list[dict[str, Any]]:
    """The differences the last recorded pass found for the account (newest state of each)."""
    with deps.uow(write=False) as uow:
        latest = _latest(uow.audit.of_entity(ENTITY, account_id))
    return [{**e.data, "at": e.at.isoformat()} for e in latest.values()
            if e.event == "ReconciliationDifference"]


def _latest(events: list[AuditEvent]) -> dict[tuple[str, str], AuditEvent]:
    """The newest recorded event of each difference, by (kind, key)."""
    return {(e.data.get("kind", ""), e.data.get("key", "")): e for e in events}


def _record(account: Account, out: Outcome, deps: Deps) -> None:
    """Differences that are new or changed, and those that went away, as audit events."""
    now = deps.clock.now()
    with deps.uow() as uow:
        previous = _latest(uow.audit.of_entity(ENTITY, account.id))
        found = {(d.kind, d.key): d for d in out.differences}
        events = []
        for key, d in found.items():
            last = previous.get(key)
            if last is None or last.event != "ReconciliationDifference" or last.data != d.to_dict():
                events.append(AuditEvent(entity=ENTITY, entity_id=f"{account.id}:{d.key}",
                                         event="ReconciliationDifference", at=now,
                                         account_id=account.id, data=d.to_dict()))
        for key, last in previous.items():
            if key not in found and last.event == "ReconciliationDifference":
                events.append(AuditEvent(entity=ENTITY, entity_id=last.entity_id,
                                         event="ReconciliationResolved", at=now,
                                         account_id=account.id,
                                         data={"kind": key[0], "key": key[1]}))
        if events:
            uow.audit.add_many(events)
            uow.commit()
            for e in events:
                log.warning("reconciliation %s on account %s: %s %s", e.event, account.id,
                            e.data.get("kind"), e.data.get("key"))


def _order_view(report: BrokerOrder) -> dict[str, Any]:
    return {"broker_order_id": report.broker_order_id, "status": str(report.status),
            "symbol": report.symbol, "side": str(report.side) if report.side else None,
            "qty": str(report.qty) if report.qty is not None else None,
            "filled_qty": str(report.filled_qty)}
