"""The paper fill model: a pure, deterministic matching rule for one order against one price.

The paper broker and the backtester both use it. Liquidity is taken as unlimited at the
quoted price, so an order either fills whole or not at all; slippage and fees are the knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradewire.domain.values import ZERO, OrderType, Side, TimeInForce

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class FillModel:
    """Costs applied to every paper fill, in basis points of the notional or price."""

    fee_bps: Decimal = ZERO
    slippage_bps: Decimal = ZERO

    def market_price(self, side: Side, price: Decimal) -> Decimal:
        """A market fill pays the slippage against itself: buyers pay up, sellers get less."""
        return price * (1 + side.sign * self.slippage_bps / BPS)

    def fee(self, qty: Decimal, price: Decimal) -> Decimal:
        return qty * price * self.fee_bps / BPS


@dataclass(frozen=True, slots=True)
class Working:
    """What the matcher needs of a working order."""

    side: Side
    order_type: OrderType
    qty: Decimal
    time_in_force: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    triggered: bool = False  # a stop whose stop price has been reached


@dataclass(frozen=True, slots=True)
class Match:
    """The matcher's verdict: fill at `price`, keep working, or cancel (ioc/fok misses)."""

    price: Decimal | None = None
    triggered: bool = False
    cancel_reason: str | None = None

    @property
    def fills(self) -> bool:
        return self.price is not None


def _stop_reached(order: Working, price: Decimal) -> bool:
    assert order.stop_price is not None
    # A buy stop fires when the price rises to it, a sell stop when it falls to it.
    if order.side is Side.BUY:
        return price >= order.stop_price
    return price <= order.stop_price


def _limit_price(order: Working, price: Decimal) -> Decimal | None:
    """The fill price of a limit at this quote: the better of quote and limit, or none."""
    assert order.limit_price is not None
    if order.side is Side.BUY:
        return min(price, order.limit_price) if price <= order.limit_price else None
    return max(price, order.limit_price) if price >= order.limit_price else None


def match(order: Working, price: Decimal, model: FillModel, *, on_arrival: bool) -> Match:
    """Match a working order against one price (`on_arrival` for the first look at submit)."""
    triggered = order.triggered
    if order.order_type.needs_stop_price and not triggered:
        triggered = _stop_reached(order, price)
        if not triggered:
            return _miss(order, on_arrival, triggered)
    if order.order_type in (OrderType.MARKET, OrderType.STOP):
        return Match(price=model.market_price(order.side, price), triggered=triggered)
    fill_price = _limit_price(order, price)
    if fill_price is None:
        return _miss(order, on_arrival, triggered)
    return Match(price=fill_price, triggered=triggered)


def _miss(order: Working, on_arrival: bool, triggered: bool) -> Match:
    # ioc and fok take what is there on arrival and cancel the rest; with unlimited
    # liquidity at the quote, both mean "fill now or cancel".
    if on_arrival and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        return Match(triggered=triggered, cancel_reason=f"{order.time_in_force} not marketable")
    return Match(triggered=triggered)
