"""Backtests: the evaluator's rule series and execution's stop, target and size math, on past bars.

Conventions (each is a choice; live execution makes the same ones where it can):
- A signal on a bar's close fills at the next bar's open: entries, exit rules, max_hold_bars.
  Live, `decide` fills the same decision at that close (the API's current_price) instead. A
  decision on the very last bar fills at its close.
- A position's stop and target are checked against the low and high of every bar from its
  entry bar on (`first_touch`): a bar that opens beyond one fills there at the open; a bar that
  reaches both from inside fills the stop (assume the worst).
- Exits first, then entries, as live: a position closed on a bar frees the entry on that bar.
- One position at a time, long only; max_open_positions is a live limit. max_trades_per_day
  counts entries per UTC day of the signal bar's close, as live.
- Sizing as live (`plan_entry`) on the cash at the entry, the account being flat; units are
  fractional. Stops and targets are set from the fill price and the ATR at the signal bar.
- Costs: `fee_bps` on the notional of every fill; `slippage_bps` against the position on market
  and stop fills. A take-profit is a limit order: it fills at its price, no slippage.
- Stats: returns per bar of the equity curve (marked at each close); Sharpe annualised with
  365 days a year (markets that trade around the clock; overstated for a stock's bars).

Python loops only over trades: the next entry signal and the next exit signal are found by
bisection, and a position's stop and target are searched with numpy in growing windows.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import asdict, dataclass

import numpy as np

from tradewire.strategies.bars import Bars, Floats, timeframe_seconds
from tradewire.strategies.bars import timeframe as canonical_timeframe
from tradewire.strategies.evaluator import Strategy, entry_series, exit_series
from tradewire.strategies.execution import ExitReason, first_touch, plan_entry
from tradewire.strategies.rules import IndicatorCache, Mask, StrategyError, atr

DAY = 86_400
YEAR = 365 * DAY
_FIRST_WINDOW = 64  # bars searched for a stop or target at first; grows 4x without max_hold_bars


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip. Indexes are bars of the backtest's timeframe; prices include slippage."""

    entry_index: int  # the bar whose open the entry filled at
    exit_index: int  # the bar the exit filled in (at its open for a market exit)
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    size: float
    stop: float
    target: float
    reason: ExitReason
    pnl: float  # after fees
    pnl_fraction: float  # pnl / the entry's cost


@dataclass(frozen=True)
class BacktestStats:
    total_return: float  # final equity / starting cash - 1
    max_drawdown: float  # largest fall from a peak of the equity curve, as a fraction (>= 0)
    sharpe: float  # mean / standard deviation of per-bar returns, annualised
    win_rate: float  # share of trades with pnl > 0
    exposure: float  # share of bars that closed with a position open
    trades: int
    final_equity: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class BacktestResult:
    trades: list[Trade]
    equity_curve: Floats  # cash plus the position at each bar's close
    stats: BacktestStats


def backtest(strategy: Strategy, bars: Bars, *, timeframe: str | None = None, fee_bps: float = 0.0,
             slippage_bps: float = 0.0, cash: float = 10_000.0,
             cache: IndicatorCache | None = None) -> BacktestResult:
    """Run `strategy` over `bars` of `timeframe` (default: its base timeframe); rules on higher
    timeframes read bars resampled from these, each through its last completed bar."""
    tf = canonical_timeframe(timeframe or strategy.base_timeframe)
    costs_ok = 0 <= fee_bps < 10_000 and 0 <= slippage_bps < 10_000
    if not (math.isfinite(cash) and cash > 0 and costs_ok):
        raise StrategyError("a backtest needs cash > 0 and fee_bps and slippage_bps in [0, 10000)")
    cache = cache if cache is not None else IndicatorCache()
    data = {tf: bars}
    entries = entry_series(strategy, data, cache, timeframe=tf)
    exits = exit_series(strategy, data, cache, timeframe=tf)
    sim = _Simulation(strategy, bars, tf, cache, fee_bps / 10_000, slippage_bps / 10_000, cash)
    trades = sim.run(entries, exits)
    equity, in_market = sim.equity()
    return BacktestResult(trades, equity, _stats(equity, in_market, trades, cash, timeframe_seconds(tf)))


