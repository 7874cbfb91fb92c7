"""Bars from Alpaca's market data API through alpaca-py's historical clients: stocks need an
API key; crypto (a symbol with a slash, BTC/USD) is served with or without one."""

from __future__ import annotations

from datetime import datetime, timedelta

from alpaca.common.enums import Sort
from alpaca.data.enums import DataFeed
from alpaca.data.historical.crypto import CryptoHistoricalDataClient
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models import Bar as AlpacaBar
from alpaca.data.models import BarSet
from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from tradewire.adapters.brokers.alpaca import with_timeout
from tradewire.adapters.clock import SystemClock
from tradewire.domain.errors import Rejected
from tradewire.domain.market import TIMEFRAMES, Bar
from tradewire.domain.market import timeframe as canonical_timeframe
from tradewire.services.ports import Clock

ALPACA_TIMEFRAMES: dict[str, TimeFrame] = {
    "1m": TimeFrame(1, TimeFrameUnit.Minute), "5m": TimeFrame(5, TimeFrameUnit.Minute),
    "15m": TimeFrame(15, TimeFrameUnit.Minute), "30m": TimeFrame(30, TimeFrameUnit.Minute),
    "1h": TimeFrame(1, TimeFrameUnit.Hour), "4h": TimeFrame(4, TimeFrameUnit.Hour),
    "1d": TimeFrame(1, TimeFrameUnit.Day),
}
# How far back to ask so that `limit` bars are inside the window: stocks trade about 6.5 of 24
# hours on 5 of 7 days, so each bar of trading time spans up to ~5 of calendar time; holidays
# add days. Alpaca returns only the newest `limit` of them (sorted newest first), so a wide
# window costs nothing.
SPAN = 6
SLACK = timedelta(days=7)


class AlpacaBars:
    name = "alpaca"

    def __init__(self, key_id: str | None = None, secret_key: str | None = None,
                 base_url: str | None = None, *, feed: str = "iex", clock: Clock | None = None,
                 timeout: float = 10.0) -> None:
        self._clock = clock or SystemClock()
        self._feed = DataFeed(feed)  # iex is what a free account may read
        self._stocks = (StockHistoricalDataClient(key_id, secret_key, url_override=base_url)
                        if key_id and secret_key else None)
        self._crypto = CryptoHistoricalDataClient(key_id or None, secret_key or None,
                                                  url_override=base_url)
        for client in (self._stocks, self._crypto):
            if client is not None:
                with_timeout(client, timeout)

    def __repr__(self) -> str:
        return f"AlpacaBars(stocks={self._stocks is not None})"

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        """The newest `limit` closed bars starting before `end` (or now), oldest first."""
        tf = canonical_timeframe(timeframe)
        if limit <= 0:
            return []
        now = self._clock.now()
        until = min(end, now) if end is not None else now
        span = timedelta(seconds=TIMEFRAMES[tf]) * (limit + 2) * SPAN + SLACK
        # Two more than asked: the newest may still be forming, or start exactly at `end`.
        fields = {"symbol_or_symbols": symbol, "timeframe": ALPACA_TIMEFRAMES[tf],
                  "start": until - span, "end": until, "limit": limit + 2, "sort": Sort.DESC}
        rows = self._fetch(symbol, fields).data.get(symbol, [])
        closed = [to_bar(b) for b in rows
                  if b.timestamp < until
                  and b.timestamp + timedelta(seconds=TIMEFRAMES[tf]) <= now]
        return sorted(closed, key=lambda b: b.ts)[-limit:]

    def _fetch(self, symbol: str, fields: dict[str, object]) -> BarSet:
        if "/" in symbol:
            crypto: BarSet = self._crypto.get_crypto_bars(CryptoBarsRequest(**fields))
            return crypto
        if self._stocks is None:
            raise Rejected("alpaca stock bars need an API key (alpaca_key_id, alpaca_secret_key)",
                           code="BROKER_CREDENTIALS_MISSING")
        stocks: BarSet = self._stocks.get_stock_bars(StockBarsRequest(**fields, feed=self._feed))
        return stocks


def to_bar(b: AlpacaBar) -> Bar:
    return Bar(ts=int(b.timestamp.timestamp()), open=b.open, high=b.high, low=b.low,
               close=b.close, volume=b.volume)
