"""Exits that rest at the broker: which legs of a plan may, and the orders the plan wants there.

The stop rests as a STOP order wherever the broker declares `native_stop`: it protects the
position while tradewire is down. The next take-profit target rests as a LIMIT order only
where the stop rests too and the broker declares `oco`: two resting orders that each close
the position could otherwise both fill. Without `oco` the take-profit is emulated. Trailing
stops are emulated everywhere: the trailing logic moves the stop, and the resting stop is
replaced. Adds (rebuy, DCA) are entries and always emulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradewire.domain.exit_plan import ExitLeg, ExitPlan, PlanState, stop_in_force, target_qty
from tradewire.domain.values import ZERO, OrderType, Side, TimeInForce
from tradewire.domain.venues import BrokerCapabilities

RESTING_TIF = TimeInForce.GTC  # a resting exit lasts as long as the position


def native_legs(caps: BrokerCapabilities) -> frozenset[ExitLeg]:
    """The legs a plan on this broker rests there (decided when the plan is armed)."""
    stop = caps.native_stop and caps.supports(OrderType.STOP, RESTING_TIF)
    take_profit = (stop and caps.oco and caps.native_take_profit
                   and caps.supports(OrderType.LIMIT, RESTING_TIF))
    return frozenset({ExitLeg.STOP} if stop else set()) | frozenset(
        {ExitLeg.TAKE_PROFIT} if take_profit else set())


def without(legs: frozenset[ExitLeg], refused: ExitLeg) -> frozenset[ExitLeg]:
    """The legs left native when the broker refuses one: a take-profit never rests alone."""
    if refused is ExitLeg.STOP:
        return frozenset()
    return legs - {refused}


@dataclass(frozen=True, slots=True)
class Resting:
    """One order the plan wants resting at the broker: it closes `qty` at `price`."""

    leg: ExitLeg
    side: Side  # the closing side
    qty: Decimal
    price: Decimal  # the stop price of a stop, the limit price of a take-profit
    index: int | None = None  # a take-profit's target, in plan.targets

    @property
    def name(self) -> str:
        """How the order row names its leg (`stop`, `take_profit:1`)."""
        return str(self.leg) if self.index is None else f"{self.leg}:{self.index}"

    @property
    def order_type(self) -> OrderType:
        return OrderType.STOP if self.leg is ExitLeg.STOP else OrderType.LIMIT


def parse_leg(name: str) -> tuple[ExitLeg, int | None]:
    leg, _, index = name.partition(":")
    return ExitLeg(leg), int(index) if index else None


def resting(plan: ExitPlan, state: PlanState | None, legs: frozenset[ExitLeg],
            held: Decimal) -> list[Resting]:
    """The orders that should rest now. `held` is the position in the plan's direction: a
    resting exit never closes more than is there (reduce-only in effect)."""
    if state is None or state.closed or not legs:
        return []
    qty = min(state.open_qty, held)
    if qty <= 0:
        return []
    closing = Side.SELL if plan.side is Side.BUY else Side.BUY
    out = []
    stop = stop_in_force(plan, state)
    if ExitLeg.STOP in legs and stop is not None:
        out.append(Resting(ExitLeg.STOP, closing, qty, stop))
    hit = state.targets_hit
    if ExitLeg.TAKE_PROFIT in legs and hit < len(plan.targets):
        take = min(target_qty(plan, state.entry_qty, hit, state.open_qty), qty)
        if take > ZERO:
            out.append(Resting(ExitLeg.TAKE_PROFIT, closing, take, plan.targets[hit].price, hit))
    return out
