"""Execution: the config, the state, the stop/target/size math by hand, and `decide`.

The bars alternate 100, 101 with a range of 2 (high = close + 1, low = close - 1), so every
true range is 2 and ATR(14) is exactly 2, and they end on a rise, where "close above SMA(2)"
begins: an entry at 101 with the default config has its stop at 101 - 2 x 2 = 97, its target
at 101 + 2 x 4 = 109, and risks 1% of 10,000 over 4: 25 units.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from tests.unit.strategies import HOUR, START, bars_of
from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import Strategy
from tradewire.strategies.execution import (
    Decision,
    ExecutionConfig,
    ExecutionState,
    ExitReason,
    OpenPosition,
    StopLossCalculation,
    decide,
    first_touch,
    plan_entry,
)
from tradewire.strategies.rules import Rule, StrategyError

D = Decimal
RISES = Rule("price_above_sma", "TRIGGER", "1h", {"window": 2})
NEVER = Rule("price_above_sma", "FILTER", "1h", {"window": 5000})  # still warming up
CLOSES = [100.0, 101.0] * 15
ENTERED_AT = datetime.fromtimestamp(START + 30 * HOUR, UTC)  # the close of the last bar


def ranged(closes: list[float], *, opens: list[float] | None = None, highs: list[float] | None = None,
           lows: list[float] | None = None) -> Bars:
    return bars_of(closes, opens=opens, highs=highs or [c + 1 for c in closes],
                   lows=lows or [c - 1 for c in closes])


def then(*bars: tuple[float, float, float, float]) -> Bars:
    """The base bars followed by bars given as (open, high, low, close)."""
    o, h, low, c = (list(x) for x in zip(*bars, strict=True)) if bars else ([], [], [], [])
    return ranged(CLOSES + c, opens=CLOSES + o, highs=[x + 1 for x in CLOSES] + h,
                  lows=[x - 1 for x in CLOSES] + low)


def strategy(entry: Rule = RISES, exit_: Rule | None = None, **config: Any) -> Strategy:
    return Strategy("s", "BTC/USDT", (entry,), (exit_,) if exit_ else (), ExecutionConfig(**config))


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


def run(s: Strategy, state: ExecutionState, bars: Bars) -> Decision:
    return decide(s, state, {"1h": bars}, make_id=ids())


def holding(*, cash: str = "7475", size: str = "25", entry: str = "101") -> ExecutionState:
    p = OpenPosition("p1", D(entry), D(size), D("97"), D("109"), ENTERED_AT)
    return ExecutionState(D(cash), D(cash) + D(size) * D(entry), total_trades=1, open_positions=(p,))


def rows(decision: Decision) -> list[tuple[str, str, str, Decimal, Decimal, str]]:
    return [(o.side, o.order_type, o.status, o.price, o.position_size, o.reason) for o in decision.new_orders]


# ---- the math ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "price", "atr", "account", "cash", "fee", "expected"), [
    ({}, 101, 2, 10_000, 10_000, 0, (97, 109, 25)),
    ({"reward_factor": 3}, 101, 2, 10_000, 10_000, 0, (97, 113, 25)),
    ({"atr_volatility_factor": 1}, 101, 2, 10_000, 10_000, 0, (99, 105, 50)),
    ({"max_risk_per_trade": 0.02}, 101, 2, 10_000, 10_000, 0, (97, 109, 50)),
    ({}, 101, 2, 10_000, 1010, 0, (97, 109, 10)),  # capped by the cash
    ({}, 100, 2, 10_000, 1010, 0.01, (96, 108, 10)),  # the cap leaves room for the fee
    ({"stop_loss_calculation": "fixed_percent"}, 200, float("nan"), 10_000, 10_000, 0, (196, 208, 25)),
    ({"stop_loss_calculation": "fixed_percent", "stop_loss_percent": 0.05}, 200, 2, 10_000, 10_000, 0,
     (190, 220, 10)),
])
def test_stop_target_and_size_by_hand(config: dict[str, Any], price: float, atr: float, account: float,
                                      cash: float, fee: float, expected: tuple[float, float, float]) -> None:
    plan = plan_entry(ExecutionConfig(**config), price, atr, account_value=account, cash=cash, fee_rate=fee)
    assert plan.refused is None
    assert (plan.stop, plan.target, plan.size) == pytest.approx(expected)


@pytest.mark.parametrize(("config", "price", "atr", "cash", "refusal"), [
    ({}, 101, float("nan"), 10_000, "no ATR yet"),
    ({}, 101, 0.0, 10_000, "no ATR yet"),
    ({}, 3, 2, 10_000, "the stop -1 would be at or below zero"),
    ({}, 101, 2, 90, "the position (22.73) is under min_trade_amount (25)"),
    ({"min_trade_amount": 3000}, 101, 2, 10_000, "the position (2525.00) is under min_trade_amount (3000)"),
    ({}, 101, 2, 0, "under min_trade_amount"),
])
def test_entries_that_would_break_a_rule_are_refused(config: dict[str, Any], price: float, atr: float,
                                                     cash: float, refusal: str) -> None:
    plan = plan_entry(ExecutionConfig(**config), price, atr, account_value=cash, cash=cash)
    assert plan.refused is not None
    assert refusal in plan.refused
    assert plan.size == 0


# One bar after an entry with its stop at 97 and its target at 109: (open, high, low, close).
TOUCHES = [
    ((101, 102, 100, 101), None),
    ((101, 102, 96, 98), (ExitReason.STOP_LOSS, 97)),
    ((101, 110, 100, 108), (ExitReason.TAKE_PROFIT, 109)),
    ((101, 110, 96, 100), (ExitReason.STOP_LOSS, 97)),  # both: the stop, the worst case
    ((95, 96, 94, 95), (ExitReason.STOP_LOSS, 95)),  # gapped through the stop: filled at the open
    ((112, 113, 111, 112), (ExitReason.TAKE_PROFIT, 112)),  # gapped over the target: at the open
    ((97, 98, 96, 97), (ExitReason.STOP_LOSS, 97)),
]


@pytest.mark.parametrize(("bar", "expected"), TOUCHES)
def test_the_first_touch_of_a_stop_or_target(bar: tuple[float, ...],
                                             expected: tuple[ExitReason, float] | None) -> None:
    o, h, low, _ = (np.array([101.0, x]) for x in bar)
    got = first_touch(o, h, low, 97.0, 109.0)
    assert (got[1:] if got else None) == expected
    assert got is None or got[0] == 1


def test_the_earliest_bar_that_touches_wins() -> None:
    low, high = np.array([100.0, 96.0, 90.0]), np.array([110.0, 102.0, 102.0])
    assert first_touch(np.array([101.0] * 3), high, low, 97.0, 109.0) == (0, ExitReason.TAKE_PROFIT, 109.0)
    assert first_touch(np.array([]), np.array([]), np.array([]), 97.0, 109.0) is None


# ---- decide: entries ---------------------------------------------------------------------------


def test_an_entry_signal_makes_a_market_order_with_its_stop_and_target() -> None:
    decision = run(strategy(), ExecutionState.starting(D(10_000)), ranged(CLOSES))
    assert rows(decision) == [
        ("enter_long", "market", "filled", D(101), D(25), "entry_signal"),
        ("exit_long", "stop_loss", "open", D(97), D(25), "stop_loss"),
        ("exit_long", "take_profit", "open", D(109), D(25), "take_profit"),
    ]
    assert {o.position_id for o in decision.new_orders} == {"id1"}
    assert decision.new_orders[0].asset == "BTC/USDT"
    state = decision.state
    assert (state.cash_balance, state.account_value) == (D("7475.00"), D("10000.00"))
    assert (state.total_trades, state.num_open_positions, state.trades_today) == (1, 1, 1)
    assert state.open_positions[0] == OpenPosition("id1", D(101), D(25), D(97), D(109), ENTERED_AT)
    assert (decision.current_price, decision.evaluated_at) == (D(101), ENTERED_AT)
    assert state.trading_day == date(2026, 1, 2)


def test_no_entry_signal_makes_no_order() -> None:
    decision = run(strategy(), ExecutionState.starting(D(10_000)), ranged([*CLOSES, 100.0]))
    assert decision.new_orders == []
    assert decision.state.account_value == D(10_000)


def test_the_fixed_percent_stop_sizes_by_hand() -> None:
    s = strategy(stop_loss_calculation="fixed_percent", stop_loss_percent=0.02)
    decision = run(s, ExecutionState.starting(D(10_000)), ranged(CLOSES))
    p = decision.state.open_positions[0]
    assert (p.stop_loss, p.take_profit) == (D("98.98"), D("105.04"))
    assert p.position_size == D("49.504950")  # 100 / 2.02, rounded down to the quantity step


def test_the_size_is_capped_by_the_cash_left() -> None:
    # Account value 1,000 + 89 x 101 = 9,989: 1% over 4 is 24.97 units, but 1,000 buys 9.90.
    state = holding(cash="1000", size="89", entry="101")
    decision = run(strategy(), state, ranged(CLOSES))
    assert decision.new_orders[0].position_size == D("9.900990")
    assert decision.state.cash_balance == D("0.00")


@pytest.mark.parametrize(("state", "config", "note"), [
    (holding(), {"max_open_positions": 1}, "max_open_positions (1) are open"),
    (ExecutionState(D(10_000), D(10_000), trades_today=2, trading_day=date(2026, 1, 2)),
     {"max_trades_per_day": 2}, "max_trades_per_day (2) is reached"),
    (ExecutionState.starting(D(90)), {}, "under min_trade_amount (25)"),
])
def test_limits_turn_an_entry_signal_into_a_note(state: ExecutionState, config: dict[str, Any],
                                                 note: str) -> None:
    decision = run(strategy(**config), state, ranged(CLOSES))
    assert [o for o in decision.new_orders if o.side == "enter_long"] == []
    assert len(decision.notes) == 1
    assert note in decision.notes[0]


def test_the_daily_count_starts_again_on_a_new_utc_day() -> None:
    state = ExecutionState(D(10_000), D(10_000), total_trades=7, trades_today=2, trading_day=date(2026, 1, 1))
    decision = run(strategy(max_trades_per_day=2), state, ranged(CLOSES))
    assert decision.new_orders[0].side == "enter_long"
    assert (decision.state.trades_today, decision.state.total_trades) == (1, 8)


def test_too_few_bars_for_the_atr_is_a_note() -> None:
    decision = run(strategy(), ExecutionState.starting(D(10_000)), ranged([100.0, 101.0] * 3))
    assert decision.new_orders == []
    assert "no ATR yet" in decision.notes[0]


def test_no_bars_is_an_error() -> None:
    with pytest.raises(StrategyError, match="no 1h bars"):
        run(strategy(), ExecutionState.starting(D(10_000)), ranged([]))


# ---- decide: exits -----------------------------------------------------------------------------


@pytest.mark.parametrize(("bar", "expected"), TOUCHES)
def test_stops_and_targets_close_the_position_on_the_bar_that_reaches_them(
        bar: tuple[float, float, float, float], expected: tuple[ExitReason, float] | None) -> None:
    decision = run(strategy(NEVER), holding(), then(bar))
    if expected is None:
        assert decision.new_orders == []
        assert decision.state.open_positions == holding().open_positions
        return
    reason, price = expected
    other = "take_profit" if reason is ExitReason.STOP_LOSS else "stop_loss"
    other_level = D(109) if reason is ExitReason.STOP_LOSS else D(97)
    assert rows(decision) == [("exit_long", str(reason), "filled", D(price), D(25), str(reason)),
                              ("exit_long", other, "canceled", other_level, D(25), str(reason))]
    assert decision.state.open_positions == ()
    assert decision.state.cash_balance == decision.state.account_value == D(7475) + 25 * D(price)


def test_bars_before_the_entry_do_not_touch_its_stop() -> None:
    lows = [c - 1 for c in CLOSES]
    lows[20] = 90.0
    decision = run(strategy(NEVER), holding(), ranged(CLOSES, lows=lows))
    assert decision.new_orders == []


def test_a_stop_reached_while_no_one_was_looking_still_closes_at_the_stop() -> None:
    bars = then((101, 102, 96, 100), (100, 101, 99, 100), (100, 101, 99, 100))
    decision = run(strategy(NEVER), holding(), bars)
    assert rows(decision)[0] == ("exit_long", "stop_loss", "filled", D(97), D(25), "stop_loss")


def test_an_exit_signal_sells_at_the_latest_close() -> None:
    decision = run(strategy(NEVER, RISES), holding(), then((101, 101, 99, 100), (100, 102, 100, 101)))
    assert rows(decision) == [
        ("exit_long", "market", "filled", D(101), D(25), "exit_signal"),
        ("exit_long", "stop_loss", "canceled", D(97), D(25), "exit_signal"),
        ("exit_long", "take_profit", "canceled", D(109), D(25), "exit_signal"),
    ]
    assert decision.state.cash_balance == D(10_000)


def test_a_stop_wins_over_an_exit_signal_on_the_same_bar() -> None:
    decision = run(strategy(NEVER, RISES), holding(), then((101, 101, 96, 100), (100, 102, 100, 101)))
    assert rows(decision)[0][1:] == ("stop_loss", "filled", D(97), D(25), "stop_loss")


@pytest.mark.parametrize(("bars_after", "closes"), [(1, False), (2, True), (3, True)])
def test_max_hold_bars_closes_at_the_latest_close(bars_after: int, closes: bool) -> None:
    bars = then(*[(101, 102, 100, 101)] * bars_after)
    decision = run(strategy(NEVER, max_hold_bars=2), holding(), bars)
    assert bool(decision.new_orders) is closes
    if closes:
        assert rows(decision)[0] == ("exit_long", "market", "filled", D(101), D(25), "max_hold_bars")


def test_exits_come_first_and_free_room_for_an_entry() -> None:
    bars = then((101, 102, 96, 100), (100, 102, 100, 101))  # the stop, then a new rise
    decision = run(strategy(max_open_positions=1), holding(), bars)
    assert [(o.side, o.order_type, o.status) for o in decision.new_orders] == [
        ("exit_long", "stop_loss", "filled"), ("exit_long", "take_profit", "canceled"),
        ("enter_long", "market", "filled"), ("exit_long", "stop_loss", "open"),
        ("exit_long", "take_profit", "open")]
    assert decision.state.num_open_positions == 1


# ---- config and state on the wire --------------------------------------------------------------


def test_config_defaults_are_the_evaluation_apis() -> None:
    assert ExecutionConfig.from_dict({}).to_dict() == {
        "max_risk_per_trade": 0.01, "reward_factor": 2.0, "stop_loss_calculation": "dynamic_atr",
        "stop_loss_percent": 0.02, "atr_period": 14, "atr_volatility_factor": 2.0,
        "max_open_positions": 10, "max_trades_per_day": 50, "min_trade_amount": 25.0, "max_hold_bars": 50}
    assert ExecutionConfig.from_dict(None) == ExecutionConfig()


def test_config_round_trips_and_max_hold_bars_may_be_off() -> None:
    config = ExecutionConfig.from_dict({"stop_loss_calculation": "fixed_percent", "max_hold_bars": None})
    assert config.stop_loss_calculation is StopLossCalculation.FIXED_PERCENT
    assert config.max_hold_bars is None
    assert ExecutionConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("raw", "message"), [
    ({"max_risk": 0.01}, "unknown execution_config field(s) max_risk"),
    ({"stop_loss_calculation": "trailing"}, "stop_loss_calculation must be dynamic_atr or fixed_percent"),
    ({"max_risk_per_trade": 0}, "max_risk_per_trade must be in (0, 1], not 0.0"),
    ({"max_risk_per_trade": 1.5}, "max_risk_per_trade must be in (0, 1]"),
    ({"reward_factor": "2"}, "reward_factor must be a number, not '2'"),
    ({"atr_period": 0}, "atr_period must be in [1, 1000]"),
    ({"max_open_positions": 2.5}, "max_open_positions must be an integer"),
    ({"max_trades_per_day": True}, "max_trades_per_day must be an integer, not True"),
    ({"min_trade_amount": -1}, "min_trade_amount must be in [0, 1e+12]"),
    ("fast", "execution_config must be an object"),
])
def test_bad_configs_are_refused_with_a_clear_message(raw: Any, message: str) -> None:
    with pytest.raises(StrategyError) as caught:
        ExecutionConfig.from_dict(raw)
    assert message in str(caught.value)


def test_state_round_trips_through_its_wire_form() -> None:
    state = run(strategy(), ExecutionState.starting(D(10_000)), ranged(CLOSES)).state
    wire = state.to_dict()
    assert wire["cash_balance"] == 7475.0
    assert wire["num_open_positions"] == 1
    assert wire["open_positions"][0]["opened_at"] == "2026-01-02T06:00:00+00:00"
    assert ExecutionState.from_dict(wire) == state


def test_the_seed_state_reads_with_its_four_fields() -> None:
    state = ExecutionState.from_dict({"cash_balance": 116338.79, "account_value": 116338.79,
                                      "total_trades": 1, "num_open_positions": 0})
    assert state == ExecutionState(D("116338.79"), D("116338.79"), total_trades=1)


def test_a_time_without_an_offset_is_utc() -> None:
    raw = holding().to_dict()
    raw["open_positions"][0]["opened_at"] = "2026-01-02T06:00:00"
    assert ExecutionState.from_dict(raw).open_positions[0].opened_at == ENTERED_AT


@pytest.mark.parametrize(("change", "message"), [
    ({"num_open_positions": 2}, "num_open_positions is 2 but 0 open_positions are given"),
    ({"cash_balance": "lots"}, "execution_state.cash_balance must be a number, not 'lots'"),
    ({"cash_balance": None}, "execution_state.cash_balance must be a number"),
    ({"cash_balance": "NaN"}, "cash_balance must be finite"),
    ({"total_trades": -1}, "total_trades must be a whole number >= 0"),
    ({"trading_day": "yesterday"}, "trading_day is not a date"),
    ({"open_positions": [{"entry_price": 1}]}, "an open position needs a position_id"),
    ({"open_positions": [{"position_id": "p", "entry_price": 1, "position_size": 1, "stop_loss": 1,
                          "take_profit": 2, "opened_at": "soon"}]}, "opened_at must be an ISO 8601 time"),
])
def test_bad_states_are_refused_with_a_clear_message(change: dict[str, Any], message: str) -> None:
    raw = {"cash_balance": 100, "account_value": 100, "total_trades": 0, "num_open_positions": 0, **change}
    with pytest.raises(StrategyError) as caught:
        ExecutionState.from_dict(raw)
    assert message in str(caught.value)


def test_orders_have_the_evaluation_apis_fields() -> None:
    order = run(strategy(), ExecutionState.starting(D(10_000)), ranged(CLOSES)).new_orders[0]
    assert order.to_dict() == {"id": "id2", "asset": "BTC/USDT", "side": "enter_long", "order_type": "market",
                               "status": "filled", "price": 101.0, "position_size": 25.0,
                               "position_id": "id1", "reason": "entry_signal"}
