"""Market data as the core sees it: bars and their timeframes."""

from __future__ import annotations

from dataclasses import dataclass

from tradewire.domain.errors import Rejected

TIMEFRAMES: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600,
                              "4h": 14_400, "1d": 86_400}


def timeframe(name: str) -> str:
    """The canonical spelling of a timeframe (`1D` is `1d`), or Rejected."""
    canonical = name.strip().lower() if name.strip().lower() == "1d" else name.strip()
    if canonical not in TIMEFRAMES:
        raise Rejected(f"unknown timeframe {name!r}; use one of {', '.join(TIMEFRAMES)}",
                       code="BAD_TIMEFRAME")
    return canonical


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar starting at `ts` (epoch seconds, UTC). Prices are doubles: market data
    for indicators, not money."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    def problem(self) -> str | None:
        if min(self.open, self.high, self.low, self.close) <= 0 or self.volume < 0:
            return "prices must be positive and volume not negative"
        if not (self.low <= min(self.open, self.close) and self.high >= max(self.open, self.close)):
            return "high and low must contain open and close"
        return None
