"""Symbol partitions of the trigger engine, and the fair share of them a worker holds."""

from __future__ import annotations

import math
import zlib

PARTITIONS = 16


def partition_of(symbol: str) -> int:
    """Stable across processes and restarts (not Python's salted hash)."""
    return zlib.crc32(symbol.encode()) % PARTITIONS


def fair_share(live_workers: int, partitions: int = PARTITIONS) -> int:
    return math.ceil(partitions / max(1, live_workers))


def plan_leases(me: str, leases: dict[int, tuple[str | None, bool]],
                partitions: int = PARTITIONS) -> tuple[set[int], set[int]]:
    """Given each partition's (owner, lease still valid), what `me` keeps or takes and what it
    gives back so every live worker ends with its fair share."""
    live = {owner for owner, valid in leases.values() if owner and valid} | {me}
    share = fair_share(len(live), partitions)
    mine = sorted(p for p, (owner, valid) in leases.items() if owner == me and valid)
    free = sorted(p for p in range(partitions)
                  if p not in leases or not leases[p][1] or leases[p][0] is None)
    keep = set(mine[:share])
    give = set(mine[share:])
    for p in free:
        if len(keep) >= share:
            break
        keep.add(p)
    return keep, give
