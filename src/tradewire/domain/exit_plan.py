"""A position's exit plan (targets, stop, trailing stop, add levels) and its pure price rules.

The rules read for a long; a short is the mirror. "Favourable" is the way the position gains
(up for a long), "adverse" the way it loses. The state records decided exits at once but adds
only when they fill (`on_fill_of_add`): either way the plan never trades more than is held.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from tradewire.domain.values import QTY_STEP, ZERO, Side

ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Target:
    """Close `share` of the filled entry quantity once the price reaches `price`."""

    price: Decimal
    share: Decimal  # of entry_qty, 0 < share <= 1; a plan's shares sum to at most 1


@dataclass(frozen=True, slots=True)
class Trailing:
    """A stop that follows the best price by `percent` or by `amount` (exactly one).

    It starts once the price reaches `activation_price`, or at the entry when there is none.
    """

    percent: Decimal | None = None
    amount: Decimal | None = None
    activation_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AddLevel:
    """A rebuy zone or DCA level: add `qty` once the price comes back to `price`."""

    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """What to do with an open position as the price moves. Targets are kept nearest first."""

    side: Side  # the position's direction: BUY is long, SELL is short
    targets: tuple[Target, ...] = ()
    stop_loss: Decimal | None = None
    trailing: Trailing | None = None
    adds: tuple[AddLevel, ...] = ()  # kept in the given order: adds_done holds their indexes
    break_even_after_first: bool = False

    def __post_init__(self) -> None:
        # targets_hit counts targets in this order, so the order is fixed here, whatever was given.
        nearest_first = tuple(sorted(self.targets, key=lambda t: t.price * self.side.sign))
        object.__setattr__(self, "targets", nearest_first)


@dataclass(frozen=True, slots=True)
class PlanState:
    """What has happened to a plan so far; the caller persists it between prices."""

    entry_qty: Decimal  # filled entry quantity, the base of target shares; grows with add fills
    open_qty: Decimal  # still held
    avg_entry_price: Decimal
    targets_hit: int = 0  # how many of plan.targets (nearest first) have fired
    adds_done: frozenset[int] = frozenset()  # indexes into plan.adds that have fired
    trail_anchor: Decimal | None = None  # best price since the trailing stop started
    stop: Decimal | None = None  # the stop in force
    closed: bool = False


class ExitLeg(StrEnum):
    """An exit that can rest at the broker instead of being watched here (domain/native_exits)."""

    STOP = "stop"  # the stop-loss, or the trailing stop where it is tighter
    TAKE_PROFIT = "take_profit"  # the next target of the ladder


NO_NATIVE: frozenset[ExitLeg] = frozenset()


class ExitKind(StrEnum):
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    TRAILING_STOP = "trailing_stop"
    ADD = "add"


@dataclass(frozen=True, slots=True)
class ExitAction:
    """An order for the caller to place. `reference_price` is the level that fired (the
    price may be beyond it); `index` is the target's or add level's index in the plan."""

    kind: ExitKind
    qty: Decimal
    reference_price: Decimal
    index: int | None = None


def arm(plan: ExitPlan, filled_qty: Decimal, avg_entry_price: Decimal) -> PlanState:
    """The state of a plan whose entry has just filled."""
    state = PlanState(entry_qty=filled_qty, open_qty=filled_qty, avg_entry_price=avg_entry_price,
                      stop=plan.stop_loss, closed=filled_qty <= 0)
    return replace(state, trail_anchor=_anchor(plan, state))


def on_price(plan: ExitPlan, state: PlanState, price: Decimal,
             native: frozenset[ExitLeg] = NO_NATIVE) -> tuple[list[ExitAction], PlanState]:
    """The orders one price calls for, and the state after them. A closed plan does nothing.
    Legs in `native` rest at the broker: their fills move the state (`on_native_fill`), so
    they never fire here (one exit, not two)."""
    if state.closed:
        return [], state
    state = _follow(plan, state, price)
    # A stop and a target touched by one price: the stop wins. One price cannot tell which
    # came first, so assume the worst. A stop also wins over an add: no buying into a close.
    stop = None if ExitLeg.STOP in native else _stop_action(plan, state, price)
    if stop is not None:
        return [stop], replace(state, open_qty=ZERO, closed=True)
    profits: list[ExitAction] = []
    if ExitLeg.TAKE_PROFIT not in native:
        profits, state = _take_profits(plan, state, price)
    if state.closed:
        return profits, state
    adds, state = _adds(plan, state, price)
    return profits + adds, state


def on_fill_of_add(state: PlanState, qty: Decimal, price: Decimal) -> PlanState:
    """The state after an add order filled `qty` at `price`: more held, at a blended price."""
    open_qty = state.open_qty + qty
    avg = (state.avg_entry_price * state.open_qty + price * qty) / open_qty
    return replace(state, entry_qty=state.entry_qty + qty, open_qty=open_qty, avg_entry_price=avg)


def on_native_fill(plan: ExitPlan, state: PlanState, leg: ExitLeg, index: int | None,
                   qty: Decimal) -> PlanState:
    """The state after `qty` of a leg resting at the broker filled: what `on_price` would have
    recorded had the level been watched here (a target counts as hit, break-even applies)."""
    open_qty = max(state.open_qty - qty, ZERO)
    moved = replace(state, open_qty=open_qty, closed=open_qty <= 0)
    if leg is ExitLeg.TAKE_PROFIT and index is not None and index >= state.targets_hit:
        stop = _break_even(plan, state) if state.targets_hit == 0 else state.stop
        moved = replace(moved, targets_hit=index + 1, stop=stop)
    return moved


def stop_in_force(plan: ExitPlan, state: PlanState) -> Decimal | None:
    """Where the position is stopped out now: the fixed stop or the trailing stop, whichever
    is nearer the price (the one that would fire first)."""
    levels_ = [state.stop] if state.stop is not None else []
    anchor = _anchor(plan, state)
    if plan.trailing is not None and anchor is not None:
        trigger = _trigger(plan.side, plan.trailing, anchor)
        levels_ += [trigger] if trigger is not None else []
    if not levels_:
        return None
    return max(levels_) if plan.side is Side.BUY else min(levels_)


def levels(plan: ExitPlan, state: PlanState,
           native: frozenset[ExitLeg] = NO_NATIVE) -> tuple[Decimal | None, Decimal | None]:
    """(below, above): `on_price` can act only when price <= below or price >= above.

    None where nothing waits on that side. An active trailing stop waits on its anchor too:
    a new best price moves the stop, so it must reach `on_price` (also when the stop rests at
    the broker: that order is then replaced). Levels of `native` legs are not watched here.
    """
    if state.closed:
        return None, None
    side = plan.side
    favourable: list[Decimal] = []
    adverse: list[Decimal] = []
    watch_stop = ExitLeg.STOP not in native
    if state.targets_hit < len(plan.targets) and ExitLeg.TAKE_PROFIT not in native:
        favourable.append(plan.targets[state.targets_hit].price)
    if state.stop is not None and watch_stop:
        adverse.append(state.stop)
    anchor = _anchor(plan, state)
    if plan.trailing is not None and anchor is None and plan.trailing.activation_price is not None:
        favourable.append(plan.trailing.activation_price)
    if plan.trailing is not None and anchor is not None:
        favourable.append(anchor)
        trigger = _trigger(side, plan.trailing, anchor)
        adverse += [trigger] if trigger is not None and watch_stop else []
    adverse += [a.price for i, a in enumerate(plan.adds) if i not in state.adds_done]
    if side is Side.BUY:
        return max(adverse, default=None), min(favourable, default=None)
    return max(favourable, default=None), min(adverse, default=None)


def validate(plan: ExitPlan, entry_price: Decimal) -> list[str]:
    """Every problem with the plan for a position entered at `entry_price`; empty when sound."""
    return [*_target_problems(plan, entry_price), *_stop_problems(plan, entry_price),
            *_trailing_problems(plan, entry_price), *_add_problems(plan, entry_price)]


# ---- the rules ---------------------------------------------------------------------------------


def _favourable(side: Side, price: Decimal, level: Decimal) -> bool:
    """The price is at `level` or past it in the position's favour."""
    return price >= level if side is Side.BUY else price <= level


