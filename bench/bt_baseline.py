"""The backtest baseline: the `backtesting` package on the strategy and bars of tradewire's.

The strategy is the benchmark's quiet one (`bench.strategies._QUIET`): enter when RSI(14) on
5m bars crosses under 30 while the close of the last completed hour is over its SMA(50);
leave when RSI(14) crosses over 70, at a stop 2 x ATR(14) under the price or a target twice
as far over it, or after 50 bars; risk 1% of equity per trade; fees 5 bp per fill. Written
the way that package is used: indicators through `Strategy.I` (TA-Lib, as tradewire), the
hourly filter through `resample_apply`, the decisions in `next()`, which it calls once per bar.

The two engines differ in details (`backtesting` sets the stop from the signal bar's close,
tradewire from the fill; `backtesting` charges its 2 bp spread on entries only, tradewire
slippage on market and stop fills; the hourly bar is aligned by pandas' resampling), so their
trade counts are close but not equal: the figure compared is the time.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import resample_apply

from tradewire.strategies.bars import Bars

RSI_WINDOW, LOW, HIGH, TREND_WINDOW = 14, 30, 70, 50
ATR_WINDOW, ATR_FACTOR, REWARD, RISK, MAX_HOLD = 14, 2.0, 2.0, 0.01, 50
FEE, SPREAD = 0.0005, 0.0002


def _above_sma(close: pd.Series) -> pd.Series:
    values = close.to_numpy(dtype=float)
    return pd.Series((values > talib.SMA(values, TREND_WINDOW)).astype(float), index=close.index)


class Quiet(Strategy):  # type: ignore[misc]
    """RSI dip under an hourly uptrend, with an ATR stop and target and a time exit."""

    def init(self) -> None:
        close = np.asarray(self.data.Close, dtype=float)
        high, low = np.asarray(self.data.High, dtype=float), np.asarray(self.data.Low, dtype=float)
        self.rsi = self.I(talib.RSI, close, RSI_WINDOW)
        self.atr = self.I(talib.ATR, high, low, close, ATR_WINDOW)
        self.trend = resample_apply("1h", _above_sma, self.data.Close)
        self.entered = -1

    def next(self) -> None:
        rsi, bar = self.rsi, len(self.data) - 1
        if self.position:
            if (rsi[-1] > HIGH and not rsi[-2] > HIGH) or bar - self.entered >= MAX_HOLD:
                self.position.close()
            return
        if rsi[-1] < LOW and not rsi[-2] < LOW and self.trend[-1] > 0.5:
            price, distance = float(self.data.Close[-1]), ATR_FACTOR * float(self.atr[-1])
            if not distance > 0:
                return
            self.buy(size=min(RISK * price / distance, 0.9999), sl=price - distance,
                     tp=price + REWARD * distance)
            self.entered = bar


def frame(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame({"Open": bars.open, "High": bars.high, "Low": bars.low,
                         "Close": bars.close, "Volume": bars.volume},
                        index=pd.to_datetime(bars.ts, unit="s"))


def run(bars: Bars) -> dict[str, Any]:
    """One `Backtest.run` over `bars` (DataFrame building included), timed."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about the index and open trades at the end
        test = Backtest(frame(bars), Quiet, cash=10_000, commission=FEE, spread=SPREAD,
                        finalize_trades=True)
        stats = test.run()
    return {"bars": len(bars), "seconds": round(time.perf_counter() - t0, 3),
            "trades": int(stats["# Trades"]), "exposure": round(float(stats["Exposure Time [%]"]) / 100, 3)}
