"""Exit plans: targets, stops, trailing stops, break-even and adds, for longs and shorts.

Most cases are written for a long entered at 100 and run again as the mirrored short: every
price p becomes 200 - p (a trailing percent does not mirror, so those cases are written twice).
"""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tradewire.domain.exit_plan import (
    AddLevel,
    ExitAction,
    ExitKind,
    ExitPlan,
    PlanState,
    Target,
    Trailing,
    arm,
    levels,
    on_fill_of_add,
    on_price,
    validate,
)
from tradewire.domain.values import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
TP, SL, TS, ADD = ExitKind.TAKE_PROFIT, ExitKind.STOP_LOSS, ExitKind.TRAILING_STOP, ExitKind.ADD
ENTRY = D(100)


def flip(price: Decimal, side: Side) -> Decimal:
    """A long's price as the mirrored short sees it."""
    return price if side is BUY else 2 * ENTRY - price


def plan(side: Side = BUY, *, targets: tuple[tuple[str, str], ...] = (), stop: str | None = None,
         trail_amount: str | None = None, trail_percent: str | None = None,
         activation: str | None = None, adds: tuple[tuple[str, str], ...] = (),
         break_even: bool = False, mirror: bool = True) -> ExitPlan:
    """A plan written in a long's prices; for SELL they are mirrored unless `mirror` is False."""
    def px(p: str) -> Decimal:
        return flip(D(p), side) if mirror else D(p)

    trailing = None
    if trail_amount or trail_percent:
        trailing = Trailing(percent=D(trail_percent) if trail_percent else None,
                            amount=D(trail_amount) if trail_amount else None,
                            activation_price=px(activation) if activation else None)
    return ExitPlan(side=side, targets=tuple(Target(px(p), D(s)) for p, s in targets),
                    stop_loss=px(stop) if stop else None, trailing=trailing,
                    adds=tuple(AddLevel(px(p), D(q)) for p, q in adds),
                    break_even_after_first=break_even)


Row = tuple[ExitKind, Decimal, Decimal, int | None]


def expect(*rows: tuple[ExitKind, str, str, int | None]) -> list[Row]:
    return [(kind, D(qty), D(price), index) for kind, qty, price, index in rows]


def feed(p: ExitPlan, prices: list[str], *, qty: str = "10", mirror: bool = True,
         state: PlanState | None = None) -> tuple[list[Row], PlanState]:
    """Arm the plan (unless a state is given), feed it the prices; actions in long prices."""
    state = state or arm(p, D(qty), ENTRY)
    rows: list[Row] = []
    for price in prices:
        tick = flip(D(price), p.side) if mirror else D(price)
        actions, state = on_price(p, state, tick)
        rows += [_row(a, p.side if mirror else BUY) for a in actions]
    return rows, state


def _row(action: ExitAction, side: Side) -> Row:
    return (action.kind, action.qty, flip(action.reference_price, side), action.index)


LADDER = (("110", "0.5"), ("120", "0.5"))
SIDES = pytest.mark.parametrize("side", [BUY, SELL], ids=["long", "short"])


# ---- the rules, one case per line, each run for a long and the mirrored short --------------