def _adverse(side: Side, price: Decimal, level: Decimal) -> bool:
    return price <= level if side is Side.BUY else price >= level


def _anchor(plan: ExitPlan, state: PlanState) -> Decimal | None:
    """The trailing stop's best price so far; None while it waits for its activation price."""
    if plan.trailing is None:
        return None
    if state.trail_anchor is None and plan.trailing.activation_price is None:
        return state.avg_entry_price  # no activation price: it trails from the entry
    return state.trail_anchor


def _trigger(side: Side, trailing: Trailing, anchor: Decimal) -> Decimal | None:
    """Where the trailing stop stands; None for a trailing with neither percent nor amount."""
    if trailing.percent is not None:
        return anchor * (ONE - side.sign * trailing.percent / HUNDRED)
    if trailing.amount is not None:
        return anchor - side.sign * trailing.amount
    return None


def _follow(plan: ExitPlan, state: PlanState, price: Decimal) -> PlanState:
    """Start the trailing stop at its activation price, then move its anchor with the price."""
    trailing = plan.trailing
    if trailing is None:
        return state
    anchor = _anchor(plan, state)
    if anchor is None:
        assert trailing.activation_price is not None
        if not _favourable(plan.side, price, trailing.activation_price):
            return state
        anchor = price
    best = max(anchor, price) if plan.side is Side.BUY else min(anchor, price)
    return state if best == state.trail_anchor else replace(state, trail_anchor=best)


