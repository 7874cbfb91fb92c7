"""The paper fill model: one working order against one price, deterministic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradewire.domain.matching import FillModel, Match, Working, match
from tradewire.domain.values import OrderType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
DAY, GTC, IOC, FOK = TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
FREE = FillModel()
SLIPPY = FillModel(slippage_bps=Decimal(10))  # 0.1%


def working(side: Side, order_type: OrderType, *, limit: str | None = None,
            stop: str | None = None, tif: TimeInForce = DAY, triggered: bool = False) -> Working:
    return Working(side=side, order_type=order_type, qty=Decimal(10), time_in_force=tif,
                   limit_price=Decimal(limit) if limit else None,
                   stop_price=Decimal(stop) if stop else None, triggered=triggered)


def at(order: Working, price: str, model: FillModel = FREE, *, on_arrival: bool = False) -> Match:
    return match(order, Decimal(price), model, on_arrival=on_arrival)


# ---- the fill model --------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "expected"), [(BUY, "100.1"), (SELL, "99.9")])
def test_slippage_goes_against_the_trader(side: Side, expected: str) -> None:
    assert SLIPPY.market_price(side, Decimal(100)) == Decimal(expected)


def test_fee_is_basis_points_of_the_notional() -> None:
    assert FillModel(fee_bps=Decimal(5)).fee(Decimal(10), Decimal(100)) == Decimal("0.5")


def test_the_default_model_costs_nothing() -> None:
    assert FREE.market_price(BUY, Decimal("190.37")) == Decimal("190.37")
    assert FREE.fee(Decimal(10), Decimal(100)) == 0


# ---- market ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("on_arrival", [True, False])
@pytest.mark.parametrize(("side", "model", "expected"), [
    (BUY, FREE, "100"), (SELL, FREE, "100"), (BUY, SLIPPY, "100.1"), (SELL, SLIPPY, "99.9"),
])
def test_market_order_fills_at_the_quote_plus_slippage(side: Side, model: FillModel,
                                                       expected: str, on_arrival: bool) -> None:
    verdict = at(working(side, MARKET), "100", model, on_arrival=on_arrival)
    assert verdict.fills and verdict.price == Decimal(expected)
    assert verdict.cancel_reason is None


# ---- limit ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "limit", "quote", "expected"), [
    pytest.param(BUY, "100", "99", "99", id="buy-below-limit-fills-at-the-better-quote"),
    pytest.param(BUY, "100", "100", "100", id="buy-at-limit-fills-at-limit"),
    pytest.param(BUY, "100", "100.01", None, id="buy-above-limit-waits"),
    pytest.param(SELL, "100", "101", "101", id="sell-above-limit-fills-at-the-better-quote"),
    pytest.param(SELL, "100", "100", "100", id="sell-at-limit-fills-at-limit"),
    pytest.param(SELL, "100", "99.99", None, id="sell-below-limit-waits"),
])
def test_limit_order_fills_only_when_marketable_at_the_better_price(
        side: Side, limit: str, quote: str, expected: str | None) -> None:
    verdict = at(working(side, LIMIT, limit=limit), quote)
    assert verdict.price == (Decimal(expected) if expected else None)
    assert verdict.cancel_reason is None


@pytest.mark.parametrize("side", [BUY, SELL])
def test_limit_fill_pays_no_slippage(side: Side) -> None:
    assert at(working(side, LIMIT, limit="100"), "100", SLIPPY).price == Decimal(100)


# ---- stop and stop-limit ------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "stop", "quote", "fills_at"), [
    pytest.param(BUY, "105", "104.99", None, id="buy-stop-below-the-stop-waits"),
    pytest.param(BUY, "105", "105", "105", id="buy-stop-at-the-stop-fires"),
    pytest.param(BUY, "105", "107", "107", id="buy-stop-above-the-stop-fills-at-the-quote"),
    pytest.param(SELL, "95", "95.01", None, id="sell-stop-above-the-stop-waits"),
    pytest.param(SELL, "95", "95", "95", id="sell-stop-at-the-stop-fires"),
    pytest.param(SELL, "95", "93", "93", id="sell-stop-below-the-stop-fills-at-the-quote"),
])
def test_stop_order_becomes_a_market_order_once_the_stop_is_reached(
        side: Side, stop: str, quote: str, fills_at: str | None) -> None:
    verdict = at(working(side, STOP, stop=stop), quote)
    assert verdict.price == (Decimal(fills_at) if fills_at else None)
    assert verdict.triggered is (fills_at is not None)


def test_triggered_stop_fills_with_market_slippage() -> None:
    assert at(working(SELL, STOP, stop="95"), "94", SLIPPY).price == Decimal("93.906")


def test_triggered_stop_fills_even_after_the_price_comes_back() -> None:
    assert at(working(BUY, STOP, stop="105", triggered=True), "101").price == Decimal(101)


@pytest.mark.parametrize(("side", "stop", "limit", "quote"), [
    pytest.param(BUY, "105", "106", "107", id="buy-gaps-past-its-limit"),
    pytest.param(SELL, "95", "94", "93", id="sell-gaps-past-its-limit"),
])
def test_stop_limit_triggers_but_waits_when_the_quote_is_beyond_its_limit(
        side: Side, stop: str, limit: str, quote: str) -> None:
    verdict = at(working(side, STOP_LIMIT, stop=stop, limit=limit), quote)
    assert verdict.triggered and not verdict.fills and verdict.cancel_reason is None


@pytest.mark.parametrize(("side", "stop", "limit", "quote", "expected"), [
    pytest.param(BUY, "105", "106", "105.5", "105.5", id="buy-within-limit"),
    pytest.param(BUY, "105", "106", "104", "104", id="buy-after-falling-back-below-the-stop"),
    pytest.param(BUY, "105", "106", "106.5", None, id="buy-still-beyond-limit"),
    pytest.param(SELL, "95", "94", "94.5", "94.5", id="sell-within-limit"),
    pytest.param(SELL, "95", "94", "96", "96", id="sell-after-rising-back-above-the-stop"),
    pytest.param(SELL, "95", "94", "93.5", None, id="sell-still-beyond-limit"),
])
def test_triggered_stop_limit_behaves_as_a_limit(side: Side, stop: str, limit: str, quote: str,
                                                 expected: str | None) -> None:
    order = working(side, STOP_LIMIT, stop=stop, limit=limit, triggered=True)
    verdict = at(order, quote, SLIPPY)
    assert verdict.price == (Decimal(expected) if expected else None)
    assert verdict.triggered


@pytest.mark.parametrize(("side", "stop", "limit", "quote"), [
    (BUY, "105", "106", "104"), (SELL, "95", "94", "96"),
])
def test_untriggered_stop_limit_does_not_fill_even_inside_its_limit(
        side: Side, stop: str, limit: str, quote: str) -> None:
    verdict = at(working(side, STOP_LIMIT, stop=stop, limit=limit), quote)
    assert not verdict.fills and not verdict.triggered


# ---- time in force --------------------------------------------------------------------------------------

NOT_MARKETABLE_AT_100 = [
    pytest.param(BUY, LIMIT, "99", None, id="limit-buy-below-the-quote"),
    pytest.param(SELL, LIMIT, "101", None, id="limit-sell-above-the-quote"),
    pytest.param(BUY, STOP, None, "105", id="buy-stop-not-reached"),
    pytest.param(SELL, STOP_LIMIT, "94", "95", id="sell-stop-limit-not-reached"),
]


@pytest.mark.parametrize("tif", [IOC, FOK])
@pytest.mark.parametrize(("side", "order_type", "limit", "stop"), NOT_MARKETABLE_AT_100)
def test_ioc_and_fok_cancel_when_not_marketable_on_arrival(
        tif: TimeInForce, side: Side, order_type: OrderType, limit: str | None,
        stop: str | None) -> None:
    verdict = at(working(side, order_type, limit=limit, stop=stop, tif=tif), "100",
                 on_arrival=True)
    assert not verdict.fills
    assert verdict.cancel_reason is not None and str(tif) in verdict.cancel_reason


@pytest.mark.parametrize("tif", [IOC, FOK])
@pytest.mark.parametrize(("side", "order_type", "limit", "expected"), [
    (BUY, MARKET, None, "100"), (BUY, LIMIT, "101", "100"), (SELL, LIMIT, "99", "100"),
])
def test_ioc_and_fok_fill_when_marketable_on_arrival(tif: TimeInForce, side: Side,
                                                     order_type: OrderType, limit: str | None,
                                                     expected: str) -> None:
    verdict = at(working(side, order_type, limit=limit, tif=tif), "100", on_arrival=True)
    assert verdict.price == Decimal(expected) and verdict.cancel_reason is None


@pytest.mark.parametrize("on_arrival", [True, False])
@pytest.mark.parametrize("tif", [DAY, GTC])
@pytest.mark.parametrize(("side", "order_type", "limit", "stop"), NOT_MARKETABLE_AT_100)
def test_a_resting_day_or_gtc_order_just_waits(
        tif: TimeInForce, side: Side, order_type: OrderType, limit: str | None,
        stop: str | None, on_arrival: bool) -> None:
    verdict = at(working(side, order_type, limit=limit, stop=stop, tif=tif), "100",
                 on_arrival=on_arrival)
    assert not verdict.fills and verdict.cancel_reason is None
