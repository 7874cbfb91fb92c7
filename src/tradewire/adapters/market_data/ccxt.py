"""CCXT's public side: an exchange client pointed where the settings say, market symbols, and
OHLCV bars behind the BarSource port (public data: no keys needed).

Symbols: a bare name (`BTC`) is that asset against the default quote (`BTC/USDT`); a market id
(`BTCUSDT`) or a ccxt symbol (`ETH/BTC`) is taken as it is. Reported back, a market in the
default quote is its bare base again, so tradewire's `AAPL` stays `AAPL` both ways.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import ccxt

from tradewire.adapters.clock import SystemClock
from tradewire.domain.market import TIMEFRAMES, Bar
from tradewire.domain.market import timeframe as canonical_timeframe
from tradewire.services.ports import Clock

DEFAULT_QUOTE = "USDT"
# Keep ccxt on the spot REST API: loading markets must not call wallet (sapi) or futures
# endpoints, which need other permissions and other hosts.
SPOT_OPTIONS: dict[str, Any] = {"defaultType": "spot", "fetchCurrencies": False,
                                "fetchMargins": False, "warnOnFetchOpenOrdersWithoutSymbol": False}
EXCHANGE_OPTIONS: dict[str, dict[str, Any]] = {"binance": {"fetchMarkets": {"types": ["spot"]}}}
_SIGNED = re.compile(r"(signature|apiKey|api_key|passphrase)=[^&\s'\"]*", re.IGNORECASE)
log = logging.getLogger(__name__)


class RedactingLog:
    """The logger handed to ccxt: its debug lines carry request headers (the API key) and signed
    query strings, so known secrets and signatures are blanked before anything is logged."""

    def __init__(self, logger: logging.Logger, secrets: Iterable[str] = ()) -> None:
        self._logger = logger
        self._secrets = tuple(s for s in secrets if s)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _SIGNED.sub(r"\1=***", text)

    def _emit(self, level: int, msg: object, *args: object) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, "%s", self.scrub(str(msg) % args if args else str(msg)))

    def debug(self, msg: object, *args: object) -> None:
        self._emit(logging.DEBUG, msg, *args)

    def info(self, msg: object, *args: object) -> None:
        self._emit(logging.INFO, msg, *args)

    def warning(self, msg: object, *args: object) -> None:
        self._emit(logging.WARNING, msg, *args)

    def error(self, msg: object, *args: object) -> None:
        self._emit(logging.ERROR, msg, *args)

    def __repr__(self) -> str:
        return f"RedactingLog({self._logger.name})"


def make_exchange(exchange_id: str, *, base_url: str | None = None, sandbox: bool = False,
                  timeout_s: float = 10.0, rate_limit_ms: int | None = None,
                  credentials: Mapping[str, Any] | None = None, exact: bool = False,
                  pro: bool = False, stream_url: str | None = None) -> Any:
    """A ccxt client of `exchange_id` (spot), in the exchange's sandbox when asked, and with
    every API address moved to `base_url` when given (a fake exchange in tests). `exact`:
    numbers come back as the exchange's decimal strings instead of floats. `pro`: ccxt.pro's
    asyncio client (websocket streams), its websocket addresses moved to `stream_url`, or
    else to `base_url`'s host with a ws scheme, when either is given."""
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"ccxt knows no exchange {exchange_id!r}")
    keys = {k: str(credentials[k]) for k in ("apiKey", "secret", "password", "uid")
            if credentials and credentials.get(k)}
    config: dict[str, Any] = {
        "enableRateLimit": True, "timeout": int(timeout_s * 1000),
        "options": {**SPOT_OPTIONS, **EXCHANGE_OPTIONS.get(exchange_id, {})},
        "logger": RedactingLog(logging.getLogger("tradewire.ccxt.wire"), keys.values()), **keys,
    }
    if rate_limit_ms is not None:
        config["rateLimit"] = rate_limit_ms
    if exact:
        config["number"] = str  # ccxt's own switch: prices, amounts and fees as strings
    if pro:
        # ccxt.pro (asyncio, aiohttp) loads only where a stream is followed
        exchange = getattr(importlib.import_module("ccxt.pro"), exchange_id)(config)
    else:
        exchange = getattr(ccxt, exchange_id)(config)
    if sandbox:
        exchange.set_sandbox_mode(True)
    if base_url:
        exchange.urls["api"] = _moved(exchange.urls["api"], base_url.rstrip("/"))
    ws_base = stream_url or (re.sub(r"^http", "ws", base_url) if base_url else None)
    if pro and ws_base and isinstance(exchange.urls["api"], dict) and "ws" in exchange.urls["api"]:
        exchange.urls["api"]["ws"] = _moved(exchange.urls["api"]["ws"], ws_base.rstrip("/"))
    return exchange


