"""Bars from a folder of CSV files, one per symbol and timeframe.

A symbol's file is found under any of these names (BTC/USD shown; `1d` the timeframe):
`BTCUSD_1d.csv`, `BTC-USD_1d.csv`, `BTC_USD_1d.csv`, or `BTCUSD/1d.csv` and the like. The
columns are those `tradewire bars import` reads. A file is parsed again only when it changes."""

from __future__ import annotations

import threading
from bisect import bisect_left
from datetime import datetime
from pathlib import Path

from tradewire.adapters.formats.bars import parse_csv
from tradewire.domain.market import Bar


def _names(symbol: str) -> list[str]:
    upper = symbol.strip().upper()
    return list(dict.fromkeys(upper.replace("/", sep).replace("-", sep).replace("_", sep)
                              for sep in ("", "-", "_")))


class CsvFolderBars:
    name = "csv"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[Path, tuple[float, list[Bar]]] = {}
        self._lock = threading.Lock()

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        path = self._find(symbol, timeframe)
        if path is None:
            return []
        rows = self._read(path)
        stop = bisect_left([b.ts for b in rows], int(end.timestamp())) if end else len(rows)
        return rows[max(0, stop - limit):stop]

    def _find(self, symbol: str, timeframe: str) -> Path | None:
        for name in _names(symbol):
            for candidate in (self.folder / f"{name}_{timeframe}.csv",
                              self.folder / name / f"{timeframe}.csv"):
                if candidate.is_file():
                    return candidate
        return None

    def _read(self, path: Path) -> list[Bar]:
        mtime = path.stat().st_mtime
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        rows = sorted(parse_csv(path.read_text()), key=lambda b: b.ts)
        with self._lock:
            self._cache[path] = (mtime, rows)
        return rows
