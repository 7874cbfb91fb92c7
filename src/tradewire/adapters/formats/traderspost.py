"""The TradersPost-style alert dialect (what TradingView alerts send): JSON body -> Alert."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, field_validator

from tradewire.adapters.formats.errors import detail, details_of
from tradewire.adapters.formats.fields import Price, Quantity, check_metadata, in_range
from tradewire.adapters.formats.protection import stop_loss_problems, take_profit_problems
from tradewire.adapters.formats.signal_api import (
    BadRequest,
    V1TimeInForce,
    iso_z,
)
from tradewire.domain.alerts import Alert, AlertAction, Sentiment
from tradewire.domain.values import OrderType, QuantityType, TimeInForce

_TICKER = re.compile(r"^[A-Z0-9./_-]{1,20}$")
# Epoch numbers at or above this are milliseconds (1e11 seconds is the year 5138).
_EPOCH_MS_FROM = Decimal("1e11")
_EPOCH = re.compile(r"^-?\d+(\.\d+)?$")
_TIME_HINT = "time must be ISO 8601 text or epoch seconds or milliseconds"


class WireSentiment(StrEnum):
    BULLISH = "bullish"
    LONG = "long"
    BEARISH = "bearish"
    SHORT = "short"
    FLAT = "flat"


class WireQuantityType(StrEnum):
    FIXED_QUANTITY = "fixed_quantity"
    DOLLAR_AMOUNT = "dollar_amount"
    PERCENT_OF_EQUITY = "percent_of_equity"
    RISK_DOLLAR_AMOUNT = "risk_dollar_amount"
    RISK_PERCENT = "risk_percent"
    PERCENT_OF_POSITION = "percent_of_position"


class WireOrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


_SENTIMENTS = {
    WireSentiment.BULLISH: Sentiment.LONG, WireSentiment.LONG: Sentiment.LONG,
    WireSentiment.BEARISH: Sentiment.SHORT, WireSentiment.SHORT: Sentiment.SHORT,
    WireSentiment.FLAT: Sentiment.FLAT,
}
# Only the supported wire values appear here; the validators refuse the others by name.
_QUANTITY_TYPES = {
    WireQuantityType.FIXED_QUANTITY: QuantityType.FIXED,
    WireQuantityType.DOLLAR_AMOUNT: QuantityType.DOLLAR_AMOUNT,
    WireQuantityType.PERCENT_OF_EQUITY: QuantityType.PERCENT_EQUITY,
}
_ORDER_TYPES = {
    WireOrderType.MARKET: OrderType.MARKET,
    WireOrderType.LIMIT: OrderType.LIMIT,
    WireOrderType.STOP: OrderType.STOP,
    WireOrderType.STOP_LIMIT: OrderType.STOP_LIMIT,
}
_WIRE_QUANTITY_TYPES = {core: wire for wire, core in _QUANTITY_TYPES.items()}
_WIRE_ORDER_TYPES = {core: wire for wire, core in _ORDER_TYPES.items()}


class AlertRequest(BaseModel):
    """An alert body as TradersPost documents it; unknown fields are ignored, as there."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ticker: str
    action: AlertAction
    sentiment: WireSentiment | None = None
    quantity: Quantity | None = None
    quantityType: WireQuantityType = WireQuantityType.FIXED_QUANTITY
    orderType: WireOrderType = WireOrderType.MARKET
    limitPrice: Price | None = None
    stopPrice: Price | None = None
    timeInForce: V1TimeInForce = V1TimeInForce.DAY
    extendedHours: StrictBool = False
    takeProfit: dict[str, Any] | None = None
    stopLoss: dict[str, Any] | None = None
    signalPrice: Price | None = None
    price: Price | None = None
    time: datetime | None = None
    extras: dict[str, Any] | None = None

    @field_validator("ticker")
    @classmethod
    def _bare_ticker(cls, value: str) -> str:
        # TradingView's {{ticker}} may carry the exchange: "NASDAQ:AAPL" trades as "AAPL".
        bare = value.strip().rsplit(":", 1)[-1].upper()
        if not _TICKER.match(bare):
            raise ValueError("ticker must be 1 to 20 letters, digits or . / _ - "
                             "(an exchange prefix like NASDAQ: is dropped)")
        return bare

    @field_validator("action", "sentiment", "quantityType", "orderType", "timeInForce",
                     mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("quantityType")
    @classmethod
    def _supported_quantity_type(cls, value: WireQuantityType) -> WireQuantityType:
        if value not in _QUANTITY_TYPES:
            raise ValueError(f"quantityType {value} is not supported yet; use fixed_quantity, "
                             "dollar_amount or percent_of_equity")
        return value

    @field_validator("orderType")
    @classmethod
    def _supported_order_type(cls, value: WireOrderType) -> WireOrderType:
        if value not in _ORDER_TYPES:
            raise ValueError(f"orderType {value} is not supported yet; use market, limit, stop "
                             "or stop_limit")
        return value

    @field_validator("extendedHours", mode="before")
    @classmethod
    def _bool_text(cls, value: Any) -> Any:
        # Alert messages are text templates, so "true" arrives as often as true.
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value

    @field_validator("time", mode="before")
    @classmethod
    def _utc_time(cls, value: Any) -> Any:
        return None if value is None else parse_time(value)

    @field_validator("extras")
    @classmethod
    def _small_extras(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_metadata(value)


def looks_like_alert(body: object) -> bool:
    """True for a body in this dialect: an object with a ticker."""
    return isinstance(body, dict) and "ticker" in body


def parse_alert(body: Any) -> Alert:
    """An Alert from a decoded JSON body, or BadRequest listing every problem."""
    if not isinstance(body, dict):
        raise BadRequest([detail("invalid_type",
                                 f"Expected object, received {type(body).__name__}")])
    try:
        req = AlertRequest.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(details_of(exc)) from None
    problems = _cross_field_problems(req)
    if problems:
        raise BadRequest(problems)
    return _to_alert(req)


def parse_time(value: Any) -> datetime:
    """ISO 8601 text (naive means UTC) or epoch seconds or milliseconds, as an aware UTC time."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(_TIME_HINT)
    text = str(value).strip()
    try:
        if _EPOCH.match(text):
            epoch = Decimal(text)
            seconds = epoch / 1000 if abs(epoch) >= _EPOCH_MS_FROM else epoch
            return in_range(datetime.fromtimestamp(float(seconds), tz=UTC))
        parsed = in_range(datetime.fromisoformat(text))
        # TradingView's {{time}} and {{timenow}} are UTC; a time without an offset is UTC.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"{_TIME_HINT}, got '{text}'") from exc


# ---- checks across fields -------------------------------------------------------------------------

def _cross_field_problems(r: AlertRequest) -> list[dict[str, Any]]:
    p: list[dict[str, Any]] = []

    def need(cond: bool, message: str, field: str) -> None:
        if not cond:
            p.append(detail("custom", message, [field]))

    kind = _ORDER_TYPES[r.orderType]
    need(not kind.needs_limit_price or r.limitPrice is not None,
         f"limitPrice is required for {r.orderType} orders", "limitPrice")
    need(not kind.needs_stop_price or r.stopPrice is not None,
         f"stopPrice is required for {r.orderType} orders", "stopPrice")
    need(kind.needs_limit_price or r.limitPrice is None,
         "limitPrice is only used by limit and stop_limit orders", "limitPrice")
    need(kind.needs_stop_price or r.stopPrice is None,
         "stopPrice is only used by stop and stop_limit orders", "stopPrice")
    need(not r.extendedHours or (kind is OrderType.LIMIT and r.timeInForce is V1TimeInForce.DAY),
         "extendedHours requires a limit order with timeInForce day", "extendedHours")
    if r.takeProfit is not None:
        p += take_profit_problems(r.takeProfit)
    if r.stopLoss is not None:
        p += stop_loss_problems(r.stopLoss)
    return p


def _to_alert(r: AlertRequest) -> Alert:
    return Alert(
        ticker=r.ticker, action=r.action,
        sentiment=_SENTIMENTS[r.sentiment] if r.sentiment is not None else None,
        quantity=r.quantity, quantity_type=_QUANTITY_TYPES[r.quantityType],
        order_type=_ORDER_TYPES[r.orderType], limit_price=r.limitPrice, stop_price=r.stopPrice,
        time_in_force=TimeInForce(r.timeInForce), extended_hours=r.extendedHours,
        take_profit=r.takeProfit, stop_loss=r.stopLoss,
        signal_price=r.signalPrice if r.signalPrice is not None else r.price,
        sent_at=r.time, extras=r.extras or {},
    )


# ---- responses ------------------------------------------------------------------------------------

def payload(alert: Alert) -> dict[str, Any]:
    """The alert in wire names, as the response echoes it; decimals as exact text."""
    out: dict[str, Any] = {
        "ticker": alert.ticker, "action": str(alert.action),
        "sentiment": str(alert.sentiment) if alert.sentiment else None,
        "quantity": _text(alert.quantity),
        "quantityType": str(_WIRE_QUANTITY_TYPES[alert.quantity_type]),
        "orderType": str(_WIRE_ORDER_TYPES[alert.order_type]),
        "limitPrice": _text(alert.limit_price), "stopPrice": _text(alert.stop_price),
        "timeInForce": str(alert.time_in_force), "extendedHours": alert.extended_hours,
        "takeProfit": alert.take_profit, "stopLoss": alert.stop_loss,
        "signalPrice": _text(alert.signal_price),
        "time": iso_z(alert.sent_at) if alert.sent_at else None,
        "extras": alert.extras or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def format_result(alert: Alert, *, alert_id: str, log_id: str) -> dict[str, Any]:
    """The body answering an accepted alert."""
    return {"success": True, "id": alert_id, "logId": log_id, "payload": payload(alert)}


def error(message: str, message_code: str,
          details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The body answering a refused alert; `message_code` is kebab-case (`invalid-action`)."""
    body: dict[str, Any] = {"success": False, "messageCode": message_code, "message": message}
    if details is not None:
        body["details"] = details
    return body


def invalid(details: list[dict[str, Any]]) -> dict[str, Any]:
    """The body for a BadRequest: named after its first problem (`missing-ticker`), all listed."""
    first = details[0] if details else detail("custom", "Validation failed")
    field = next((str(p) for p in first["path"] if isinstance(p, str)), None)
    if field is None:
        return error(first["message"], "invalid-payload", details)
    where, message = ".".join(map(str, first["path"])), first["message"]
    if message == "Required":
        return error(f"{where} is required", f"missing-{_kebab(field)}", details)
    if not message.startswith(field):
        message = f"{where}: {message}"
    return error(message, f"invalid-{_kebab(field)}", details)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
