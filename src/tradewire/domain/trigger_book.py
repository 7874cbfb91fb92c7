"""Armed price triggers, ordered by level per symbol: a tick that crosses nothing costs two
comparisons, one that fires O(log n + fired).

Each side of a symbol keeps its distinct levels in one sorted list, with the keys waiting on
each level beside it (a signal copied to many subscribers arms many keys on one level). The
levels are stored so that the ones a tick crosses are always the list's tail: `below` levels
as they are (crossed when level >= price), `above` levels negated (crossed when -level >=
-price). A tick compares its price with each side's last level, and only when that one is
crossed bisects for the rest and cuts the tail. Not thread-safe: the caller serialises.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(slots=True)
class _Side:
    """One side of one symbol: distinct levels ascending, and the keys on each, in arming order."""

    levels: list[Decimal] = field(default_factory=list)
    keys: dict[Decimal, dict[str, None]] = field(default_factory=dict)

    def add(self, level: Decimal, key: str) -> None:
        keys = self.keys.get(level)
        if keys is None:
            insort(self.levels, level)
            self.keys[level] = {key: None}
        else:
            keys[key] = None

    def remove(self, level: Decimal, key: str) -> None:
        keys = self.keys[level]
        del keys[key]
        if not keys:
            del self.keys[level]
            del self.levels[bisect_left(self.levels, level)]

    def cut(self, level: Decimal) -> list[str]:
        """Take off and return the keys at `level` or above (the list's tail)."""
        levels = self.levels
        if not levels or levels[-1] < level:
            return []  # not even the highest level is crossed: one comparison, however many
        start = bisect_left(levels, level)
        fired = [key for crossed in levels[start:] for key in self.keys.pop(crossed)]
        del levels[start:]
        return fired


@dataclass(slots=True)
class _Sides:
    below: _Side = field(default_factory=_Side)
    above: _Side = field(default_factory=_Side)  # levels negated


@dataclass(frozen=True, slots=True)
class _Armed:
    symbol: str
    below: Decimal | None
    above: Decimal | None


class TriggerBook:
    """Keys waiting for a symbol's price to fall to `below` or rise to `above`."""

    def __init__(self) -> None:
        self._armed: dict[str, _Armed] = {}
        self._symbols: dict[str, _Sides] = {}

    def __len__(self) -> int:
        return len(self._armed)

    def arm(self, key: str, symbol: str, below: Decimal | None, above: Decimal | None) -> None:
        """Wait for price <= below or price >= above, replacing any earlier arming of `key`.
        With neither level there is nothing to wait for and the key is left disarmed."""
        self.disarm(key)
        if below is None and above is None:
            return
        sides = self._symbols.setdefault(symbol, _Sides())
        if below is not None:
            sides.below.add(below, key)
        if above is not None:
            sides.above.add(-above, key)
        self._armed[key] = _Armed(symbol, below, above)

    def disarm(self, key: str) -> None:
        """Forget `key`; an unknown key is no error."""
        armed = self._armed.pop(key, None)
        if armed is None:
            return
        sides = self._symbols[armed.symbol]
        if armed.below is not None:
            sides.below.remove(armed.below, key)
        if armed.above is not None:
            sides.above.remove(-armed.above, key)

    def on_tick(self, symbol: str, price: Decimal) -> list[str]:
        """The keys this price crosses (below >= price or above <= price), now disarmed; the
        caller evaluates them and arms them again with their new levels. In no set order."""
        sides = self._symbols.get(symbol)
        if sides is None:
            return []
        fired = sides.below.cut(price) + sides.above.cut(-price)
        keys = []
        for key in fired:
            armed = self._armed.pop(key, None)
            if armed is None:
                continue  # crossed on both sides by one price: already taken off
            keys.append(key)
            # Its level on the side that did not fire is still listed: take it off too.
            if armed.below is not None and armed.below < price:
                sides.below.remove(armed.below, key)
            if armed.above is not None and armed.above > price:
                sides.above.remove(-armed.above, key)
        return keys