@SIDES
@pytest.mark.parametrize(("kwargs", "prices", "expected", "closed"), [
    pytest.param({"stop": "90"}, ["95", "90"], [(SL, "10", "90", None)], True,
                 id="stop-fires-at-the-stop"),
    pytest.param({"stop": "90"}, ["85"], [(SL, "10", "90", None)], True,
                 id="stop-fires-on-a-gap-past-it"),
    pytest.param({"stop": "90"}, ["91", "99", "150"], [], False,
                 id="stop-waits-while-the-price-stays-on-the-right-side"),
    pytest.param({"targets": LADDER}, ["110"], [(TP, "5", "110", 0)], False,
                 id="first-target-closes-its-share"),
    pytest.param({"targets": LADDER}, ["109.99"], [], False, id="target-not-reached-waits"),
    pytest.param({"targets": LADDER}, ["110", "115", "120"],
                 [(TP, "5", "110", 0), (TP, "5", "120", 1)], True,
                 id="targets-fire-in-order-and-the-last-closes"),
    pytest.param({"targets": LADDER}, ["125"], [(TP, "5", "110", 0), (TP, "5", "120", 1)], True,
                 id="gap-through-two-targets-fires-both"),
    pytest.param({"targets": (("120", "0.5"), ("110", "0.5"))}, ["115"], [(TP, "5", "110", 0)],
                 False, id="targets-given-out-of-order-fire-nearest-first"),
    pytest.param({"targets": (("110", "0.3"),)}, ["110", "200"], [(TP, "3", "110", 0)], False,
                 id="shares-under-one-leave-the-rest-open"),
    pytest.param({"targets": (("110", "0.7"), ("120", "0.7"))}, ["120"],
                 [(TP, "7", "110", 0), (TP, "3", "120", 1)], True,
                 id="a-target-is-capped-at-what-is-held"),
    pytest.param({"targets": (("110", "0.3"), ("120", "0.7")), "stop": "90"}, ["110", "90"],
                 [(TP, "3", "110", 0), (SL, "7", "90", None)], True,
                 id="stop-after-a-target-closes-the-rest"),
    pytest.param({"targets": LADDER, "stop": "90", "break_even": True}, ["110", "100"],
                 [(TP, "5", "110", 0), (SL, "5", "100", None)], True,
                 id="break-even-after-first-target-moves-the-stop-to-the-entry"),
    pytest.param({"targets": LADDER, "break_even": True}, ["110", "100"],
                 [(TP, "5", "110", 0), (SL, "5", "100", None)], True,
                 id="break-even-without-a-stop-sets-one-at-the-entry"),
    pytest.param({"targets": LADDER, "stop": "90"}, ["110", "100"], [(TP, "5", "110", 0)], False,
                 id="without-break-even-the-stop-stays"),
    pytest.param({"trail_amount": "5"}, ["104", "108", "103.01", "103"], [(TS, "10", "103", None)],
                 True, id="trailing-without-activation-follows-from-the-entry-then-fires"),
    pytest.param({"trail_amount": "5"}, ["95"], [(TS, "10", "95", None)], True,
                 id="trailing-without-activation-fires-below-the-entry"),
    pytest.param({"trail_amount": "5", "activation": "110"}, ["104", "90", "109"], [], False,
                 id="trailing-waits-for-its-activation-price"),
    pytest.param({"trail_amount": "5", "activation": "110"}, ["111", "115", "112", "110"],
                 [(TS, "10", "110", None)], True,
                 id="trailing-activates-follows-the-best-price-then-fires"),
    pytest.param({"trail_amount": "5", "stop": "96"}, ["94"], [(SL, "10", "96", None)], True,
                 id="stop-and-trailing-on-one-price-report-the-fixed-stop"),
    pytest.param({"adds": (("95", "5"),)}, ["95", "100", "94", "90"], [(ADD, "5", "95", 0)], False,
                 id="an-add-level-fires-once"),
    pytest.param({"adds": (("90", "5"), ("95", "3"))}, ["89"],
                 [(ADD, "3", "95", 1), (ADD, "5", "90", 0)], False,
                 id="gap-through-two-add-levels-fires-both-nearest-first"),
    pytest.param({"adds": (("95", "5"),)}, ["96", "120"], [], False,
                 id="an-add-level-not-reached-waits"),
    pytest.param({"stop": "90", "adds": (("92", "5"),)}, ["89"], [(SL, "10", "90", None)], True,
                 id="stop-and-add-on-one-price-the-stop-wins-and-nothing-is-added"),
    pytest.param({"stop": "90", "targets": LADDER}, ["90", "130", "50"], [(SL, "10", "90", None)],
                 True, id="a-closed-plan-does-nothing-more"),
])
def test_rule(side: Side, kwargs: dict[str, Any], prices: list[str],
              expected: list[tuple[ExitKind, str, str, int | None]], closed: bool) -> None:
    rows, state = feed(plan(side, **kwargs), prices)
    assert rows == expect(*expected)
    assert state.closed is closed


@pytest.mark.parametrize(("side", "activation", "prices", "trigger"), [
    pytest.param(BUY, "110", ["120", "108.01", "108"], "108.0", id="long-10-percent-under-the-best"),
    pytest.param(SELL, "90", ["80", "87.99", "88"], "88.0", id="short-10-percent-over-the-best"),
])
def test_trailing_percent_fires_a_percentage_behind_the_best_price(
        side: Side, activation: str, prices: list[str], trigger: str) -> None:
    p = plan(side, trail_percent="10", activation=activation, mirror=False)
    rows, state = feed(p, prices, mirror=False)
    assert rows == expect((TS, "10", trigger, None))
    assert state.closed