def _moved(urls: Any, base_url: str) -> Any:
    """The exchange's API addresses with scheme and host replaced (paths kept)."""
    if isinstance(urls, str):
        return base_url + urlsplit(urls).path
    if isinstance(urls, dict):
        return {name: _moved(url, base_url) for name, url in urls.items()}
    return urls


def market_symbol(exchange: Any, symbol: str, quote: str) -> str:
    """The ccxt symbol tradewire's `symbol` names (see the module docstring)."""
    name = symbol.strip()
    if "/" in name:
        return name.upper()
    by_id = exchange.markets_by_id or {}
    for candidate in (name, name.upper(), name.lower()):
        if by_id.get(candidate):
            return str(by_id[candidate][0]["symbol"])
    return f"{name.upper()}/{quote}"


def display_symbol(ccxt_symbol: str, quote: str) -> str:
    """tradewire's name for a ccxt symbol: the bare base when quoted in the default quote."""
    base, _, rest = ccxt_symbol.partition("/")
    return base if rest == quote else ccxt_symbol


class CcxtBars:
    """Closed OHLCV bars of an exchange's spot markets, oldest first."""

    def __init__(self, exchange_id: str, *, base_url: str | None = None, sandbox: bool = False,
                 quote: str = DEFAULT_QUOTE, clock: Clock | None = None, timeout_s: float = 10.0,
                 rate_limit_ms: int | None = None) -> None:
        self.name = f"ccxt:{exchange_id}"
        self._exchange = make_exchange(exchange_id, base_url=base_url, sandbox=sandbox,
                                       timeout_s=timeout_s, rate_limit_ms=rate_limit_ms)
        self._quote = quote
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        tf = canonical_timeframe(timeframe)
        with self._lock:
            self._exchange.load_markets()
        market = market_symbol(self._exchange, symbol, self._quote)
        if limit <= 0 or market not in self._exchange.markets or tf not in self._exchange.timeframes:
            return []
        width = TIMEFRAMES[tf]
        now = int(self._clock.now().timestamp())
        stop = min(now, int(end.timestamp())) if end is not None else now
        # One more than asked: the newest candle may still be forming and is dropped below.
        rows = self._fetch(market, tf, limit + 1, stop * 1000 - 1)
        closed = [r for r in rows if r[0] // 1000 + width <= now
                  and (end is None or r[0] // 1000 < end.timestamp())]
        return [_bar(r) for r in closed[-limit:]]

    def _fetch(self, market: str, tf: str, wanted: int, until_ms: int) -> list[list[Any]]:
        """Up to `wanted` candles opening at or before `until_ms`, paging back in time."""
        page = int((self._exchange.features.get("spot", {}).get("fetchOHLCV") or {}).get("limit")
                   or 500)
        found: dict[int, list[Any]] = {}
        while len(found) < wanted:
            asked = min(page, wanted - len(found))
            batch = self._exchange.fetch_ohlcv(market, tf, None, asked, {"until": until_ms})
            fresh = [r for r in batch if r[0] <= until_ms and r[0] not in found]
            found.update((int(r[0]), r) for r in fresh)
            if len(batch) < asked or not fresh:
                break
            until_ms = min(int(r[0]) for r in fresh) - 1
        return [found[k] for k in sorted(found)]


def _bar(row: list[Any]) -> Bar:
    return Bar(ts=int(row[0]) // 1000, open=float(row[1]), high=float(row[2]), low=float(row[3]),
               close=float(row[4]), volume=float(row[5] or 0))
