"""The armed exits of this process: a trigger book behind a lock (rebuilt from the database)."""

from __future__ import annotations

import threading
from decimal import Decimal

from tradewire.domain.trigger_book import TriggerBook


class ArmedExits:
    def __init__(self) -> None:
        self._book = TriggerBook()
        self._lock = threading.Lock()

    def arm(self, key: str, symbol: str, below: Decimal | None, above: Decimal | None) -> None:
        with self._lock:
            self._book.arm(key, symbol, below, above)

    def disarm(self, key: str) -> None:
        with self._lock:
            self._book.disarm(key)

    def fired(self, symbol: str, price: Decimal) -> list[str]:
        """Keys whose levels this price crossed; they are disarmed until re-armed."""
        with self._lock:
            return self._book.on_tick(symbol, price)

    def clear(self) -> None:
        with self._lock:
            self._book = TriggerBook()

    def __len__(self) -> int:
        with self._lock:
            return len(self._book)
