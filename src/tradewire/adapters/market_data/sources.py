"""Several bar sources behind the one port, asked in order: the first that has the bars
answers. A source that fails (no network, a bad key) is logged and skipped, so evaluation
still runs on what the others have."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from tradewire.domain.market import Bar
from tradewire.services.ports import BarSource

log = logging.getLogger(__name__)


class BarSources:
    name = "sources"

    def __init__(self, sources: Sequence[BarSource]) -> None:
        self.sources = list(sources)

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        for source in self.sources:
            try:
                rows = source.bars(symbol, timeframe, limit, end)
            except Exception as exc:  # one source down must not stop the others
                log.warning("bar source %s failed for %s %s: %s: %s", source.name, symbol,
                            timeframe, type(exc).__name__, str(exc)[:200])
                continue
            if rows:
                return rows
        return []
