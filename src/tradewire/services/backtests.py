"""Use case: backtest a strategy on stored bars (or bars handed in) with the live rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from tradewire.domain.errors import Rejected
from tradewire.domain.market import Bar
from tradewire.services.deps import Deps
from tradewire.services.evaluation import spellings
from tradewire.strategies.backtest import BacktestResult, backtest
from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import parse_strategy

MAX_BARS = 2_000_000
CURVE_POINTS = 500  # the equity curve is sampled down to this many points in answers


def run(raw: Any, deps: Deps, *, bars: Sequence[Bar] | None = None, timeframe: str | None = None,
        fee_bps: float = 0.0, slippage_bps: float = 0.0, cash: float = 10_000.0
        ) -> tuple[Any, BacktestResult]:
    """The strategy's backtest over `bars`, or over every stored bar of its asset."""
    strategy = parse_strategy(raw)
    tf = timeframe or strategy.base_timeframe
    if bars is None:
        for symbol in spellings(strategy.asset):
            bars = deps.bars.bars(symbol, tf, MAX_BARS)
            if bars:
                break
    if not bars:
        raise Rejected(f"no {tf} bars for {strategy.asset}", code="NO_MARKET_DATA")
    result = backtest(strategy, Bars.of(bars), timeframe=tf, fee_bps=fee_bps,
                      slippage_bps=slippage_bps, cash=cash)
    return strategy, result


def summary(result: BacktestResult, *, trades: bool = True) -> dict[str, Any]:
    curve = result.equity_curve
    step = max(len(curve) // CURVE_POINTS, 1)
    out: dict[str, Any] = {"stats": result.stats.to_dict(),
                           "equity_curve": [round(float(x), 2) for x in curve[::step]]}
    if trades:
        out["trades"] = [{**asdict(t), "reason": str(t.reason),
                          "entry_at": _iso(t.entry_ts), "exit_at": _iso(t.exit_ts)}
                         for t in result.trades[:1000]]
    return out


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
