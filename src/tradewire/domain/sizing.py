"""Quantity from a signal's sizing rule: fixed, percent of equity, or a dollar amount."""

from __future__ import annotations

from decimal import Decimal

from tradewire.domain.errors import Rejected
from tradewire.domain.values import QuantityType, round_qty


def order_quantity(
    quantity: Decimal,
    quantity_type: QuantityType,
    *,
    price: Decimal | None,
    equity: Decimal | None,
) -> Decimal:
    """Units to order. `price` is the reference price; `equity` the account's equity."""
    if quantity_type is QuantityType.FIXED:
        return quantity
    if price is None or price <= 0:
        raise Rejected(f"no price is known to size a {quantity_type} order", code="NO_PRICE")
    if quantity_type is QuantityType.DOLLAR_AMOUNT:
        notional = quantity
    else:
        if equity is None or equity <= 0:
            raise Rejected("the account has no equity to size a percentEquity order",
                           code="INSUFFICIENT_FUNDS")
        notional = equity * quantity / 100
    qty = round_qty(notional / price)
    if qty <= 0:
        raise Rejected(f"{quantity} {quantity_type} buys less than the smallest quantity",
                       code="QUANTITY_TOO_SMALL")
    return qty
