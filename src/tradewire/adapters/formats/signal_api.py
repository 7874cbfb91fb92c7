"""The signal API dialect (POST /api/v1/signals): payload -> Signal, result -> envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from tradewire.adapters.formats.errors import detail, details_of
from tradewire.adapters.formats.fields import (
    Metadata,
    Moment,
    Price,
    Quantity,
    Zone,
    price_problems,
)
from tradewire.adapters.formats.protection import stop_loss_problems, take_profit_problems
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


class V1TimeInForce(StrEnum):
    """Seed 004's time-in-force values (gtd belongs to the ingest API only)."""

    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"




class SignalRequest(BaseModel):
    """The body of POST /api/v1/signals, as seed 004 writes it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False, frozen=True)

    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9./:_-]+$")
    action: Action
    accountId: UUID
    quantity: Quantity
    executeMode: ExecuteMode
    scheduledProcessAt: Moment | None = None
    timezone: Zone | None = None
    strategyId: UUID | None = None
    quantityType: QuantityType = QuantityType.FIXED
    orderType: OrderType = OrderType.MARKET
    limitPrice: Price | None = None
    stopPrice: Price | None = None
    timeInForce: V1TimeInForce = V1TimeInForce.DAY
    extendedHours: StrictBool = False
    validUntil: Moment | None = None
    sourceId: str | None = Field(default=None, min_length=1, max_length=255)
    replaceExisting: StrictBool = False
    metadata: Metadata | None = None
    exitTriggerType: Literal["timed"] | None = None
    exitTriggerValue: int | None = Field(default=None, gt=0, le=525_600)
    exitOrderType: Literal["market", "limit"] | None = None
    exitLimitPrice: Price | None = None
    # tradewire's addition (the TradersPost shape): the exit plan of the position it opens
    takeProfit: dict[str, Any] | None = None
    stopLoss: dict[str, Any] | None = None



class BadRequest(Exception):
    """Validation failed; `details` lists every problem with its path."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("Validation failed")
        self.details = details


def parse(body: Any, *, now: datetime, route: str = "api.v1.signals") -> Signal:
    """A Signal from a decoded JSON body, or BadRequest listing every problem."""
    if not isinstance(body, dict):
        raise BadRequest([detail("invalid_type",
                                 f"Expected object, received {type(body).__name__}")])
    try:
        req = SignalRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(details_of(exc)) from None
    problems = _cross_field_problems(req, now)
    if problems:
        raise BadRequest(problems)
    return _to_signal(req, now, route)


def _cross_field_problems(r: SignalRequest, now: datetime) -> list[dict[str, Any]]:
    p: list[dict[str, Any]] = []

    def need(cond: bool, message: str, field: str) -> None:
        if not cond:
            p.append(detail("custom", message, [field]))

    scheduled = r.executeMode is ExecuteMode.SCHEDULED
    need(not scheduled or r.scheduledProcessAt is not None,
         "scheduledProcessAt is required for scheduled execute mode", "scheduledProcessAt")
    need(scheduled or r.scheduledProcessAt is None,
         "scheduledProcessAt is only used with executeMode scheduled", "scheduledProcessAt")
    need(r.scheduledProcessAt is None or r.timezone is not None,
         "timezone is required when scheduledProcessAt is set", "timezone")
    need(r.validUntil is None or r.timezone is not None,
         "timezone is required when validUntil is set", "timezone")
    p += price_problems(r.orderType, str(r.orderType), r.limitPrice, r.stopPrice,
                        limit_name="limitPrice", stop_name="stopPrice",
                        stop_limit_name="stopLimit")
    need(not r.extendedHours or (r.orderType is OrderType.LIMIT
                                 and r.timeInForce is V1TimeInForce.DAY),
         "extendedHours requires a limit order with timeInForce day", "extendedHours")
    _exit_problems(r, need)
    if r.takeProfit is not None:
        p += take_profit_problems(r.takeProfit)
    if r.stopLoss is not None:
        p += stop_loss_problems(r.stopLoss)
    need((r.takeProfit is None and r.stopLoss is None) or not r.action.is_exit,
         "takeProfit and stopLoss apply to openLong and openShort signals", "takeProfit")
    if r.validUntil is not None and r.timezone is not None:
        valid_until = to_utc(r.validUntil, r.timezone)
        need(valid_until > now, "validUntil is in the past", "validUntil")
        if r.scheduledProcessAt is not None:
            need(to_utc(r.scheduledProcessAt, r.timezone) < valid_until,
                 "scheduledProcessAt is after validUntil", "scheduledProcessAt")
    return p


