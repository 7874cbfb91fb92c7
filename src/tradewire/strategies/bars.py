"""Closed OHLCV bars as numpy arrays, and resampling to a higher timeframe.

`ts` is each bar's open time in epoch seconds (UTC); a bar closes at `ts + seconds`. Bars hold
closed bars only, oldest first: the market-data edge drops the bar still forming, so "the
latest bar" is always the latest closed bar. Prices are float64: indicator input, not money.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradewire.domain.market import TIMEFRAMES, Bar, timeframe

__all__ = ["TIMEFRAMES", "Bars", "resample", "timeframe", "timeframe_seconds"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def timeframe_seconds(name: str) -> int:
    """The length of a timeframe in seconds (`1D` is `1d`); Rejected for an unknown one."""
    return TIMEFRAMES[timeframe(name)]


@dataclass(frozen=True, eq=False)
class Bars:
    """A series of closed bars. Equality and hashing are by identity: caches key on the object."""

    ts: Ints
    open: Floats
    high: Floats
    low: Floats
    close: Floats
    volume: Floats

    def __post_init__(self) -> None:
        # TA-Lib wants contiguous float64; a slice of one (tail) already is, so this copies nothing.
        object.__setattr__(self, "ts", np.ascontiguousarray(self.ts, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float64))
        n = len(self.ts)
        if self.ts.ndim != 1 or any(len(a) != n or a.ndim != 1 for a in self._prices()):
            raise ValueError("bars need one-dimensional arrays of one length")
        if n > 1 and not bool(np.all(self.ts[1:] > self.ts[:-1])):
            raise ValueError("bar times must increase strictly")

    @classmethod
    def of(cls, bars: Iterable[Bar]) -> Bars:
        """Arrays from the core's `Bar` records, oldest first."""
        rows = list(bars)
        return cls(ts=np.array([b.ts for b in rows], dtype=np.int64),
                   open=np.array([b.open for b in rows]), high=np.array([b.high for b in rows]),
                   low=np.array([b.low for b in rows]), close=np.array([b.close for b in rows]),
                   volume=np.array([b.volume for b in rows]))

    def __len__(self) -> int:
        return len(self.ts)

    def tail(self, n: int) -> Bars:
        """The latest `n` bars (views, no copy)."""
        return self._slice(slice(max(len(self) - n, 0), None) if n > 0 else slice(0, 0))

    def head(self, n: int) -> Bars:
        """The first `n` bars: the series as it stood when bar `n - 1` closed."""
        return self._slice(slice(0, max(n, 0)))

    def _slice(self, s: slice) -> Bars:
        return Bars(self.ts[s], self.open[s], self.high[s], self.low[s], self.close[s], self.volume[s])

    def _prices(self) -> tuple[Floats, ...]:
        return self.open, self.high, self.low, self.close, self.volume


def resample(bars: Bars, from_tf: str, to_tf: str) -> Bars:
    """Aggregate bars into a higher timeframe aligned to UTC boundaries (4h: 00:00, 04:00, ...).

    Only complete higher bars come out: the last group is dropped unless the data reaches its
    end (its last bar closes at the boundary). A group with missing bars inside still counts;
    a market that closes early (a stock's day in UTC) shows its day once the next day's bars
    exist, never before: the cost of never looking ahead.
    """
    src, dst = timeframe_seconds(from_tf), timeframe_seconds(to_tf)
    if dst < src or dst % src:
        raise ValueError(f"cannot resample {from_tf} bars to {to_tf}")
    if dst == src or not len(bars):
        return bars
    bucket = bars.ts // dst
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    if (int(bucket[-1]) + 1) * dst > int(bars.ts[-1]) + src:
        if len(starts) == 1:
            return bars.head(0)
        bars, bucket, starts = bars.head(int(starts[-1])), bucket[: starts[-1]], starts[:-1]
    ends = np.r_[starts[1:], len(bars)] - 1
    return Bars(ts=bucket[starts] * dst, open=bars.open[starts],
                high=np.maximum.reduceat(bars.high, starts), low=np.minimum.reduceat(bars.low, starts),
                close=bars.close[ends], volume=np.add.reduceat(bars.volume, starts))
