"""The older ingest dialect (POST /api/signals/ingest, seed 002): processAt, exitRule, gtd."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from tradewire.adapters.formats.errors import detail, details_of
from tradewire.adapters.formats.fields import (
    Metadata,
    Moment,
    Price,
    Quantity,
    Zone,
    in_range,
    price_problems,
)
from tradewire.adapters.formats.signal_api import (
    REPLACED_BEFORE_SENT,
    BadRequest,
    iso_z,
    to_utc,
)
from tradewire.domain.orders import Order
from tradewire.domain.signals import ExitRule, ExitTrigger, Signal, SignalStatus
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderType,
    QuantityType,
    TimeInForce,
    new_id,
)

ROUTE = "api.signals.ingest"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class IngestOrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"  # this API's spelling of stopLimit

    def core(self) -> OrderType:
        return OrderType.STOP_LIMIT if self is IngestOrderType.STOP_LIMIT else OrderType(self.value)


class ExitRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: Literal["market_close", "time"]
    immediate: StrictBool = False
    minutesBefore: int | None = Field(default=None, ge=0, le=30)
    timeInForce: Literal["day", "cls"] = "cls"
    durationMinutes: int | None = Field(default=None, gt=0, le=525_600)
    exitTime: str | None = None

    @field_validator("exitTime")
    @classmethod
    def _hhmm(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError("exitTime must be HH:MM (24-hour)")
        return value


class IngestRequest(BaseModel):
    """The body of POST /api/signals/ingest, as seed 002 writes it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9./:_-]+$")
    action: Action
    accountId: UUID
    quantity: Quantity
    processAt: str = Field(min_length=1, max_length=64)
    strategyId: UUID | None = None
    quantityType: QuantityType = QuantityType.FIXED
    orderType: IngestOrderType = IngestOrderType.MARKET
    limitPrice: Price | None = None
    stopPrice: Price | None = None
    timeInForce: TimeInForce = TimeInForce.DAY
    extendedHours: StrictBool = False
    timezone: Zone | None = None
    expiresAt: Moment | None = None
    sourceId: str | None = Field(default=None, min_length=1, max_length=255)
    replace: StrictBool = False
    metadata: Metadata | None = None
    exitRule: ExitRuleIn | None = None



def parse(body: Any, *, now: datetime) -> Signal:
    """A Signal from a decoded JSON body, or BadRequest listing every problem."""
    if not isinstance(body, dict):
        raise BadRequest([detail("invalid_type",
                                 f"Expected object, received {type(body).__name__}")])
    try:
        req = IngestRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(details_of(exc)) from None
    process_at, problems = _process_at(req)
    problems += _cross_field_problems(req, now, process_at)
    if problems:
        raise BadRequest(problems)
    return _to_signal(req, now, process_at)


def _process_at(r: IngestRequest) -> tuple[datetime | None, list[dict[str, Any]]]:
    if r.processAt == "now":
        return None, []
    try:
        at = in_range(datetime.fromisoformat(r.processAt.replace("Z", "+00:00")))
    except ValueError:
        return None, [detail("invalid_string", 'processAt must be "now" or an ISO 8601 datetime',
                             ["processAt"])]
    if r.timezone is None:
        return None, [detail("custom", "timezone is required when processAt is a datetime",
                             ["timezone"])]
    return to_utc(at, r.timezone), []


def _cross_field_problems(r: IngestRequest, now: datetime,
                          process_at: datetime | None) -> list[dict[str, Any]]:
    p: list[dict[str, Any]] = []

    def need(cond: bool, message: str, *path: str) -> None:
        if not cond:
            p.append(detail("custom", message, list(path)))

    kind = r.orderType.core()
    p += price_problems(kind, r.orderType.value, r.limitPrice, r.stopPrice,
                        limit_name="limitPrice", stop_name="stopPrice",
                        stop_limit_name="stop_limit")
    need(r.expiresAt is None or r.timezone is not None,
         "timezone is required when expiresAt is set", "timezone")
    need(r.timeInForce is not TimeInForce.GTD or r.expiresAt is not None,
         "timeInForce gtd needs expiresAt", "expiresAt")
    need(not r.extendedHours or (kind is OrderType.LIMIT and r.timeInForce is TimeInForce.DAY),
         "extendedHours requires a limit order with timeInForce day", "extendedHours")
    if r.expiresAt is not None and r.timezone is not None:
        expires = to_utc(r.expiresAt, r.timezone)
        need(expires > now, "expiresAt is in the past", "expiresAt")
        need(process_at is None or process_at < expires, "processAt is after expiresAt",
             "processAt")
    if r.exitRule is not None:
        _exit_problems(r, r.exitRule, need)
    return p


