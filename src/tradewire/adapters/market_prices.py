"""Last known price per symbol, kept in the database (every process sees the same price)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import update

from tradewire.adapters.db import tables as t
from tradewire.adapters.db.engine import Database
from tradewire.adapters.db.repositories import insert_ignore, last_price
from tradewire.services.ports import Tick


class DbMarketPrices:
    def __init__(self, db: Database) -> None:
        self._db = db

    def last_price(self, symbol: str) -> Decimal | None:
        with self._db.engine.connect().execution_options(tw_write=False) as conn:
            return last_price(conn, symbol)

    def record(self, ticks: Sequence[Tick]) -> None:
        latest: dict[str, Tick] = {}
        for tick in ticks:
            if tick.symbol not in latest or tick.ts >= latest[tick.symbol].ts:
                latest[tick.symbol] = tick
        unit = self._db.write_unit()
        conn = unit.begin()
        try:
            for tick in latest.values():
                row = {"symbol": tick.symbol, "price": tick.price, "ts": tick.ts}
                if not insert_ignore(conn, t.market_prices, row):
                    conn.execute(update(t.market_prices)
                                 .where(t.market_prices.c.symbol == tick.symbol)
                                 .values(price=tick.price, ts=tick.ts))
            unit.commit()
        finally:
            unit.close()
