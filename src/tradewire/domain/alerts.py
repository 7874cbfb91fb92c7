"""Alert: a TradersPost-style instruction (buy, sell, exit, cancel, add), and the steps it takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tradewire.domain.errors import Rejected
from tradewire.domain.exit_plan import ExitPlan, Target, Trailing
from tradewire.domain.values import ZERO, Action, OrderType, QuantityType, Side, TimeInForce


class AlertAction(StrEnum):
    BUY = "buy"
    SELL = "sell"
    EXIT = "exit"
    CANCEL = "cancel"
    ADD = "add"


class Sentiment(StrEnum):
    """The position the sender wants once the trade is done (bullish and bearish map here)."""

    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class Alert:
    ticker: str
    action: AlertAction
    sentiment: Sentiment | None = None
    quantity: Decimal | None = None
    quantity_type: QuantityType = QuantityType.FIXED
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    extended_hours: bool = False
    take_profit: dict[str, Any] | None = None  # kept as sent; the exit engine reads it
    stop_loss: dict[str, Any] | None = None  # kept as sent; the exit engine reads it
    signal_price: Decimal | None = None
    sent_at: datetime | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Step:
    """One order of a plan; `quantity` None means the whole position."""

    action: Action
    quantity: Decimal | None
    after_previous_fill: bool = False  # send only once the previous step's order has filled


@dataclass(frozen=True, slots=True)
class Plan:
    steps: tuple[Step, ...] = ()
    cancel_open_orders: bool = False


# The rule table. Rows: action and sentiment; columns: the position held now.
# "qty" is the alert's quantity (required), "all" the whole position, "then" waits for the fill.
#
#   action  sentiment     | flat              | long                      | short
#   buy     none / long   | openLong qty      | refused already-long      | closeShort all, then openLong qty
#   buy     flat          | nothing-to-exit   | nothing-to-exit           | closeShort all
#   buy     short         | nothing-to-exit   | nothing-to-exit           | closeShort qty (stays short)
#   sell    none / short  | openShort qty     | closeLong all, then       | refused already-short
#                         |                   |   openShort qty           |
#   sell    flat          | nothing-to-exit   | closeLong all             | nothing-to-exit
#   sell    long          | nothing-to-exit   | closeLong qty (stays long)| nothing-to-exit
#   exit    any           | no-position       | closeLong qty or all      | closeShort qty or all
#   cancel  any           | cancel open orders, the position is kept (all columns)
#   add     any           | no-position       | openLong qty              | openShort qty
#
# A repeated entry alert is refused rather than doubling the position: `add` exists for that.
# Sentiment only shapes buy and sell; exit, cancel and add say all they mean by themselves.


def plan(alert: Alert, position_qty: Decimal) -> Plan:
    """The steps an alert takes given the signed position held now, or Rejected with a code."""
    if alert.quantity is not None and alert.quantity <= 0:
        raise Rejected(f"quantity must be positive, got {alert.quantity}", code="invalid-quantity")
    if alert.action is AlertAction.CANCEL:
        return Plan(cancel_open_orders=True)
    if alert.action is AlertAction.BUY:
        return _enter(alert, position_qty, Sentiment.LONG)
    if alert.action is AlertAction.SELL:
        return _enter(alert, -position_qty, Sentiment.SHORT)
    if position_qty == ZERO:
        raise Rejected(f"no position in {alert.ticker} to {alert.action}", code="no-position")
    long = position_qty > 0
    if alert.action is AlertAction.EXIT:
        return Plan((Step(Action.CLOSE_LONG if long else Action.CLOSE_SHORT, alert.quantity),))
    return Plan((Step(Action.OPEN_LONG if long else Action.OPEN_SHORT, _required(alert)),))


def _enter(alert: Alert, held: Decimal, toward: Sentiment) -> Plan:
    """Buy (toward long) or sell (toward short); `held` is positive when already that way."""
    open_, close = ((Action.OPEN_LONG, Action.CLOSE_SHORT) if toward is Sentiment.LONG
                    else (Action.OPEN_SHORT, Action.CLOSE_LONG))
    against = held < 0
    if alert.sentiment not in (None, toward):
        if not against:
            raise Rejected(f"no {_opposite(toward)} position in {alert.ticker} to exit",
                           code="nothing-to-exit")
        if alert.sentiment is Sentiment.FLAT:
            return Plan((Step(close, None),))
        return Plan((Step(close, _required(alert)),))  # a partial exit keeps the rest
    if held > 0:
        raise Rejected(f"already {toward} {alert.ticker}: use add to increase the position",
                       code=f"already-{toward}")
    qty = _required(alert)
    if against:
        return Plan((Step(close, None), Step(open_, qty, after_previous_fill=True)))
    return Plan((Step(open_, qty),))


def _opposite(side: Sentiment) -> Sentiment:
    return Sentiment.SHORT if side is Sentiment.LONG else Sentiment.LONG


def _required(alert: Alert) -> Decimal:
    if alert.quantity is None:
        raise Rejected(f"{alert.action} in {alert.ticker} needs a quantity", code="quantity-required")
    return alert.quantity


def is_stale(sent_at: datetime | None, now: datetime, max_lag_s: int | None) -> bool:
    """True when the alert was sent more than `max_lag_s` seconds before `now`."""
    if max_lag_s is None or sent_at is None:
        return False
    return now - sent_at > timedelta(seconds=max_lag_s)


def exit_plan(alert: Alert, side: Side, reference: Decimal | None) -> ExitPlan | None:
    """The exit plan an alert's `takeProfit` / `stopLoss` ask for, or None without them."""
    return protective_plan(alert.take_profit, alert.stop_loss, side, reference)


def protective_plan(tp: dict[str, Any] | None, sl: dict[str, Any] | None, side: Side,
                    reference: Decimal | None) -> ExitPlan | None:
    """The plan of `takeProfit` / `stopLoss` objects (the TradersPost shape, on any front door).

    Percent and amount levels are measured from `reference` (the order's limit or signal
    price, else the last price); without one only absolute levels can be used. A stop_limit
    stop is run as a stop (a STOP order, or a market order when emulated).
    """
    if tp is None and sl is None:
        return None
    sign = side.sign
    targets: tuple[Target, ...] = ()
    if tp is not None:
        price = _level(tp, "limitPrice", reference, sign)
        if price is None:
            raise Rejected("a takeProfit in percent or amount needs a price to measure from",
                           code="no-reference-price")
        targets = (Target(price, Decimal(1)),)
    stop, trailing = None, None
    if sl is not None and sl.get("type", "stop") == "trailing_stop":
        trailing = Trailing(percent=_num(sl.get("trailPercent")), amount=_num(sl.get("trailAmount")))
    elif sl is not None:
        stop = _level(sl, "stopPrice", reference, -sign)
        if stop is None:
            raise Rejected("a stopLoss in percent or amount needs a price to measure from",
                           code="no-reference-price")
    return ExitPlan(side=side, targets=targets, stop_loss=stop, trailing=trailing)


def _level(obj: dict[str, Any], absolute: str, reference: Decimal | None,
           sign: int) -> Decimal | None:
    """An absolute price, or `reference` moved by a percent or an amount in `sign`'s way."""
    if obj.get(absolute) is not None:
        return _num(obj[absolute])
    if reference is None:
        return None
    percent, amount = _num(obj.get("percent")), _num(obj.get("amount"))
    if percent is not None:
        return reference * (1 + sign * percent / 100)
    if amount is not None:
        return reference + sign * amount
    return None


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
