"""The strategy benchmark: bulk evaluation with a shared indicator cache, and a long backtest.

(a) 10,000 seeded strategies over 50 (asset, timeframe) pairs (10 assets x 5 timeframes, 500
seeded random-walk bars each), each run through `execution.decide` on its asset's data:
once with one shared `IndicatorCache` (what `evaluate/bulk` does: every strategy on BTC 1h
reuses the same RSI(14)), once one by one with a fresh cache per strategy. Then the signals
alone (`entry_signal` + `exit_signal`) the same two ways. The DESIGN target is the bulk
evaluation under 1 s in all (here without the database).
(b) `backtest` over 1,000,000 5m bars: a quiet strategy (a 5m trigger under a 1h filter; fees
5 bp, slippage 2 bp) and a busy one, the trade loop's stress case: an entry signal about every
tenth bar and no costs, so the account lives to trade about once every twelve bars. Target < 2 s.

`python -m bench.strategies` runs it and prints the figures; fixed seed, well under 2 minutes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from tradewire.strategies.backtest import backtest
from tradewire.strategies.bars import TIMEFRAMES, Bars
from tradewire.strategies.evaluator import Strategy, entry_series, parse_strategy
from tradewire.strategies.execution import ExecutionState, decide
from tradewire.strategies.rules import CONDITIONS, IndicatorCache

SEED = 20260207
ASSETS = 10
FRAMES = ("5m", "15m", "1h", "4h", "1d")  # 10 assets x 5 timeframes = 50 pairs
BARS = 500
STRATEGIES = 10_000
BACKTEST_BARS = 1_000_000
END_TS = 1_767_225_600  # 2026-01-01 00:00 UTC: every series ends at the same boundary
Data = dict[str, Bars]


def random_walk(rng: np.random.Generator, n: int, step_s: int, end_ts: int = END_TS) -> Bars:
    """Seeded OHLCV bars: log-normal closes, each bar opening at the previous close."""
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0, 0.002, n)) * close
    ts = end_ts - step_s * np.arange(n, 0, -1)
    return Bars(ts=ts, open=open_, high=np.maximum(open_, close) + wick,
                low=np.minimum(open_, close) - wick, close=close, volume=rng.lognormal(8, 0.5, n))


def market(rng: np.random.Generator) -> dict[str, Data]:
    return {f"A{a:02d}/USDT": {tf: random_walk(rng, BARS, TIMEFRAMES[tf]) for tf in FRAMES}
            for a in range(ASSETS)}


# Users mostly keep the defaults; a few common variants make the cache work for its hits.
_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "rsi_oversold": [{}, {"window": 7}, {"threshold": 25}],
    "rsi_overbought": [{}, {"window": 21}, {"threshold": 75}],
    "ema_cross_up": [{}, {"window_fast": 9, "window_slow": 21}],
    "ema_cross_down": [{}, {"window_fast": 9, "window_slow": 21}],
    "price_above_sma": [{}, {"window": 50}, {"window": 200}],
    "price_below_sma": [{}, {"window": 50}],
}


def _rule(rng: random.Random, signal_type: str) -> dict[str, Any]:
    name = rng.choice(list(CONDITIONS))
    return {"name": name, "signal_type": signal_type, "timeframe": rng.choice(FRAMES),
            "params": rng.choice(_VARIANTS.get(name, [{}]))}


def strategies(rng: random.Random, assets: list[str]) -> list[Strategy]:
    out = []
    for i in range(STRATEGIES):
        entry = [_rule(rng, "TRIGGER")] + [_rule(rng, "FILTER") for _ in range(rng.randint(0, 2))]
        exits = [_rule(rng, rng.choice(("TRIGGER", "FILTER"))) for _ in range(rng.randint(0, 1))]
        out.append(parse_strategy({"name": f"s{i}", "asset": rng.choice(assets),
                                   "rules": {"entry": entry, "exit": exits}}))
    return out


def _timed(work: Callable[[bool], int], shared: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    count = work(shared)
    return time.perf_counter() - t0, count


def bulk(data: dict[str, Data], strats: list[Strategy]) -> dict[str, Any]:
    state = ExecutionState.starting(Decimal(10_000))

    def decide_all(shared: bool) -> int:
        cache = IndicatorCache()
        orders = 0
        for s in strats:
            decision = decide(s, state, data[s.asset], cache if shared else IndicatorCache())
            orders += len(decision.new_orders)
        return orders

    def signals_all(shared: bool) -> int:
        cache = IndicatorCache()
        fired = 0
        for s in strats:
            c = cache if shared else IndicatorCache()
            fired += s.entry_signal(data[s.asset], c) + s.exit_signal(data[s.asset], c)
        return fired

    row: dict[str, Any] = {}
    for label, work in (("decide", decide_all), ("signals", signals_all)):
        shared_s, count = _timed(work, True)
        alone_s, count_alone = _timed(work, False)
        assert count == count_alone, "sharing the cache changed the answers"
        row[label] = {"shared_s": round(shared_s, 3), "one_by_one_s": round(alone_s, 3),
                      "ratio": round(alone_s / shared_s, 1), "count": count,
                      "us_per_strategy_shared": round(shared_s / len(strats) * 1e6, 1)}
    return row


_QUIET = {"name": "quiet", "asset": "BTC/USDT", "rules": {
    "entry": [{"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "5m"},
              {"name": "price_above_sma", "signal_type": "FILTER", "timeframe": "1h",
               "params": {"window": 50}}],
    "exit": [{"name": "rsi_overbought", "signal_type": "TRIGGER", "timeframe": "5m"}]}}
_BUSY = {"name": "busy", "asset": "BTC/USDT", "rules": {
    "entry": [{"name": "price_above_ema", "signal_type": "TRIGGER", "timeframe": "5m",
               "params": {"window": 10}}], "exit": []},
    "execution_config": {"stop_loss_calculation": "fixed_percent", "stop_loss_percent": 0.005,
                         "max_hold_bars": 20}}


def backtests(rng: np.random.Generator) -> list[dict[str, Any]]:
    bars = random_walk(rng, BACKTEST_BARS, TIMEFRAMES["5m"])
    rows = []
    for raw, costs in ((_QUIET, (5.0, 2.0)), (_BUSY, (0.0, 0.0))):
        strategy = parse_strategy(raw)
        runs = []
        for _ in range(3):  # the first run pays for numpy's and TA-Lib's first calls
            seconds, result = _timed_backtest(strategy, bars, *costs)
            runs.append(seconds)
        signals = int(entry_series(strategy, {"5m": bars}).sum())
        rows.append({"strategy": strategy.name, "bars": len(bars), "best_s": round(min(runs), 3),
                     "first_s": round(runs[0], 3), "entry_signals": signals, "trades": result.stats.trades,
                     "exposure": round(result.stats.exposure, 3)})
    return rows


def _timed_backtest(strategy: Strategy, bars: Bars, fee_bps: float, slippage_bps: float) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = backtest(strategy, bars, fee_bps=fee_bps, slippage_bps=slippage_bps)
    return time.perf_counter() - t0, result


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    np_rng, py_rng = np.random.default_rng(SEED), random.Random(SEED)
    data = market(np_rng)
    strats = strategies(py_rng, sorted(data))
    report(f"{len(data) * len(FRAMES)} pairs x {BARS} bars and {len(strats):,} strategies made in "
           f"{time.perf_counter() - t0:.1f} s")
    evaluation = bulk(data, strats)
    for label, r in evaluation.items():
        report(f"{label:>8}: shared cache {r['shared_s']:.3f} s ({r['us_per_strategy_shared']} us/strategy), "
               f"one by one {r['one_by_one_s']:.3f} s, ratio {r['ratio']}x")
    rows = backtests(np_rng)
    for r in rows:
        report(f"backtest {r['strategy']:>5}: {r['bars']:,} bars in {r['best_s']:.3f} s best of 3 "
               f"(first {r['first_s']:.3f} s), {r['entry_signals']:,} entry signals, {r['trades']:,} trades, "
               f"exposure {r['exposure']}")
    return {"benchmark": "strategies", "config": {"seed": SEED, "assets": ASSETS, "timeframes": list(FRAMES),
            "bars": BARS, "strategies": STRATEGIES, "backtest_bars": BACKTEST_BARS},
            "evaluation": evaluation, "backtest": rows}


def main() -> None:
    print(f"strategy benchmark: {STRATEGIES:,} strategies over {ASSETS * len(FRAMES)} (asset, timeframe) "
          f"pairs of {BARS} bars; backtests over {BACKTEST_BARS:,} bars")
    run()


if __name__ == "__main__":
    main()
