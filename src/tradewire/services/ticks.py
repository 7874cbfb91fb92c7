"""Use case: prices in. They reach the paper broker's book and every armed exit plan."""

from __future__ import annotations

from collections.abc import Sequence

from tradewire.services import exit_engine
from tradewire.services.deps import Deps
from tradewire.services.ports import Tick
from tradewire.services.submit import record_reports


def apply_ticks(ticks: Sequence[Tick], deps: Deps) -> int:
    """Record prices; let price-driven brokers match on them; record their fills."""
    deps.prices.record(ticks)
    reports = [r for broker in deps.brokers.price_driven() for r in broker.on_ticks(ticks)]
    if reports:
        record_reports(reports, deps)
    if not deps.exits_here:
        deps.wake()  # the workers holding these symbols evaluate their exits
        return len(reports)
    return len(reports) + exit_engine.on_ticks(ticks, deps)

