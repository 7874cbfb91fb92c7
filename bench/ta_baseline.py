"""Baselines for strategy evaluation: each strategy alone with `ta` and pandas, and TA-Lib alone.

`evaluate_one` is what a per-strategy evaluator looks like when written the way the seed's
system names its parameters (the `ta` library: `window`, `window_fast`, `window_dev`, ...):
for one strategy, a pandas DataFrame per timeframe it reads, each rule's indicator computed
with `ta`, and the rule read on the last two bars (a FILTER holds on the last bar; a TRIGGER
holds there and did not on the bar before, where it was defined). Nothing is shared between
strategies. Filters are read first and a failing one stops the strategy, as tradewire does,
so the baseline does no more work than it must.

`Floor` is TA-Lib alone: every distinct (bars, indicator, params) that tradewire's bulk
evaluation computes, recorded through its cache, then computed again by calling TA-Lib
directly, nothing else. No evaluation of the same strategies can be cheaper than that.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import talib
from ta.momentum import RSIIndicator, StochasticOscillator
from ta.trend import MACD, ADXIndicator, EMAIndicator, SMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands

from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import Strategy, fires
from tradewire.strategies.rules import IndicatorCache, Rule, SignalType

State = tuple[pd.Series, pd.Series]  # (holds, defined) per bar
StateFn = Callable[[pd.DataFrame, Mapping[str, float]], State]


def frame(bars: Bars) -> pd.DataFrame:
    """The bars as the DataFrame a pandas-based evaluator starts from."""
    return pd.DataFrame({"open": bars.open, "high": bars.high, "low": bars.low,
                         "close": bars.close, "volume": bars.volume},
                        index=pd.to_datetime(bars.ts, unit="s", utc=True))


def _defined(*series: pd.Series) -> pd.Series:
    out = series[0].notna()
    for s in series[1:]:
        out &= s.notna()
    return out


def _rsi(below: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        r = RSIIndicator(df["close"], window=int(p["window"])).rsi()
        return (r < p["threshold"]) if below else (r > p["threshold"]), _defined(r)
    return state


def _macd(up: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        m = MACD(df["close"], window_slow=int(p["window_slow"]), window_fast=int(p["window_fast"]),
                 window_sign=int(p["window_sign"]))
        line, signal = m.macd(), m.macd_signal()
        return (line > signal) if up else (line < signal), _defined(line, signal)
    return state


def _cross(indicator: type[EMAIndicator] | type[SMAIndicator], up: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        fast = _average(indicator, df["close"], int(p["window_fast"]))
        slow = _average(indicator, df["close"], int(p["window_slow"]))
        return (fast > slow) if up else (fast < slow), _defined(fast, slow)
    return state


def _average(indicator: type[EMAIndicator] | type[SMAIndicator], series: pd.Series,
             window: int) -> pd.Series:
    if indicator is EMAIndicator:
        return EMAIndicator(series, window=window).ema_indicator()
    return SMAIndicator(series, window=window).sma_indicator()


def _price(indicator: type[EMAIndicator] | type[SMAIndicator], above: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        line = _average(indicator, df["close"], int(p["window"]))
        return (df["close"] > line) if above else (df["close"] < line), _defined(line)
    return state


def _bands(lower: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        bb = BollingerBands(df["close"], window=int(p["window"]), window_dev=p["window_dev"])
        upper, low_band = bb.bollinger_hband(), bb.bollinger_lband()
        return (df["low"] <= low_band) if lower else (df["high"] >= upper), _defined(upper)
    return state


def _stoch(below: bool) -> StateFn:
    def state(df: pd.DataFrame, p: Mapping[str, float]) -> State:
        k = StochasticOscillator(df["high"], df["low"], df["close"], window=int(p["window"]),
                                 smooth_window=int(p["smooth_window"])).stoch_signal()
        return (k < p["threshold"]) if below else (k > p["threshold"]), _defined(k)
    return state


def _adx(df: pd.DataFrame, p: Mapping[str, float]) -> State:
    a = ADXIndicator(df["high"], df["low"], df["close"], window=int(p["window"])).adx()
    return a > p["threshold"], _defined(a)


def _volume(df: pd.DataFrame, p: Mapping[str, float]) -> State:
    average = SMAIndicator(df["volume"], window=int(p["window"])).sma_indicator()
    return df["volume"] > p["threshold"] * average, _defined(average)


def _atr(df: pd.DataFrame, p: Mapping[str, float]) -> State:
    a = AverageTrueRange(df["high"], df["low"], df["close"], window=int(p["window"])).average_true_range()
    change = df["close"].diff()
    return change > p["threshold"] * a, _defined(a, change)


STATES: dict[str, StateFn] = {
    "rsi_oversold": _rsi(below=True), "rsi_overbought": _rsi(below=False),
    "macd_bullish_cross": _macd(up=True), "macd_bearish_cross": _macd(up=False),
    "ema_cross_up": _cross(EMAIndicator, up=True), "ema_cross_down": _cross(EMAIndicator, up=False),
    "sma_cross_up": _cross(SMAIndicator, up=True), "sma_cross_down": _cross(SMAIndicator, up=False),
    "price_above_sma": _price(SMAIndicator, above=True),
    "price_below_sma": _price(SMAIndicator, above=False),
    "price_above_ema": _price(EMAIndicator, above=True),
    "price_below_ema": _price(EMAIndicator, above=False),
    "bollinger_lower_touch": _bands(lower=True), "bollinger_upper_touch": _bands(lower=False),
    "stoch_oversold": _stoch(below=True), "stoch_overbought": _stoch(below=False),
    "adx_trending": _adx, "volume_spike": _volume, "atr_breakout": _atr,
}


def _holds(rule: Rule, frames: dict[str, pd.DataFrame]) -> bool:
    holds, defined = STATES[rule.name](frames[rule.timeframe], rule.params)
    if rule.signal_type is SignalType.FILTER:
        return bool(holds.iloc[-1])
    return bool(holds.iloc[-1] and not holds.iloc[-2] and defined.iloc[-2])


def _fires(rules: tuple[Rule, ...], frames: dict[str, pd.DataFrame]) -> bool:
    filters = [r for r in rules if r.signal_type is SignalType.FILTER]
    triggers = [r for r in rules if r.signal_type is SignalType.TRIGGER]
    held = []
    for rule in filters:
        if not _holds(rule, frames):
            return False
        held.append(True)
    return fires([_holds(r, frames) for r in triggers], held)


def evaluate_one(strategy: Strategy, data: Mapping[str, Bars]) -> tuple[bool, bool]:
    """(entry fires, exit fires) on the latest bars, with nothing shared with other strategies."""
    frames = {tf: frame(data[tf]) for tf in strategy.timeframes}
    return _fires(strategy.entry, frames), _fires(strategy.exit, frames)


def measure_ta(data: dict[str, dict[str, Bars]], sample: list[Strategy],
               deadline_s: float) -> dict[str, Any]:
    """Each sampled strategy with `ta`, until the sample or the time runs out; the answers are
    compared with tradewire's `entry_signal` / `exit_signal` on the same bars."""
    done, agree, elapsed = 0, 0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ta's ADX divides by zero in its warm-up
        for s in sample:
            t0 = time.perf_counter()
            mine = evaluate_one(s, data[s.asset])
            elapsed += time.perf_counter() - t0
            done += 1
            theirs = (s.entry_signal(data[s.asset]), s.exit_signal(data[s.asset]))
            agree += mine == theirs
            if elapsed > deadline_s:
                break
    return {"strategies": done, "seconds": round(elapsed, 3),
            "us_per_strategy": round(elapsed / done * 1e6, 1), "same_answers": agree}


