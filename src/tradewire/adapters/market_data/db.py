"""Bars stored in tradewire's database (uploaded, imported, or the samples)."""

from __future__ import annotations

from datetime import datetime

from tradewire.domain.market import Bar
from tradewire.services.ports import UnitOfWorkFactory


class DbBars:
    name = "db"

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        with self._uow(write=False) as uow:
            rows: list[Bar] = uow.bars.latest(symbol, timeframe, limit,
                                              before=int(end.timestamp()) if end else None)
            return rows
