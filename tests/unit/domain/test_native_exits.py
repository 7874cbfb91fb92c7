"""Native exits: which legs rest at a broker, what rests, and how a resting fill moves a plan."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradewire.domain.exit_plan import (
    ExitLeg,
    ExitPlan,
    Target,
    Trailing,
    arm,
    levels,
    on_native_fill,
    on_price,
)
from tradewire.domain.native_exits import Resting, native_legs, resting, without
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.domain.venues import BrokerCapabilities

D = Decimal
STOP, TP = ExitLeg.STOP, ExitLeg.TAKE_PROFIT
PLAN = ExitPlan(side=Side.BUY, targets=(Target(D(110), D("0.5")), Target(D(120), D("0.5"))),
                stop_loss=D(90))


@pytest.mark.parametrize(("caps", "legs"), [
    (BrokerCapabilities(native_stop=True, native_take_profit=True, oco=True), {STOP, TP}),
    # Without one-cancels-other a stop and a target could both fill: the target is emulated.
    (BrokerCapabilities(native_stop=True, native_take_profit=True, oco=False), {STOP}),
    # A target never rests alone: the emulated stop could fill beside it.
    (BrokerCapabilities(native_stop=False, native_take_profit=True, oco=True), set()),
    (BrokerCapabilities(native_stop=True, order_types=frozenset({OrderType.MARKET})), set()),
    (BrokerCapabilities(native_stop=True, time_in_force=frozenset({TimeInForce.DAY})), set()),
])
def test_the_legs_a_broker_rests_follow_its_declared_capabilities(
        caps: BrokerCapabilities, legs: set[ExitLeg]) -> None:
    assert native_legs(caps) == frozenset(legs)


def test_a_refused_stop_takes_the_target_back_to_emulation_too() -> None:
    assert without(frozenset({STOP, TP}), STOP) == frozenset()
    assert without(frozenset({STOP, TP}), TP) == frozenset({STOP})


def test_the_stop_and_the_next_target_rest_for_what_is_held() -> None:
    state = arm(PLAN, D(10), D(100))
    assert resting(PLAN, state, frozenset({STOP, TP}), held=D(10)) == [
        Resting(STOP, Side.SELL, D(10), D(90)),
        Resting(TP, Side.SELL, D(5), D(110), 0)]
    # Never more than the position: a partial close by hand shrinks the stop.
    assert resting(PLAN, state, frozenset({STOP}), held=D(4)) == [
        Resting(STOP, Side.SELL, D(4), D(90))]
    assert resting(PLAN, state, frozenset({STOP}), held=D(0)) == []
    assert resting(PLAN, state, frozenset(), held=D(10)) == []


def test_a_native_stop_is_neither_watched_nor_fired_here() -> None:
    state = arm(PLAN, D(10), D(100))
    assert levels(PLAN, state, frozenset({STOP})) == (None, D(110))
    assert levels(PLAN, state, frozenset({STOP, TP})) == (None, None)
    actions, after = on_price(PLAN, state, D(85), frozenset({STOP}))
    assert actions == [] and after.open_qty == 10  # the broker's stop does it


def test_a_native_target_fill_moves_the_plan_as_the_emulated_one_would() -> None:
    plan = ExitPlan(side=Side.BUY, targets=PLAN.targets, stop_loss=D(90),
                    break_even_after_first=True)
    state = arm(plan, D(10), D(100))
    _, emulated = on_price(plan, state, D(110))
    native = on_native_fill(plan, state, TP, 0, D(5))
    assert native == emulated  # half closed, target 1 hit, stop at the entry
    assert resting(plan, native, frozenset({STOP, TP}), held=D(5)) == [
        Resting(STOP, Side.SELL, D(5), D(100)),
        Resting(TP, Side.SELL, D(5), D(120), 1)]


def test_a_native_stop_fill_closes_the_plan_and_a_partial_one_shrinks_it() -> None:
    state = arm(PLAN, D(10), D(100))
    part = on_native_fill(PLAN, state, STOP, None, D(4))
    assert (part.open_qty, part.closed) == (6, False)
    done = on_native_fill(PLAN, part, STOP, None, D(6))
    assert (done.open_qty, done.closed) == (0, True)
    assert resting(PLAN, done, frozenset({STOP}), held=D(0)) == []


def test_the_resting_stop_follows_the_trailing_stop_once_it_is_tighter() -> None:
    plan = ExitPlan(side=Side.SELL, stop_loss=D(110), trailing=Trailing(amount=D(5)))
    state = arm(plan, D(3), D(100))  # a short trailing from the entry: stop at 105
    assert resting(plan, state, frozenset({STOP}), held=D(3)) == [
        Resting(STOP, Side.BUY, D(3), D(105))]
    below, above = levels(plan, state, frozenset({STOP}))
    assert (below, above) == (D(100), None)  # only the anchor is watched, to move the stop
    _, moved = on_price(plan, state, D(90), frozenset({STOP}))
    assert resting(plan, moved, frozenset({STOP}), held=D(3)) == [
        Resting(STOP, Side.BUY, D(3), D(95))]
