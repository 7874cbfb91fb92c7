"""Order quantity from a signal's sizing rule: fixed, percentEquity and dollarAmount."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradewire.domain.errors import Rejected
from tradewire.domain.sizing import order_quantity
from tradewire.domain.values import QuantityType

FIXED, PCT, DOLLARS = QuantityType.FIXED, QuantityType.PERCENT_EQUITY, QuantityType.DOLLAR_AMOUNT


def d(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@pytest.mark.parametrize(("quantity", "kind", "price", "equity", "expected"), [
    pytest.param("100", FIXED, "190", "100000", "100", id="fixed-is-the-quantity"),
    pytest.param("0.5", FIXED, None, None, "0.5", id="fixed-needs-no-price-nor-equity"),
    pytest.param("5000", DOLLARS, "250", None, "20", id="dollar-amount-divides-by-price"),
    pytest.param("5000", DOLLARS, "190", None, "26.315789", id="dollar-amount-rounds-down"),
    pytest.param("2", DOLLARS, "3", None, "0.666666", id="rounds-down-not-to-nearest"),
    pytest.param("10", PCT, "250", "100000", "40", id="percent-of-equity"),
    pytest.param("1", PCT, "3", "1000", "3.333333", id="percent-of-equity-rounds-down"),
    pytest.param("150", PCT, "100", "1000", "15", id="percent-above-100-is-leverage"),
    pytest.param("0.000001", DOLLARS, "1", None, "0.000001", id="the-smallest-step-is-allowed"),
])
def test_order_quantity(quantity: str, kind: QuantityType, price: str | None,
                        equity: str | None, expected: str) -> None:
    qty = order_quantity(Decimal(quantity), kind, price=d(price), equity=d(equity))
    assert qty == Decimal(expected)


@pytest.mark.parametrize(("quantity", "kind", "price", "equity", "code"), [
    pytest.param("5000", DOLLARS, None, None, "NO_PRICE", id="dollar-amount-without-price"),
    pytest.param("5000", DOLLARS, "0", None, "NO_PRICE", id="dollar-amount-at-zero-price"),
    pytest.param("10", PCT, None, "100000", "NO_PRICE", id="percent-without-price"),
    pytest.param("10", PCT, "-1", "100000", "NO_PRICE", id="percent-at-negative-price"),
    pytest.param("10", PCT, "100", None, "INSUFFICIENT_FUNDS", id="percent-without-equity"),
    pytest.param("10", PCT, "100", "0", "INSUFFICIENT_FUNDS", id="percent-of-zero-equity"),
    pytest.param("10", PCT, "100", "-500", "INSUFFICIENT_FUNDS", id="percent-of-negative-equity"),
    pytest.param("0.0000001", DOLLARS, "1000", None, "QUANTITY_TOO_SMALL",
                 id="dollar-amount-too-small"),
    pytest.param("0.00001", PCT, "60000", "100", "QUANTITY_TOO_SMALL", id="percent-too-small"),
])
def test_order_quantity_refusals_carry_a_code(quantity: str, kind: QuantityType,
                                              price: str | None, equity: str | None,
                                              code: str) -> None:
    with pytest.raises(Rejected) as caught:
        order_quantity(Decimal(quantity), kind, price=d(price), equity=d(equity))
    assert caught.value.code == code
