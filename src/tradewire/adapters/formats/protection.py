"""`takeProfit` / `stopLoss` objects (the TradersPost shape), checked the same on every door."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from tradewire.adapters.formats.errors import detail


def take_profit_problems(tp: dict[str, Any]) -> list[dict[str, Any]]:
    """`{limitPrice}` or `{percent}` or `{amount}`: exactly one, positive."""
    return (_one_of(tp, ("limitPrice", "percent", "amount"), "takeProfit")
            + _positive(tp, ("limitPrice", "percent", "amount"), "takeProfit"))


_STOP_LOSS_TYPES = ("stop", "stop_limit", "trailing_stop")
_STOP_LOSS_NUMBERS = ("stopPrice", "percent", "amount", "limitPrice", "trailAmount", "trailPercent")


def stop_loss_problems(sl: dict[str, Any]) -> list[dict[str, Any]]:
    """`{type, stopPrice|percent|amount, limitPrice, trailAmount|trailPercent}`."""
    kind = sl.get("type", "stop")
    if kind not in _STOP_LOSS_TYPES:
        return [detail("invalid_enum_value", "stopLoss type must be stop, stop_limit or trailing_stop",
                       ["stopLoss", "type"])]
    if kind == "trailing_stop":
        p = _one_of(sl, ("trailAmount", "trailPercent"), "stopLoss")
    else:
        p = _one_of(sl, ("stopPrice", "percent", "amount"), "stopLoss")
    if kind == "stop_limit" and sl.get("limitPrice") is None:
        p.append(detail("custom", "limitPrice is required for a stop_limit stopLoss",
                        ["stopLoss", "limitPrice"]))
    return p + _positive(sl, _STOP_LOSS_NUMBERS, "stopLoss")


def _one_of(obj: dict[str, Any], keys: tuple[str, ...], name: str) -> list[dict[str, Any]]:
    if sum(obj.get(k) is not None for k in keys) == 1:
        return []
    return [detail("custom", f"{name} needs exactly one of {', '.join(keys)}", [name])]


def _positive(obj: dict[str, Any], keys: tuple[str, ...], name: str) -> list[dict[str, Any]]:
    return [detail("custom", f"{name}.{k} must be a positive number", [name, k])
            for k in keys if obj.get(k) is not None and not _is_positive_number(obj[k])]


def _is_positive_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return False
    return number.is_finite() and number > 0