# ---- the floor: TA-Lib alone ---------------------------------------------------------------------

_TALIB: dict[str, Callable[..., Any]] = {
    "rsi": lambda b, w: talib.RSI(b.close, w),
    "ema": lambda b, w: talib.EMA(b.close, w),
    "sma": lambda b, w: talib.SMA(b.close, w),
    "volume_sma": lambda b, w: talib.SMA(b.volume, w),
    "macd": lambda b, f, s, g: talib.MACD(b.close, f, s, g),
    "bollinger": lambda b, w, d: talib.BBANDS(b.close, w, d, d, 0),
    "stoch": lambda b, w, k: talib.STOCH(b.high, b.low, b.close, w, k, 0, 1, 0),
    "adx": lambda b, w: talib.ADX(b.high, b.low, b.close, w),
    "atr": lambda b, w: talib.ATR(b.high, b.low, b.close, w),
}


class RecordingCache(IndicatorCache):
    """An IndicatorCache that also lists the distinct indicators it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.indicators: dict[tuple[Bars, str, tuple[Any, ...]], None] = {}

    def get(self, bars: Bars, name: str, params: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if name in _TALIB:
            self.indicators[(bars, name, params)] = None
        return super().get(bars, name, params, compute)


def floor(indicators: list[tuple[Bars, str, tuple[Any, ...]]], repeat: int = 3) -> dict[str, Any]:
    """TA-Lib over every distinct indicator, best of `repeat` passes."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for bars, name, params in indicators:
            _TALIB[name](bars, *params)
        runs.append(time.perf_counter() - t0)
    names: dict[str, int] = {}
    for _, name, _ in indicators:
        names[name] = names.get(name, 0) + 1
    return {"indicators": len(indicators), "by_name": dict(sorted(names.items())),
            "best_s": round(min(runs), 4), "bars_per_series": int(np.median(
                [len(b) for b, _, _ in indicators])) if indicators else 0}
