"""The execution flows dialect (seed 000): snake_case orders for triggers, tokens, partners."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from tradewire.adapters.formats.errors import detail, details_of
from tradewire.adapters.formats.fields import Metadata, Moment, Price, Quantity, price_problems
from tradewire.adapters.formats.signal_api import BadRequest, iso_z
from tradewire.domain.capabilities import Trigger
from tradewire.domain.orders import Order
from tradewire.domain.signals import Leg, LinkKind, Signal, SignalStatus
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderType,
    QuantityType,
    TimeInForce,
    new_id,
)

_QTY_TYPES = {"fixed": QuantityType.FIXED, "percent_equity": QuantityType.PERCENT_EQUITY,
              "dollar_amount": QuantityType.DOLLAR_AMOUNT}
_ORDER_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
                "stop_limit": OrderType.STOP_LIMIT}
_SIDES = {"buy": Action.OPEN_LONG, "sell": Action.CLOSE_LONG}


class LegIn(BaseModel):
    """A further leg; the symbol defaults to the order's own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    symbol: str | None = Field(default=None, min_length=1, max_length=20,
                               pattern=r"^[A-Za-z0-9./:_-]+$")
    side: Literal["buy", "sell"] | None = None
    action: Action | None = None
    quantity: Quantity
    order_type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    limit_price: Price | None = None
    stop_price: Price | None = None
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "gtc"


class OrderIn(BaseModel):
    """One order. `side` buy/sell trades a long position; `action` also opens and closes shorts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    account_id: UUID | None = None
    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9./:_-]+$")
    side: Literal["buy", "sell"] | None = None
    action: Action | None = None
    quantity: Quantity
    quantity_type: Literal["fixed", "percent_equity", "dollar_amount"] = "fixed"
    order_type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    limit_price: Price | None = None
    stop_price: Price | None = None
    time_in_force: Literal["day", "gtc", "opg", "cls", "ioc", "fok"] = "day"
    extended_hours: StrictBool = False
    source_id: str | None = Field(default=None, min_length=1, max_length=255)
    valid_until: Moment | None = None
    expires_in: int | None = Field(default=None, ge=60, le=30 * 86_400)  # encoded token, seconds
    metadata: Metadata | None = None
    legs: list[LegIn] | None = Field(default=None, min_length=1, max_length=7)
    link: Literal["oco", "all"] | None = None


def parse_order(body: Any, *, now: datetime, route: str, account_id: str | None = None,
                path: tuple[str | int, ...] = ()) -> tuple[Signal, timedelta | None]:
    """A Signal (execute mode decided by the route) and the token lifetime asked for."""
    if not isinstance(body, dict):
        raise BadRequest([detail("invalid_type", "Expected an order object", list(path))])
    try:
        req = OrderIn.model_validate(body)
    except ValidationError as exc:
        raise BadRequest([{**d, "path": [*path, *d["path"]]} for d in details_of(exc)]) from None
    problems = _problems(req, account_id, now)
    if problems:
        raise BadRequest([{**d, "path": [*path, *d["path"]]} for d in problems])
    action = req.action or _SIDES[req.side or "buy"]
    kind = _ORDER_TYPES[req.order_type]
    signal = Signal(
        id=new_id(), account_id=account_id or str(req.account_id), symbol=req.symbol.upper(),
        action=action, quantity=req.quantity, execute_mode=ExecuteMode.IMMEDIATE,
        created_at=now, quantity_type=_QTY_TYPES[req.quantity_type], order_type=kind,
        limit_price=req.limit_price, stop_price=req.stop_price,
        time_in_force=TimeInForce(req.time_in_force), extended_hours=req.extended_hours,
        valid_until=req.valid_until, source_id=req.source_id, metadata=req.metadata or {},
        route=route, legs=tuple(_leg(leg, req.symbol) for leg in req.legs or ()),
        link=LinkKind(req.link) if req.link else None,
    )
    ttl = timedelta(seconds=req.expires_in) if req.expires_in is not None else None
    return signal, ttl


def _problems(r: OrderIn, account_id: str | None, now: datetime) -> list[dict[str, Any]]:
    p: list[dict[str, Any]] = []

    def need(cond: bool, message: str, field: str) -> None:
        if not cond:
            p.append(detail("custom", message, [field]))

    kind = _ORDER_TYPES[r.order_type]
    need(account_id is not None or r.account_id is not None, "account_id is required",
         "account_id")
    need(account_id is None or r.account_id is None or str(r.account_id) == account_id,
         "this token is bound to another account", "account_id")
    need((r.side is None) != (r.action is None), "send exactly one of side and action", "side")
    p += price_problems(kind, r.order_type, r.limit_price, r.stop_price,
                        limit_name="limit_price", stop_name="stop_price",
                        stop_limit_name="stop_limit")
    need((r.legs is None) == (r.link is None), "legs and link go together", "link")
    for i, leg in enumerate(r.legs or ()):
        kind = _ORDER_TYPES[leg.order_type]
        if (leg.side is None) == (leg.action is None):
            p.append(detail("custom", "send exactly one of side and action", ["legs", i, "side"]))
        if kind.needs_limit_price != (leg.limit_price is not None):
            p.append(detail("custom", "limit_price goes with limit and stop_limit legs only",
                            ["legs", i, "limit_price"]))
        if kind.needs_stop_price != (leg.stop_price is not None):
            p.append(detail("custom", "stop_price goes with stop and stop_limit legs only",
                            ["legs", i, "stop_price"]))
    need(r.valid_until is None or r.valid_until.tzinfo is not None,
         "valid_until needs a UTC offset", "valid_until")
    need(r.valid_until is None or r.valid_until.tzinfo is None or r.valid_until > now,
         "valid_until is in the past", "valid_until")
    return p


def _leg(leg: LegIn, symbol: str) -> Leg:
    return Leg(symbol=(leg.symbol or symbol).upper(), action=leg.action or _SIDES[leg.side or "buy"],
               quantity=leg.quantity, order_type=_ORDER_TYPES[leg.order_type],
               limit_price=leg.limit_price, stop_price=leg.stop_price,
               time_in_force=TimeInForce(leg.time_in_force))


def order_view(signal: Signal, order: Order | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "signal_id": signal.id, "account_id": signal.account_id, "symbol": signal.symbol,
        "action": str(signal.action), "quantity": format(signal.quantity, "f"),
        "order_type": str(signal.order_type), "time_in_force": str(signal.time_in_force),
        "status": str(signal.status),
    }
    if order is not None and signal.status is not SignalStatus.PENDING:
        out["order_id"] = order.id
        out["order_status"] = str(order.status)
    if signal.status_reason:
        out["reason"] = signal.status_reason
    return out


def trigger_view(trigger: Trigger) -> dict[str, Any]:
    return {"trigger_id": trigger.id, "expires_at": iso_z(trigger.expires_at),
            "used": trigger.consumed_at is not None, "revoked": trigger.revoked_at is not None}