def _stop_action(plan: ExitPlan, state: PlanState, price: Decimal) -> ExitAction | None:
    # The fixed stop is looked at first; both close everything, only the reported kind differs.
    if state.stop is not None and _adverse(plan.side, price, state.stop):
        return ExitAction(ExitKind.STOP_LOSS, state.open_qty, state.stop)
    if plan.trailing is None or state.trail_anchor is None:
        return None
    trigger = _trigger(plan.side, plan.trailing, state.trail_anchor)
    if trigger is not None and _adverse(plan.side, price, trigger):
        return ExitAction(ExitKind.TRAILING_STOP, state.open_qty, trigger)
    return None


def _take_profits(plan: ExitPlan, state: PlanState, price: Decimal) -> tuple[list[ExitAction], PlanState]:
    """Every target the price has reached, in order: a gap through several fires each."""
    targets, hit, open_qty = plan.targets, state.targets_hit, state.open_qty
    actions = []
    while hit < len(targets) and open_qty > 0 and _favourable(plan.side, price, targets[hit].price):
        qty = target_qty(plan, state.entry_qty, hit, open_qty)
        if qty > 0:
            actions.append(ExitAction(ExitKind.TAKE_PROFIT, qty, targets[hit].price, hit))
        open_qty -= qty
        hit += 1
    if hit == state.targets_hit:
        return [], state
    stop = _break_even(plan, state) if state.targets_hit == 0 else state.stop
    return actions, replace(state, targets_hit=hit, open_qty=open_qty, stop=stop, closed=open_qty <= 0)


def target_qty(plan: ExitPlan, entry_qty: Decimal, index: int, open_qty: Decimal) -> Decimal:
    """What target `index` closes, never more than is open."""
    targets = plan.targets
    # Round the cumulative share, not each share: thirds of 3 close 1, 1, 1 (not 0.999999).
    done = sum((t.share for t in targets[:index]), ZERO)
    qty = _nearest((done + targets[index].share) * entry_qty) - _nearest(done * entry_qty)
    # Rounding each share down would leave dust behind the last target of a full ladder.
    if index == len(targets) - 1 and sum((t.share for t in targets), ZERO) == ONE:
        return open_qty
    return min(qty, open_qty)


def _nearest(qty: Decimal) -> Decimal:
    return qty.quantize(QTY_STEP, rounding=ROUND_HALF_EVEN)