def _exit_problems(r: SignalRequest, need: Any) -> None:
    timed = r.exitTriggerType == "timed"
    need(timed or (r.exitTriggerValue is None and r.exitOrderType is None
                   and r.exitLimitPrice is None),
         "exit fields need exitTriggerType", "exitTriggerType")
    need(not timed or r.exitTriggerValue is not None,
         "exitTriggerValue (minutes) is required for a timed exit", "exitTriggerValue")
    need(not timed or not r.action.is_exit,
         "a timed exit applies to openLong and openShort signals", "exitTriggerType")
    need(r.exitOrderType != "limit" or r.exitLimitPrice is not None,
         "exitLimitPrice is required when exitOrderType is limit", "exitLimitPrice")
    need(r.exitOrderType == "limit" or r.exitLimitPrice is None,
         "exitLimitPrice is only used when exitOrderType is limit", "exitLimitPrice")


def to_utc(value: datetime, zone: str) -> datetime:
    """A wall-clock time in an IANA zone (daylight saving included) as UTC; offsets win."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def _to_signal(r: SignalRequest, now: datetime, route: str) -> Signal:
    zone = r.timezone or "UTC"
    timed = None
    if r.exitTriggerType == "timed" and r.exitTriggerValue is not None:
        timed = ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=r.exitTriggerValue,
                          order_type=OrderType(r.exitOrderType or "market"),
                          limit_price=r.exitLimitPrice)
    return Signal(
        id=new_id(), account_id=str(r.accountId), symbol=r.symbol.strip().upper(),
        action=r.action, quantity=r.quantity, execute_mode=r.executeMode, created_at=now,
        quantity_type=r.quantityType, order_type=r.orderType, limit_price=r.limitPrice,
        stop_price=r.stopPrice, time_in_force=TimeInForce(r.timeInForce), extended_hours=r.extendedHours,
        scheduled_at=to_utc(r.scheduledProcessAt, zone) if r.scheduledProcessAt else None,
        valid_until=to_utc(r.validUntil, zone) if r.validUntil else None,
        strategy_id=str(r.strategyId) if r.strategyId else None, source_id=r.sourceId,
        replace_existing=r.replaceExisting, metadata=r.metadata or {}, exit_rule=timed,
        protection=(r.takeProfit, r.stopLoss),
        route=route,
    )


# ---- responses ------------------------------------------------------------------------------

REPLACED_BEFORE_SENT = ("Signal accepted, then replaced by a newer signal with the same sourceId "
                        "before its order was sent")

def iso_z(value: datetime) -> str:
    """`2026-02-07T14:25:00.000Z`, the seed's spelling of a UTC time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def signal_summary(signal: Signal, order: Order | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": signal.id, "status": str(signal.status)}
    if order is not None and signal.status is not SignalStatus.PENDING:
        out["orderId"] = order.id
    if signal.scheduled_at is not None and signal.status is SignalStatus.SCHEDULED:
        out["scheduledAt"] = iso_z(signal.scheduled_at)
    out["executeMode"] = str(signal.execute_mode)
    return out


def created(signal: Signal, order: Order | None) -> tuple[int, dict[str, Any]]:
    """Status code and body for a signal that was just stored."""
    if signal.execute_mode is ExecuteMode.SCHEDULED:
        return 202, _ok("Signal scheduled for processing", signal, order)
    if signal.execute_mode is ExecuteMode.PENDING:
        return 201, _ok("Signal created", signal, order)
    if signal.status is SignalStatus.EXECUTED:
        return 201, _ok("Signal processed successfully", signal, order)
    if signal.status is SignalStatus.REPLACED:
        return 201, _ok(REPLACED_BEFORE_SENT, signal, order)
    return 201, _ok("Signal accepted; its order is on its way to the broker", signal, order)


def duplicate(signal: Signal, order: Order | None, source_id: str) -> dict[str, Any]:
    return _ok(f"Signal with sourceId '{source_id}' already exists with status "
               f"'{signal.status}'. Use replaceExisting=true to supersede.", signal, order)


def processed(signal: Signal, order: Order | None) -> dict[str, Any]:
    return _ok("Signal processed successfully", signal, order)


def _ok(message: str, signal: Signal, order: Order | None) -> dict[str, Any]:
    return {"success": True, "message": message, "signal": signal_summary(signal, order)}


def error(message: str, code: str, details: list[dict[str, Any]] | None = None,
          **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": message, "code": code}
    if details is not None:
        body["details"] = details
    body.update(extra)
    return body

