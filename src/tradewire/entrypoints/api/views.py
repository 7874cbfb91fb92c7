"""Public shapes of stored objects for the read routes (camelCase, decimals as strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Query

from tradewire.adapters.formats.signal_api import iso_z
from tradewire.domain.accounts import Account
from tradewire.domain.audit import AuditEvent
from tradewire.domain.jobs import Job
from tradewire.domain.orders import Order
from tradewire.domain.positions import Position
from tradewire.domain.signals import ExitRule, Signal
from tradewire.services.ports import Page


def _page(limit: Annotated[int, Query(ge=1, le=200)] = 50,
          offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Page:
    return Page(limit=limit, offset=offset)


PageQuery = Annotated[Page, Depends(_page)]


def paginated(name: str, items: list[Any], page: Page) -> dict[str, Any]:
    return {"success": True, name: items,
            "pagination": {"limit": page.limit, "offset": page.offset, "count": len(items),
                           "hasMore": len(items) == page.limit}}


def _t(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def moment(value: datetime | None) -> str | None:
    return _t(value)


def _d(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def signal(s: Signal) -> dict[str, Any]:
    return {
        "id": s.id, "accountId": s.account_id, "symbol": s.symbol, "action": str(s.action),
        "quantity": _d(s.quantity), "quantityType": str(s.quantity_type),
        "orderType": str(s.order_type), "limitPrice": _d(s.limit_price),
        "stopPrice": _d(s.stop_price), "timeInForce": str(s.time_in_force),
        "extendedHours": s.extended_hours, "executeMode": str(s.execute_mode),
        "status": str(s.status), "statusReason": s.status_reason, "sourceId": s.source_id,
        "strategyId": s.strategy_id, "scheduledAt": _t(s.scheduled_at),
        "validUntil": _t(s.valid_until), "metadata": s.metadata,
        "exitRule": _exit(s.exit_rule),
        "createdAt": _t(s.created_at),
    }


def _exit(rule: ExitRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"trigger": str(rule.trigger), "minutes": rule.minutes, "atTime": rule.at_time,
            "timezone": rule.zone, "immediate": rule.immediate, "orderType": str(rule.order_type),
            "limitPrice": _d(rule.limit_price), "timeInForce": str(rule.time_in_force)}


def order(o: Order) -> dict[str, Any]:
    return {
        "id": o.id, "accountId": o.account_id, "signalId": o.signal_id,
        "clientOrderId": o.client_order_id, "brokerOrderId": o.broker_order_id,
        "symbol": o.symbol, "side": str(o.side), "qty": _d(o.qty), "orderType": str(o.order_type),
        "timeInForce": str(o.time_in_force), "limitPrice": _d(o.limit_price),
        "stopPrice": _d(o.stop_price), "purpose": str(o.purpose), "status": str(o.status),
        "filledQty": _d(o.filled_qty), "avgFillPrice": _d(o.avg_fill_price), "reason": o.reason,
        "createdAt": _t(o.created_at),
    }


def job(j: Job) -> dict[str, Any]:
    return {"id": j.id, "kind": str(j.kind), "status": str(j.status), "dueAt": _t(j.due_at),
            "validUntil": _t(j.valid_until), "result": j.result, "attempts": j.attempts}


def event(e: AuditEvent) -> dict[str, Any]:
    return {"at": _t(e.at), "entity": e.entity, "entityId": e.entity_id, "event": e.event,
            "fromStatus": e.from_status, "toStatus": e.to_status, "data": e.data}


def position(p: Position) -> dict[str, Any]:
    return {"accountId": p.account_id, "symbol": p.symbol, "qty": _d(p.qty),
            "avgEntryPrice": _d(p.avg_entry_price), "realizedPnl": _d(p.realized_pnl),
            "side": "long" if p.qty > 0 else "short" if p.qty < 0 else "flat"}


def account(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "broker": a.broker, "market": a.market,
            "startingCash": _d(a.starting_cash), "createdAt": _t(a.created_at)}