def _break_even(plan: ExitPlan, state: PlanState) -> Decimal | None:
    """The stop after the first target: moved to the entry when asked, never loosened."""
    if not plan.break_even_after_first:
        return state.stop
    entry = state.avg_entry_price
    if state.stop is None:
        return entry
    return max(state.stop, entry) if plan.side is Side.BUY else min(state.stop, entry)


def _adds(plan: ExitPlan, state: PlanState, price: Decimal) -> tuple[list[ExitAction], PlanState]:
    """Each add level the price has come back to, once, nearest first."""
    fired = [i for i, level in enumerate(plan.adds)
             if i not in state.adds_done and _adverse(plan.side, price, level.price)]
    if not fired:
        return [], state
    fired.sort(key=lambda i: -plan.side.sign * plan.adds[i].price)
    actions = [ExitAction(ExitKind.ADD, plan.adds[i].qty, plan.adds[i].price, i) for i in fired]
    return actions, replace(state, adds_done=state.adds_done | frozenset(fired))


# ---- validation --------------------------------------------------------------------------------


def _gains(side: Side, price: Decimal, entry: Decimal) -> bool:
    """A price strictly on the position's winning side of the entry."""
    return price > entry if side is Side.BUY else price < entry


def _side_word(side: Side, *, winning: bool) -> str:
    return "above" if (side is Side.BUY) == winning else "below"


def _target_problems(plan: ExitPlan, entry: Decimal) -> list[str]:
    word = _side_word(plan.side, winning=True)
    problems = [f"target {i} at {t.price} is not {word} the entry price {entry}"
                for i, t in enumerate(plan.targets) if not _gains(plan.side, t.price, entry)]
    problems += [f"target {i} share {t.share} is not in (0, 1]"
                 for i, t in enumerate(plan.targets) if not ZERO < t.share <= ONE]
    total = sum((t.share for t in plan.targets), ZERO)
    if total > ONE:
        problems.append(f"target shares sum to {total}, over 1")
    return problems


def _stop_problems(plan: ExitPlan, entry: Decimal) -> list[str]:
    stop = plan.stop_loss
    if stop is None:
        return []
    problems = []
    if stop <= 0:
        problems.append(f"stop_loss {stop} is not above 0")
    if not _gains(plan.side, entry, stop):
        word = _side_word(plan.side, winning=False)
        problems.append(f"stop_loss {stop} is not {word} the entry price {entry}")
    return problems


def _trailing_problems(plan: ExitPlan, entry: Decimal) -> list[str]:
    trailing = plan.trailing
    if trailing is None:
        return []
    problems = []
    if (trailing.percent is None) == (trailing.amount is None):
        problems.append("trailing needs exactly one of percent and amount")
    if trailing.percent is not None and not ZERO < trailing.percent < HUNDRED:
        problems.append(f"trailing percent {trailing.percent} is not in (0, 100)")
    if trailing.amount is not None and trailing.amount <= 0:
        problems.append(f"trailing amount {trailing.amount} is not above 0")
    activation = trailing.activation_price
    # An activation price on the losing side would start the trailing stop at once: say so.
    if activation is not None and not _gains(plan.side, activation, entry):
        word = _side_word(plan.side, winning=True)
        problems.append(f"trailing activation_price {activation} is not {word} the entry price {entry}")
    return problems


def _add_problems(plan: ExitPlan, entry: Decimal) -> list[str]:
    word = _side_word(plan.side, winning=False)
    problems = []
    for i, add in enumerate(plan.adds):
        if not _gains(plan.side, entry, add.price):
            problems.append(f"add level {i} at {add.price} is not {word} the entry price {entry}")
        if add.qty <= 0:
            problems.append(f"add level {i} qty {add.qty} is not above 0")
        if plan.stop_loss is not None and _adverse(plan.side, add.price, plan.stop_loss):
            problems.append(f"add level {i} at {add.price} is at or past the stop_loss "
                            f"{plan.stop_loss}: it would never fire")
    return problems