class _Simulation:
    def __init__(self, strategy: Strategy, bars: Bars, tf: str, cache: IndicatorCache, fee: float,
                 slip: float, cash: float) -> None:
        self.config, self.bars, self.step = strategy.execution_config, bars, timeframe_seconds(tf)
        self.atr = atr(bars, self.config.atr_period, cache)
        self.fee, self.slip, self.start_cash, self.cash = fee, slip, cash, cash
        # Per fill: the bar, the change of cash, of size, and of positions held (+1 or -1).
        self.at: list[int] = []
        self.cash_change: list[float] = []
        self.size_change: list[float] = []
        self.held_change: list[int] = []

    def run(self, entries: Mask, exits: Mask) -> list[Trade]:
        n, ts = len(self.bars), self.bars.ts
        entry_at, exit_at = np.flatnonzero(entries).tolist(), np.flatnonzero(exits).tolist()
        trades: list[Trade] = []
        search, day, today = 0, -1, 0
        while (k := bisect_left(entry_at, search)) < len(entry_at) and entry_at[k] < n - 1:
            s = entry_at[k]
            signal_day = (int(ts[s]) + self.step) // DAY
            if signal_day != day:
                day, today = signal_day, 0
            if today >= self.config.max_trades_per_day:  # no more entries until the next UTC day
                search = int(np.searchsorted(ts, (signal_day + 1) * DAY - self.step, side="left"))
                continue
            made = self._trade(s, exit_at)
            if made is None:
                search = s + 1
                continue
            trade, search = made
            today += 1
            trades.append(trade)
        return trades

    def _trade(self, s: int, exit_at: list[int]) -> tuple[Trade, int] | None:
        """The trade a signal at bar `s` makes, and the bar its exit was decided on; None if refused."""
        b, cfg, last = self.bars, self.config, len(self.bars) - 1
        e = s + 1
        price = float(b.open[e]) * (1 + self.slip)
        plan = plan_entry(cfg, price, float(self.atr[s]), account_value=self.cash, cash=self.cash,
                          fee_rate=self.fee)
        if plan.refused:
            return None
        timed = s + cfg.max_hold_bars if cfg.max_hold_bars is not None else last + 1
        k = bisect_left(exit_at, e)
        signalled = exit_at[k] if k < len(exit_at) else last + 1
        decided = min(timed, signalled, last)
        touch = self._touch(e, decided, plan.stop, plan.target)
        if touch is not None:
            decided, reason, out = touch
            exit_bar = decided
            out *= (1 - self.slip) if reason is ExitReason.STOP_LOSS else 1
        else:
            reason = (ExitReason.EXIT_SIGNAL if decided == signalled else
                      ExitReason.MAX_HOLD_BARS if decided == timed else ExitReason.END_OF_DATA)
            exit_bar = min(decided + 1, last)
            out = float(b.open[exit_bar] if decided < last else b.close[last]) * (1 - self.slip)
        cost = plan.size * price * (1 + self.fee)
        proceeds = plan.size * out * (1 - self.fee)
        self.cash += proceeds - cost
        self.at += (e, exit_bar)
        self.cash_change += (-cost, proceeds)
        self.size_change += (plan.size, -plan.size)
        self.held_change += (1, -1)
        trade = Trade(e, exit_bar, int(b.ts[e]), int(b.ts[exit_bar]), price, out, plan.size, plan.stop,
                      plan.target, reason, proceeds - cost, (proceeds - cost) / cost)
        return trade, decided

    def _touch(self, start: int, end: int, stop: float,
               target: float) -> tuple[int, ExitReason, float] | None:
        """The first bar in [start, end] reaching the stop or target, searched in growing windows."""
        b, width = self.bars, _FIRST_WINDOW
        while start <= end:
            stop_at = min(end + 1, start + width)
            window = slice(start, stop_at)
            hit = first_touch(b.open[window], b.high[window], b.low[window], stop, target)
            if hit is not None:
                return start + hit[0], hit[1], hit[2]
            start, width = stop_at, width * 4
        return None

    def equity(self) -> tuple[Floats, Mask]:
        """Cash plus the position marked at each close, and whether a position was held at it."""
        n, at = len(self.bars), np.array(self.at, dtype=np.int64)
        cash = np.bincount(at, weights=self.cash_change, minlength=n)
        size = np.bincount(at, weights=self.size_change, minlength=n)
        in_market = np.cumsum(np.bincount(at, weights=self.held_change, minlength=n)) > 0.5
        # Without a position the size is exactly 0, whatever the float sums leave behind.
        position = np.where(in_market, np.cumsum(size), 0.0)
        return self.start_cash + np.cumsum(cash) + position * self.bars.close, in_market


def _stats(equity: Floats, in_market: Mask, trades: list[Trade], cash: float, step: int) -> BacktestStats:
    if not len(equity):
        return BacktestStats(0.0, 0.0, 0.0, 0.0, 0.0, 0, cash)
    drawdown = float(np.max(1 - equity / np.maximum.accumulate(equity)))
    returns = equity[1:] / equity[:-1] - 1
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    sharpe = float(np.mean(returns)) / spread * math.sqrt(YEAR / step) if spread > 0 else 0.0
    wins = sum(1 for t in trades if t.pnl > 0)
    return BacktestStats(
        total_return=float(equity[-1]) / cash - 1, max_drawdown=max(drawdown, 0.0), sharpe=sharpe,
        win_rate=wins / len(trades) if trades else 0.0, exposure=float(np.mean(in_market)),
        trades=len(trades), final_equity=float(equity[-1]))
