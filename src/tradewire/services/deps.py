"""What every use case is handed: the ports, built once by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from tradewire.services.armed import ArmedExits
from tradewire.services.ports import (
    BarSource,
    Brokers,
    Clock,
    MarketCalendar,
    MarketPrices,
    Sealer,
    UnitOfWorkFactory,
)


@dataclass(frozen=True)
class Deps:
    uow: UnitOfWorkFactory
    clock: Clock
    brokers: Brokers
    prices: MarketPrices
    calendar: MarketCalendar
    bars: BarSource  # market data: the database first, then the configured outside sources
    # Wakes the worker when new work is stored (a no-op when no worker runs here).
    wake: Callable[[], None] = field(default=lambda: None)
    exits: ArmedExits = field(default_factory=ArmedExits)  # this process's trigger book
    # Called at named points; the reliability tests make it kill the process there.
    failpoint: Callable[[str], None] = field(default=lambda name: None)
    sealer: Sealer | None = None  # broker credentials; None: only keyless brokers (paper)
    # False in an API process of the scale-out mode: its ticks are evaluated by the workers
    # that hold the symbols' partitions (services/partitioned_exits.py), not here.
    exits_here: bool = True
    lease: timedelta = timedelta(seconds=30)
    worker_id: str = "local"