def _exit_problems(r: IngestRequest, e: ExitRuleIn, need: Any) -> None:
    need(not r.action.is_exit, "an exitRule applies to openLong and openShort signals",
         "exitRule")
    if e.trigger == "time":
        need((e.durationMinutes is None) != (e.exitTime is None),
             "a time exit takes either durationMinutes or exitTime, not both", "exitRule")
        need(not e.immediate and e.minutesBefore is None,
             "immediate and minutesBefore belong to market_close exits", "exitRule")
        need(e.exitTime is None or r.timezone is not None,
             "timezone is required when exitRule.exitTime is set", "timezone")
    else:
        need(e.durationMinutes is None and e.exitTime is None,
             "durationMinutes and exitTime belong to time exits", "exitRule")
        need(not (e.immediate and e.minutesBefore),
             "minutesBefore is ignored with immediate: true; send one of them", "exitRule",
             "minutesBefore")


def exit_rule(e: ExitRuleIn, zone: str) -> ExitRule:
    if e.trigger == "market_close":
        return ExitRule(trigger=ExitTrigger.MARKET_CLOSE, immediate=e.immediate,
                        minutes=e.minutesBefore or 0, time_in_force=TimeInForce(e.timeInForce))
    if e.durationMinutes is not None:
        return ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=e.durationMinutes)
    return ExitRule(trigger=ExitTrigger.AT_TIME, at_time=e.exitTime, zone=zone)


def _to_signal(r: IngestRequest, now: datetime, process_at: datetime | None) -> Signal:
    zone = r.timezone or "UTC"
    return Signal(
        id=new_id(), account_id=str(r.accountId), symbol=r.symbol.strip().upper(),
        action=r.action, quantity=r.quantity,
        execute_mode=ExecuteMode.SCHEDULED if process_at else ExecuteMode.IMMEDIATE,
        created_at=now, quantity_type=r.quantityType, order_type=r.orderType.core(),
        limit_price=r.limitPrice, stop_price=r.stopPrice, time_in_force=r.timeInForce,
        extended_hours=r.extendedHours, scheduled_at=process_at,
        valid_until=to_utc(r.expiresAt, zone) if r.expiresAt else None,
        strategy_id=str(r.strategyId) if r.strategyId else None, source_id=r.sourceId,
        replace_existing=r.replace, metadata=r.metadata or {},
        exit_rule=exit_rule(r.exitRule, zone) if r.exitRule else None, route=ROUTE,
    )


# ---- responses ------------------------------------------------------------------------------

def summary(signal: Signal, order: Order | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": signal.id, "status": str(signal.status)}
    if order is not None and signal.status is not SignalStatus.SCHEDULED:
        out["orderId"] = order.id
    if signal.scheduled_at is not None and signal.status is SignalStatus.SCHEDULED:
        out["scheduledAt"] = iso_z(signal.scheduled_at)
    return out


def created(signal: Signal, order: Order | None) -> tuple[int, dict[str, Any]]:
    if signal.status is SignalStatus.SCHEDULED:
        return 202, {"message": "Signal scheduled for processing", "signal": summary(signal, order)}
    if signal.status is SignalStatus.EXECUTED:
        return 201, {"message": "Signal processed successfully", "signal": summary(signal, order)}
    if signal.status is SignalStatus.REPLACED:
        return 201, {"message": REPLACED_BEFORE_SENT, "signal": summary(signal, order)}
    return 201, {"message": "Signal accepted; its order is on its way to the broker",
                 "signal": summary(signal, order)}


def duplicate(signal: Signal, source_id: str) -> dict[str, Any]:
    return error("Signal rejected", "SIGNAL_REJECTED",
                 message=f"Signal with sourceId '{source_id}' already exists with status "
                 f"'{str(signal.status).upper()}'. Use replace=true to supersede.",
                 signal={"id": signal.id, "status": str(signal.status)})


def error(error_text: str, code: str, details: list[dict[str, Any]] | None = None,
          **extra: Any) -> dict[str, Any]:
    """This API's error shape: `{error, code, details?}` (no `success` field)."""
    body: dict[str, Any] = {"error": error_text}
    body.update(extra)
    body["code"] = code
    if details is not None:
        body["details"] = details
    return body
