"""Builders shared by the strategy tests: hand-made bars and the GOOG sample."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from tradewire.strategies.bars import Bars

START = 1_767_225_600  # 2026-01-01 00:00 UTC
HOUR = 3600


def bars_of(closes: Sequence[float], *, opens: Sequence[float] | None = None,
            highs: Sequence[float] | None = None, lows: Sequence[float] | None = None,
            volumes: Sequence[float] | None = None, start: int = START, step: int = HOUR) -> Bars:
    """Bars with these closes; open, high and low default to the close, volume to 100."""
    c = np.asarray(closes, dtype=float)
    return Bars(ts=start + step * np.arange(len(c)),
                open=c if opens is None else np.asarray(opens, dtype=float),
                high=c if highs is None else np.asarray(highs, dtype=float),
                low=c if lows is None else np.asarray(lows, dtype=float),
                close=c, volume=np.full(len(c), 100.0) if volumes is None else np.asarray(volumes, float))


@cache
def goog() -> Bars:
    """The backtesting package's daily GOOG sample, 2004-2013 (2,148 bars)."""
    from backtesting.test import GOOG  # pandas loads only for the tests that use it

    ts = GOOG.index.values.astype("datetime64[s]").astype(np.int64)
    return Bars(ts=ts, open=GOOG.Open.to_numpy(float), high=GOOG.High.to_numpy(float),
                low=GOOG.Low.to_numpy(float), close=GOOG.Close.to_numpy(float),
                volume=GOOG.Volume.to_numpy(float))
