"""What a broker can do, as data: the exit engine and the order path read it instead of
asking which broker it is."""

from __future__ import annotations

from dataclasses import dataclass, field

from tradewire.domain.values import OrderType, TimeInForce


@dataclass(frozen=True, slots=True)
class BrokerCapabilities:
    order_types: frozenset[OrderType] = frozenset(OrderType)
    time_in_force: frozenset[TimeInForce] = frozenset(TimeInForce)
    native_stop: bool = True  # a resting stop order at the broker
    native_take_profit: bool = True  # a resting limit that closes the position
    native_trailing: bool = False
    bracket: bool = False  # entry with take-profit and stop-loss attached
    oco: bool = True  # one-cancels-other between resting orders
    fractional: bool = True  # fractional quantities
    shorting: bool = True
    netting: bool = True  # one position per symbol (a flip is refused or split)
    client_order_id_max: int = 48
    # A market order sent before the market has traded waits for the first trade (True), or
    # ends at once unfilled (False: an exchange with no liquidity expires it).
    market_rests_without_price: bool = True
    markets: tuple[str, ...] = field(default=())  # calendars it trades on; empty: any

    def supports(self, order_type: OrderType, tif: TimeInForce) -> bool:
        return order_type in self.order_types and tif in self.time_in_force

    def to_dict(self) -> dict[str, object]:
        return {
            "order_types": sorted(str(t) for t in self.order_types),
            "time_in_force": sorted(str(t) for t in self.time_in_force),
            "native_stop": self.native_stop, "native_take_profit": self.native_take_profit,
            "native_trailing": self.native_trailing, "bracket": self.bracket, "oco": self.oco,
            "fractional": self.fractional, "shorting": self.shorting, "netting": self.netting,
            "client_order_id_max": self.client_order_id_max,
            "market_rests_without_price": self.market_rests_without_price,
        }