@SIDES
def test_a_gap_through_several_targets_fires_each_in_one_call(side: Side) -> None:
    p = plan(side, targets=(("110", "0.25"), ("120", "0.25"), ("130", "0.5")))
    actions, state = on_price(p, arm(p, D(8), ENTRY), flip(D(125), side))
    assert [(a.kind, a.qty, a.index) for a in actions] == [(TP, D(2), 0), (TP, D(2), 1)]
    assert (state.targets_hit, state.open_qty, state.closed) == (2, D(4), False)


@SIDES
def test_a_stop_tightened_past_a_pending_target_wins_when_one_price_touches_both(side: Side) -> None:
    p = plan(side, targets=(("110", "1"),), stop="90")
    tightened = replace(arm(p, D(10), ENTRY), stop=flip(D(112), side))
    rows, state = feed(p, ["111"], state=tightened)
    assert rows == expect((SL, "10", "112", None))
    assert state.closed and state.targets_hit == 0


@SIDES
def test_a_trailing_stop_past_a_target_added_later_wins_when_one_price_touches_both(side: Side) -> None:
    p = plan(side, targets=(("110", "1"),), trail_amount="2")
    anchored = replace(arm(p, D(10), ENTRY), trail_anchor=flip(D(115), side))
    rows, _ = feed(p, ["111"], state=anchored)
    assert rows == expect((TS, "10", "113", None))


@SIDES
def test_break_even_never_loosens_a_tighter_stop(side: Side) -> None:
    p = plan(side, targets=LADDER, stop="90", break_even=True)
    tighter = replace(arm(p, D(10), ENTRY), stop=flip(D(105), side))
    _, state = feed(p, ["110"], state=tighter)
    assert state.stop == flip(D(105), side)


@SIDES
def test_break_even_applies_only_after_the_first_target(side: Side) -> None:
    p = plan(side, targets=LADDER, stop="90", break_even=True)
    _, state = feed(p, ["110"])
    moved = replace(state, stop=flip(D(95), side))  # say the caller loosened it by hand
    _, after = feed(p, ["120"], state=moved)
    assert after.stop == flip(D(95), side)


def test_target_quantities_round_down_to_the_quantity_step() -> None:
    p = plan(targets=(("110", "0.3333333"),))
    rows, state = feed(p, ["110"], qty="1")
    assert rows == expect((TP, "0.333333", "110", 0))
    assert state.open_qty == D("0.666667")


def test_a_ladder_rounds_its_cumulative_share_and_leaves_no_dust() -> None:
    # Half of 0.000003 is 0.0000015: the cumulative share rounds to the nearest step.
    rows, state = feed(plan(targets=LADDER), ["110", "120"], qty="0.000003")
    assert rows == expect((TP, "0.000002", "110", 0), (TP, "0.000001", "120", 1))
    assert state.closed and state.open_qty == 0


def test_thirds_of_three_close_one_each() -> None:
    thirds = (("110", "0.333333333"), ("120", "0.333333333"), ("130", "0.333333334"))
    rows, state = feed(plan(targets=thirds), ["110", "120", "130"], qty="3")
    assert [r[1] for r in rows] == [D(1), D(1), D(1)]
    assert state.closed


def test_a_target_share_too_small_for_the_step_counts_as_hit_without_an_order() -> None:
    rows, state = feed(plan(targets=(("110", "0.1"), ("120", "0.5"))), ["110"], qty="0.000001")
    assert rows == []
    assert state.targets_hit == 1 and state.open_qty == D("0.000001")


@SIDES
def test_arm_starts_from_the_fill(side: Side) -> None:
    p = plan(side, stop="90", trail_amount="5")
    assert arm(p, D(10), ENTRY) == PlanState(entry_qty=D(10), open_qty=D(10), avg_entry_price=ENTRY,
                                             trail_anchor=ENTRY, stop=flip(D(90), side))


def test_a_trailing_stop_with_an_activation_price_starts_unanchored() -> None:
    assert arm(plan(trail_amount="5", activation="110"), D(10), ENTRY).trail_anchor is None


def test_arming_nothing_filled_gives_a_closed_plan() -> None:
    assert arm(plan(stop="90"), D(0), ENTRY).closed


def test_an_add_changes_quantities_only_when_its_fill_is_reported() -> None:
    p = plan(targets=(("110", "0.5"),), adds=(("90", "10"),))
    rows, state = feed(p, ["90"])
    assert rows == expect((ADD, "10", "90", 0))
    assert (state.entry_qty, state.open_qty, state.avg_entry_price) == (D(10), D(10), ENTRY)
    state = on_fill_of_add(state, D(10), D(89))
    assert (state.entry_qty, state.open_qty, state.avg_entry_price) == (D(20), D(20), D("94.5"))
    rows, _ = feed(p, ["110"], state=state)
    assert rows == expect((TP, "10", "110", 0))  # half of the grown entry


