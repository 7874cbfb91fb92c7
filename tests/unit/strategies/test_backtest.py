"""Backtests on tiny hand-built series where every trade is known.

Entries come from "close above SMA(2)" beginning (a rise after flat bars); stops are 2% under
the fill and targets 2 x 2% over it, risking 1% of the cash: 100 / (0.02 x 101) = 49.50 units
for a fill at 101, which wins 200 at its target and loses 100 at its stop.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from tests.unit.strategies import bars_of
from tradewire.strategies.backtest import backtest
from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import Strategy
from tradewire.strategies.execution import ExecutionConfig, ExecutionState, ExitReason, decide
from tradewire.strategies.rules import Rule, StrategyError

RISES = Rule("price_above_sma", "TRIGGER", "1h", {"window": 2})
FALLS = Rule("price_below_sma", "TRIGGER", "1h", {"window": 2})
Bar = tuple[float, float, float, float]
FLAT: Bar = (100, 100, 100, 100)
SIGNAL: Bar = (100, 101, 100, 101)  # closes over its SMA(2) of 100.5: an entry at the next open
QUIET: Bar = (101, 101.5, 100.5, 101)  # the fill bar: no stop (98.98) or target (105.04) reached
TARGET: Bar = (101, 106, 101, 100.5)


def series(*bars: Bar) -> Bars:
    o, h, low, c = (list(x) for x in zip(*bars, strict=True))
    return bars_of(c, opens=o, highs=h, lows=low)


def strategy(exit_: Rule | None = None, *, entry: tuple[Rule, ...] = (RISES,), **config: Any) -> Strategy:
    config = {"stop_loss_calculation": "fixed_percent", "stop_loss_percent": 0.02, **config}
    return Strategy("s", "BTC/USDT", entry, (exit_,) if exit_ else (), ExecutionConfig(**config))


TWO_TRADES = series(FLAT, FLAT, FLAT, FLAT, FLAT, SIGNAL, QUIET, TARGET,
                    (100.5, 100.5, 100.5, 100.5), (100.5, 101, 100.5, 101),  # a second signal
                    (101, 101, 98, 99),  # filled at 101 and stopped at 98.98 in the same bar
                    (99, 99, 99, 99), (99, 99, 99, 99))


def test_a_winner_and_a_loser_by_hand() -> None:
    result = backtest(strategy(), TWO_TRADES)
    t1, t2 = result.trades
    assert (t1.entry_index, t1.exit_index, t1.reason) == (6, 7, ExitReason.TAKE_PROFIT)
    assert (t1.entry_price, t1.stop, t1.target, t1.exit_price) == pytest.approx((101, 98.98, 105.04, 105.04))
    assert t1.size == pytest.approx(100 / 2.02)
    assert t1.pnl == pytest.approx(200)
    assert (t2.entry_index, t2.exit_index, t2.reason) == (10, 10, ExitReason.STOP_LOSS)
    assert t2.size == pytest.approx(102 / 2.02)  # 1% of 10,200
    assert (t2.exit_price, t2.pnl) == pytest.approx((98.98, -102))
    assert t1.entry_ts == TWO_TRADES.ts[6]


def test_the_equity_curve_marks_each_close() -> None:
    equity = backtest(strategy(), TWO_TRADES).equity_curve
    np.testing.assert_allclose(equity, [10_000] * 7 + [10_200] * 3 + [10_098] * 3)


def test_stats_by_hand() -> None:
    stats = backtest(strategy(), TWO_TRADES).stats
    assert stats.trades == 2
    assert stats.total_return == pytest.approx(0.0098)
    assert stats.final_equity == pytest.approx(10_098)
    assert stats.max_drawdown == pytest.approx(1 - 10_098 / 10_200)
    assert stats.win_rate == 0.5
    assert stats.exposure == pytest.approx(1 / 13)  # only bar 6 closed with a position open
    returns = np.array([0] * 6 + [0.02, 0, 0, -0.01, 0, 0])
    assert stats.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365 * 24))


def test_a_bar_that_reaches_both_the_stop_and_the_target_is_a_stop() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, QUIET, (101, 106, 98, 100), FLAT)
    (trade,) = backtest(strategy(), bars).trades
    assert (trade.reason, trade.exit_price, trade.pnl) == (ExitReason.STOP_LOSS, pytest.approx(98.98),
                                                           pytest.approx(-100))


def test_a_signal_fills_at_the_next_open_and_sets_its_levels_from_there() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, (102, 102, 101, 101), (101, 108, 101, 101), FLAT)
    (trade,) = backtest(strategy(), bars).trades
    assert (trade.entry_index, trade.entry_price) == (4, 102)
    assert (trade.stop, trade.target) == pytest.approx((99.96, 106.08))
    assert trade.exit_price == pytest.approx(106.08)


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, QUIET, (95, 96, 94, 95), FLAT)
    (trade,) = backtest(strategy(), bars).trades
    assert (trade.reason, trade.exit_price) == (ExitReason.STOP_LOSS, 95)


def test_an_exit_signal_fills_at_the_next_open() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, QUIET, (101, 101.5, 100.5, 100.5), (100.6, 101, 100, 100.5),
                  FLAT)
    (trade,) = backtest(strategy(FALLS), bars).trades
    assert (trade.reason, trade.exit_index, trade.exit_price) == (ExitReason.EXIT_SIGNAL, 6, 100.6)


def test_max_hold_bars_exits_at_the_open_after_the_limit() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, QUIET, QUIET, (100.9, 101, 100, 100), QUIET)
    (trade,) = backtest(strategy(max_hold_bars=2), bars).trades
    # Signal at bar 3; two bars later (bar 5) the position has been held long enough.
    assert (trade.reason, trade.exit_index, trade.exit_price) == (ExitReason.MAX_HOLD_BARS, 6, 100.9)


def test_a_position_still_open_at_the_end_closes_at_the_last_close() -> None:
    bars = series(FLAT, FLAT, FLAT, SIGNAL, QUIET, (101, 101.5, 100.5, 101.2))
    (trade,) = backtest(strategy(), bars).trades
    assert (trade.reason, trade.exit_index, trade.exit_price) == (ExitReason.END_OF_DATA, 5, 101.2)
    assert backtest(strategy(), bars).stats.exposure == pytest.approx(1 / 6)


def test_a_signal_on_the_last_bar_makes_no_trade() -> None:
    assert backtest(strategy(), series(FLAT, FLAT, FLAT, SIGNAL)).trades == []


def test_fees_and_slippage_by_hand() -> None:
    (trade, _) = backtest(strategy(), TWO_TRADES, fee_bps=10, slippage_bps=10).trades
    fill = 101 * 1.001  # slippage against the buyer
    size = 100 / (0.02 * fill)
    assert trade.entry_price == pytest.approx(fill)
    assert trade.size == pytest.approx(size)
    assert trade.exit_price == pytest.approx(fill * 1.04)  # the target is a limit: no slippage
    assert trade.pnl == pytest.approx(size * fill * 1.04 * 0.999 - size * fill * 1.001)


def test_max_trades_per_day_skips_signals_until_the_next_utc_day() -> None:
    assert len(backtest(strategy(max_trades_per_day=1), TWO_TRADES).trades) == 1


def test_refused_entries_make_no_trades() -> None:
    assert backtest(strategy(min_trade_amount=20_000), TWO_TRADES).trades == []


def test_a_higher_timeframe_filter_gates_the_entries() -> None:
    never = Rule("price_above_sma", "FILTER", "4h", {"window": 500})
    assert backtest(strategy(entry=(RISES, never)), TWO_TRADES).trades == []


def test_the_backtest_sizes_as_live_execution_does() -> None:
    # Live, the signal bar's close (101) is the fill; here the next open is 101 too.
    s = strategy()
    live = decide(s, ExecutionState.starting(Decimal(10_000)), {"1h": TWO_TRADES.head(6)})
    p = live.state.open_positions[0]
    trade = backtest(s, TWO_TRADES).trades[0]
    assert (float(p.stop_loss), float(p.take_profit)) == pytest.approx((trade.stop, trade.target))
    assert float(p.position_size) == pytest.approx(trade.size, abs=1e-6)


@pytest.mark.parametrize("kwargs", [{"cash": 0}, {"fee_bps": -1}, {"slippage_bps": 10_000}])
def test_bad_backtest_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(StrategyError, match="a backtest needs"):
        backtest(strategy(), TWO_TRADES, **kwargs)


def test_no_trades_leave_the_cash_flat() -> None:
    result = backtest(strategy(), series(FLAT, FLAT, FLAT))
    assert result.trades == []
    assert result.equity_curve.tolist() == [10_000] * 3
    assert result.stats.to_dict() == {"total_return": 0.0, "max_drawdown": 0.0, "sharpe": 0.0,
                                      "win_rate": 0.0, "exposure": 0.0, "trades": 0,
                                      "final_equity": 10_000.0}
