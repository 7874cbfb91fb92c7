"""What the metrics endpoint reports from the database and the trigger book, read when it is
scraped (the counters of requests live in the API layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tradewire.services.deps import Deps

RECENT = 1000  # signals the stage latencies are measured over
STAGES = (("decide", 0, 1), ("submit", 1, 2), ("acknowledge", 2, 3), ("total", 0, 3))


@dataclass(frozen=True)
class Snapshot:
    orders: list[tuple[str, str, int]]  # (broker, status, count)
    scheduler_lag_s: float  # how late the oldest due job is (0: none waiting)
    armed_exits: int
    stage_quantiles: dict[tuple[str, str], float]  # (stage, quantile) → seconds


def snapshot(deps: Deps) -> Snapshot:
    now = deps.clock.now()
    with deps.uow(write=False) as uow:
        orders = uow.stats.orders_by_broker_status()
        oldest = uow.stats.oldest_due_job(now)
        timings = uow.stats.recent_timings(RECENT)
    return Snapshot(orders=orders,
                    scheduler_lag_s=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
                    armed_exits=len(deps.exits), stage_quantiles=_quantiles(timings))


def _quantiles(rows: list[tuple[datetime | None, ...]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for stage, a, b in STAGES:
        spans = sorted((r[b] - r[a]).total_seconds() for r in rows  # type: ignore[operator]
                       if r[a] is not None and r[b] is not None)
        if not spans:
            continue
        for q in (0.5, 0.9, 0.99):
            out[(stage, str(q))] = spans[min(len(spans) - 1, int(q * len(spans)))]
    return out