def test_an_add_fill_blends_with_what_is_still_held_not_the_original_entry() -> None:
    state = PlanState(entry_qty=D(10), open_qty=D(5), avg_entry_price=D(100))
    state = on_fill_of_add(state, D(5), D(80))
    assert (state.entry_qty, state.open_qty, state.avg_entry_price) == (D(15), D(10), D(90))


def test_a_closed_state_is_returned_unchanged() -> None:
    p = plan(stop="90", targets=LADDER)
    closed = replace(arm(p, D(10), ENTRY), closed=True)
    assert on_price(p, closed, D(50)) == ([], closed)
    assert on_price(p, closed, D(500)) == ([], closed)


def test_a_plan_keeps_its_targets_nearest_first_for_its_side() -> None:
    targets = (Target(D(120), D("0.5")), Target(D(110), D("0.5")))
    assert [t.price for t in ExitPlan(BUY, targets).targets] == [D(110), D(120)]
    assert [t.price for t in ExitPlan(SELL, (Target(D(80), D(1)), Target(D(90), D(0)))).targets] == [
        D(90), D(80)]


# ---- levels: what the trigger book waits on ---------------------------------------------------


@SIDES
@pytest.mark.parametrize(("kwargs", "prices", "below", "above"), [
    pytest.param({"stop": "90", "targets": LADDER}, [], "90", "110", id="fresh-stop-and-first-target"),
    pytest.param({"stop": "90", "targets": LADDER}, ["110"], "90", "120", id="after-the-first-target"),
    pytest.param({"stop": "90", "targets": LADDER, "break_even": True}, ["110"], "100", "120",
                 id="after-the-first-target-with-break-even"),
    pytest.param({"stop": "90", "targets": (("110", "0.5"),)}, ["110"], "90", None,
                 id="all-targets-hit-only-the-stop-waits"),
    pytest.param({"stop": "90", "adds": (("95", "5"),)}, [], "95", None,
                 id="a-pending-add-nearer-than-the-stop"),
    pytest.param({"stop": "90", "adds": (("95", "5"),)}, ["95"], "90", None,
                 id="a-done-add-no-longer-waits"),
    pytest.param({"stop": "90", "trail_amount": "5", "activation": "110", "targets": LADDER}, [],
                 "90", "110", id="trailing-waiting-for-activation"),
    pytest.param({"stop": "90", "trail_amount": "5", "activation": "105", "targets": LADDER},
                 ["107"], "102", "107", id="active-trailing-waits-on-its-stop-and-its-best-price"),
    pytest.param({"trail_amount": "5"}, [], "95", "100", id="trailing-from-the-entry"),
    pytest.param({}, [], None, None, id="nothing-waits"),
    pytest.param({"stop": "90", "targets": LADDER}, ["90"], None, None, id="closed"),
])
def test_levels(side: Side, kwargs: dict[str, Any], prices: list[str], below: str | None,
                above: str | None) -> None:
    p = plan(side, **kwargs)
    _, state = feed(p, prices)
    long_below, long_above = (D(below) if below else None), (D(above) if above else None)
    if side is BUY:
        assert levels(p, state) == (long_below, long_above)
    else:  # mirrored: what waits below a long waits above the short
        assert levels(p, state) == (long_above and flip(long_above, SELL),
                                    long_below and flip(long_below, SELL))


def test_levels_of_a_short_trailing_percent() -> None:
    p = plan(SELL, trail_percent="10", mirror=False)
    # `above` is the stop; the anchor waits below: a lower price moves it
    assert levels(p, arm(p, D(1), D(100))) == (D(100), D("110.0"))
    p = plan(SELL, trail_percent="10", activation="90", mirror=False)
    _, state = on_price(p, arm(p, D(1), D(100)), D(80))
    assert levels(p, state) == (D(80), D("88.0"))


@SIDES
def test_prices_strictly_between_the_levels_change_nothing(side: Side) -> None:
    p = plan(side, stop="90", targets=LADDER, trail_amount="5", activation="105",
             adds=(("95", "1"),))
    _, state = feed(p, ["106"])
    below, above = levels(p, state)
    assert below is not None and above is not None
    for price in (below + D("0.01"), (below + above) / 2, above - D("0.01")):
        assert on_price(p, state, price) == ([], state)


