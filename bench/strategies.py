"""The strategy benchmark: bulk evaluation with a shared indicator cache, and a long backtest.

(a) 10,000 seeded strategies over 50 (asset, timeframe) pairs (10 assets x 5 timeframes, 500
seeded random-walk bars each), each run through `execution.decide` on its asset's data:
once with one shared `IndicatorCache` (what `evaluate/bulk` does: every strategy on BTC 1h
reuses the same RSI(14)), once one by one with a fresh cache per strategy. Then the signals
alone (`entry_signal` + `exit_signal`) the same two ways. The DESIGN target is the bulk
evaluation under 1 s in all, with the data in the database: (c) measures that, through the
route (`bench.evaluate_route`); (a) is the evaluator's own cost, without database or HTTP.
(c) `POST /api/v1/execution/evaluate/bulk` of the same 10,000 strategies stored in a fresh
`tradewire serve`, the same bars in its database (`bench.evaluate_route`).
(b) `backtest` over 1,000,000 5m bars: a quiet strategy (a 5m trigger under a 1h filter; fees
5 bp, slippage 2 bp) and a busy one, the trade loop's stress case: an entry signal about every
tenth bar and no costs, so the account lives to trade about once every twelve bars. Target < 2 s.

Baselines (`bench.ta_baseline`, `bench.bt_baseline`), in the same run:
- each strategy evaluated on its own with the `ta` library and pandas, on a seeded sample of
  the 10,000 (TA_SAMPLE, within TA_DEADLINE_S); its cost for all 10,000 is extrapolated from
  the sample's mean, and its answers are checked against tradewire's;
- the floor: TA-Lib alone computing the distinct indicators the 10,000 strategies need;
- the curve: bulk evaluation (shared cache, `decide`) of the first 100, 1,000, 10,000 and
  100,000 strategies of the same generator;
- the `backtesting` package running the quiet strategy over the same 1,000,000 bars (over
  their first BT_SMALL_BARS when the budget is short, tradewire then timed on those too).

`python -m bench.strategies` runs it and prints the figures; fixed seed, bounded by BUDGET_S.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np

from bench import bt_baseline, evaluate_route, ta_baseline
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
CURVE = (100, 1_000, 10_000, 100_000)
TA_SAMPLE = 200
TA_DEADLINE_S = 15.0
BT_SMALL_BARS = 100_000
BT_FULL_NEEDS_S = 45.0  # budget left to run `backtesting` over the full 1,000,000 bars
BUDGET_S = 120.0
ROUTE_BUDGET_S = 60.0  # evaluate/bulk through a server: storing the data, then its runs
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


def definitions(rng: random.Random, assets: list[str], count: int = STRATEGIES,
                start: int = 0) -> list[dict[str, Any]]:
    """`count` seeded strategy objects as a user sends them; drawing more from the same `rng`
    continues the sequence."""
    out = []
    for i in range(start, start + count):
        entry = [_rule(rng, "TRIGGER")] + [_rule(rng, "FILTER") for _ in range(rng.randint(0, 2))]
        exits = [_rule(rng, rng.choice(("TRIGGER", "FILTER"))) for _ in range(rng.randint(0, 1))]
        out.append({"name": f"s{i}", "asset": rng.choice(assets),
                    "rules": {"entry": entry, "exit": exits}})
    return out


def strategies(rng: random.Random, assets: list[str], count: int = STRATEGIES,
               start: int = 0) -> list[Strategy]:
    """`count` seeded strategies (`definitions`, parsed)."""
    return [parse_strategy(d) for d in definitions(rng, assets, count, start)]


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


def backtests(bars: Bars) -> list[dict[str, Any]]:
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


def run(report: Callable[[str], None] = print, budget_s: float = BUDGET_S) -> dict[str, Any]:
    t0 = time.perf_counter()
    end = t0 + budget_s
    np_rng, py_rng = np.random.default_rng(SEED), random.Random(SEED)
    data = market(np_rng)
    defs = definitions(py_rng, sorted(data))
    strats = [parse_strategy(d) for d in defs]
    report(f"{len(data) * len(FRAMES)} pairs x {BARS} bars and {len(strats):,} strategies made in "
           f"{time.perf_counter() - t0:.1f} s")
    evaluation = bulk(data, strats)
    for label, r in evaluation.items():
        report(f"{label:>8}: shared cache {r['shared_s']:.3f} s ({r['us_per_strategy_shared']} us/strategy), "
               f"one by one {r['one_by_one_s']:.3f} s, ratio {r['ratio']}x")
    baselines = {"talib_floor": talib_floor(data, strats), "ta_one_by_one": ta_sample(data, strats)}
    _report_baselines(baselines, evaluation, report)
    route = evaluate_route.run(data, defs, min(ROUTE_BUDGET_S, end - time.perf_counter() - 30), report)
    points = curve(data, strats, py_rng, end, report)
    bars = random_walk(np_rng, BACKTEST_BARS, TIMEFRAMES["5m"])
    rows = backtests(bars)
    for r in rows:
        report(f"backtest {r['strategy']:>5}: {r['bars']:,} bars in {r['best_s']:.3f} s best of 3 "
               f"(first {r['first_s']:.3f} s), {r['entry_signals']:,} entry signals, {r['trades']:,} trades, "
               f"exposure {r['exposure']}")
    versus = versus_backtesting(bars, rows[0], end, report)
    return {"benchmark": "strategies", "config": {"seed": SEED, "assets": ASSETS, "timeframes": list(FRAMES),
            "bars": BARS, "strategies": STRATEGIES, "backtest_bars": BACKTEST_BARS, "curve": list(CURVE),
            "ta_sample": TA_SAMPLE, "budget_s": budget_s},
            "evaluation": evaluation, "route": route, "baselines": baselines, "curve": points,
            "backtest": rows,
            "backtest_vs_backtesting": versus}


def talib_floor(data: dict[str, Data], strats: list[Strategy]) -> dict[str, Any]:
    """TA-Lib alone over the distinct indicators the bulk `decide` of `strats` computes."""
    cache = ta_baseline.RecordingCache()
    state = ExecutionState.starting(Decimal(10_000))
    for s in strats:
        decide(s, state, data[s.asset], cache)
    return ta_baseline.floor(list(cache.indicators))


def ta_sample(data: dict[str, Data], strats: list[Strategy]) -> dict[str, Any]:
    """The `ta` + pandas evaluator on a seeded sample; its total for all of them extrapolated."""
    sample = random.Random(f"{SEED}:ta-sample").sample(strats, min(TA_SAMPLE, len(strats)))
    row = ta_baseline.measure_ta(data, sample, TA_DEADLINE_S)
    row["extrapolated_s"] = round(row["us_per_strategy"] * len(strats) / 1e6, 2)
    row["extrapolated_to"] = len(strats)
    return row


def _report_baselines(baselines: dict[str, Any], evaluation: dict[str, Any],
                      report: Callable[[str], None]) -> None:
    floor, ta = baselines["talib_floor"], baselines["ta_one_by_one"]
    shared = evaluation["decide"]["shared_s"]
    floor["tradewire_x_floor"] = round(shared / floor["best_s"], 1) if floor["best_s"] else None
    ta["x_tradewire_signals"] = round(ta["extrapolated_s"] / evaluation["signals"]["shared_s"], 1)
    ta["x_tradewire_decide"] = round(ta["extrapolated_s"] / shared, 1)
    report(f"TA-Lib floor: {floor['indicators']:,} distinct indicators in {floor['best_s']:.4f} s "
           f"(best of 3); tradewire's bulk decide is {floor['tradewire_x_floor']}x that")
    report(f"ta + pandas, one strategy at a time: {ta['us_per_strategy']:,} us/strategy over a sample "
           f"of {ta['strategies']} (same answers as tradewire for {ta['same_answers']}); "
           f"{ta['extrapolated_s']} s for {ta['extrapolated_to']:,} (extrapolated), "
           f"{ta['x_tradewire_signals']}x tradewire's shared signals, {ta['x_tradewire_decide']}x its decide")


def curve(data: dict[str, Data], strats: list[Strategy], rng: random.Random, end: float,
          report: Callable[[str], None]) -> list[dict[str, Any]]:
    """Bulk `decide` (one shared cache) of the first N strategies, for each N of CURVE."""
    state = ExecutionState.starting(Decimal(10_000))
    points: list[dict[str, Any]] = []
    for n in CURVE:
        if n > len(strats):
            # Time to make them and evaluate them, from the last point (and the same again spare).
            last = points[-1]["seconds"] if points else 0.0
            needed = 2 * (n / STRATEGIES * 1.5 + last * n / max(points[-1]["strategies"], 1))
            if time.perf_counter() + needed > end:
                points.append({"strategies": n, "skipped": "time budget"})
                report(f"curve: {n:,} strategies skipped (time budget)")
                continue
            strats = strats + strategies(rng, sorted(data), n - len(strats), start=len(strats))
        cache = IndicatorCache()
        t0 = time.perf_counter()
        for s in strats[:n]:
            decide(s, state, data[s.asset], cache)
        seconds = time.perf_counter() - t0
        points.append({"strategies": n, "seconds": round(seconds, 4),
                       "us_per_strategy": round(seconds / n * 1e6, 1), "indicators": len(cache)})
        report(f"curve: {n:>7,} strategies in {seconds:.3f} s ({seconds / n * 1e6:.1f} us each)")
    return points


def versus_backtesting(bars: Bars, quiet: dict[str, Any], end: float,
                       report: Callable[[str], None]) -> dict[str, Any]:
    """The `backtesting` package on the quiet strategy and tradewire's bars (all of them when
    the budget allows, else the first BT_SMALL_BARS, with tradewire timed on those too)."""
    if end - time.perf_counter() < BT_FULL_NEEDS_S:
        bars = bars.head(BT_SMALL_BARS)
        strategy = parse_strategy(_QUIET)
        runs = [_timed_backtest(strategy, bars, 5.0, 2.0) for _ in range(3)]
        mine = {"bars": len(bars), "best_s": round(min(r[0] for r in runs), 3),
                "trades": runs[0][1].stats.trades}
    else:
        mine = {"bars": quiet["bars"], "best_s": quiet["best_s"], "trades": quiet["trades"]}
    theirs = bt_baseline.run(bars)
    out = {"tradewire": mine, "backtesting": theirs,
           "backtesting_x_tradewire": round(theirs["seconds"] / mine["best_s"], 1),
           "reduced": len(bars) < BACKTEST_BARS}
    report(f"backtesting package, quiet strategy, {theirs['bars']:,} bars: {theirs['seconds']:.2f} s "
           f"({theirs['trades']:,} trades) against tradewire's {mine['best_s']:.3f} s ({mine['trades']:,} "
           f"trades): {out['backtesting_x_tradewire']}x")
    return out


def main() -> None:
    print(f"strategy benchmark: {STRATEGIES:,} strategies over {ASSETS * len(FRAMES)} (asset, timeframe) "
          f"pairs of {BARS} bars; backtests over {BACKTEST_BARS:,} bars")
    run()


if __name__ == "__main__":
    main()