def test_on_price_never_acts_strictly_between_the_levels_of_random_plans() -> None:
    """What lets the trigger book skip a plan: between its levels, on_price is a no-op."""
    rng = random.Random(20260207)
    for _ in range(300):
        side = rng.choice([BUY, SELL])
        p = plan(side, stop=rng.choice([None, "90", "85"]), targets=rng.choice([(), LADDER]),
                 trail_amount=rng.choice([None, "3"]), activation=rng.choice([None, "104"]),
                 adds=rng.choice([(), (("95", "2"), ("92", "2"))]), break_even=rng.random() < 0.5)
        state, price = arm(p, D(10), ENTRY), ENTRY
        for _ in range(40):
            price += D(rng.randint(-40, 40)) / 10
            below, above = levels(p, state)
            between = (below is None or price > below) and (above is None or price < above)
            actions, after = on_price(p, state, price)
            if between:
                assert (actions, after) == ([], state)
            state = after


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "problems"), [
    pytest.param(ExitPlan(BUY, (Target(D(110), D("0.5")), Target(D(120), D("0.5"))), D(90),
                          Trailing(amount=D(5), activation_price=D(105)), (AddLevel(D(95), D(1)),)),
                 [], id="a-sound-long"),
    pytest.param(ExitPlan(SELL, (Target(D(90), D(1)),), D(110), Trailing(percent=D(2)),
                          (AddLevel(D(105), D(1)),)), [], id="a-sound-short"),
    pytest.param(ExitPlan(BUY, (Target(D(95), D(1)),)),
                 ["target 0 at 95 is not above the entry price 100"], id="long-target-below-entry"),
    pytest.param(ExitPlan(SELL, (Target(D(100), D(1)),)),
                 ["target 0 at 100 is not below the entry price 100"], id="short-target-at-entry"),
    pytest.param(ExitPlan(BUY, (Target(D(110), D("0.6")), Target(D(120), D("0.6")))),
                 ["target shares sum to 1.2, over 1"], id="shares-over-one"),
    pytest.param(ExitPlan(BUY, (Target(D(110), D(0)),)), ["target 0 share 0 is not in (0, 1]"],
                 id="zero-share"),
    pytest.param(ExitPlan(BUY, stop_loss=D(101)), ["stop_loss 101 is not below the entry price 100"],
                 id="long-stop-above-entry"),
    pytest.param(ExitPlan(SELL, stop_loss=D(99)), ["stop_loss 99 is not above the entry price 100"],
                 id="short-stop-below-entry"),
    pytest.param(ExitPlan(BUY, stop_loss=D(0)), ["stop_loss 0 is not above 0"], id="stop-at-zero"),
    pytest.param(ExitPlan(BUY, trailing=Trailing(percent=D(1), amount=D(1))),
                 ["trailing needs exactly one of percent and amount"], id="trailing-with-both"),
    pytest.param(ExitPlan(BUY, trailing=Trailing()),
                 ["trailing needs exactly one of percent and amount"], id="trailing-with-neither"),
    pytest.param(ExitPlan(BUY, trailing=Trailing(percent=D(100))),
                 ["trailing percent 100 is not in (0, 100)"], id="trailing-percent-100"),
    pytest.param(ExitPlan(BUY, trailing=Trailing(amount=D(-1))),
                 ["trailing amount -1 is not above 0"], id="negative-trailing-amount"),
    pytest.param(ExitPlan(SELL, trailing=Trailing(amount=D(1), activation_price=D(105))),
                 ["trailing activation_price 105 is not below the entry price 100"],
                 id="short-activation-on-the-losing-side"),
    pytest.param(ExitPlan(BUY, adds=(AddLevel(D(105), D(1)),)),
                 ["add level 0 at 105 is not below the entry price 100"], id="long-add-above-entry"),
    pytest.param(ExitPlan(BUY, adds=(AddLevel(D(95), D(0)),)), ["add level 0 qty 0 is not above 0"],
                 id="add-of-nothing"),
    pytest.param(ExitPlan(BUY, stop_loss=D(90), adds=(AddLevel(D(85), D(1)),)),
                 ["add level 0 at 85 is at or past the stop_loss 90: it would never fire"],
                 id="add-beyond-the-stop"),
])
def test_validate(p: ExitPlan, problems: list[str]) -> None:
    assert validate(p, ENTRY) == problems
