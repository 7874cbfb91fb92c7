"""The trigger engine in scale-out mode: `tradewire worker` processes share the armed exits by
symbol partition, each partition leased to one worker at a time.

A worker renews its leases on every pass and takes free or lapsed ones up to its fair share,
so when a worker dies its partitions move to the others once its leases lapse. For the
partitions it holds, it follows the exit plans in the database (armed by whichever process
recorded the fill) and evaluates them against the last prices the API processes recorded.
Evaluation is exactly once whoever does it: a plan's orders and new state commit together
under its version (see exit_engine), so a partition evaluated twice during a hand-over still
fires once.

What it gives up against the single process: prices are read as the last price per symbol on
each pass (every `worker_poll_ms`, sooner when woken), so a price that crosses a level and
comes back between two passes is not seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tradewire.domain.partitions import PARTITIONS, partition_of, plan_leases
from tradewire.services import exit_engine
from tradewire.services.deps import Deps
from tradewire.services.exit_arming import arming_of
from tradewire.services.ports import Tick

LEASE = timedelta(seconds=10)
FULL_RELOAD = timedelta(seconds=10)  # a safety net under the incremental reloads
SLACK = timedelta(seconds=2)  # plans committed late with an earlier updated_at are read again


@dataclass
class WorkerTriggers:
    owned: frozenset[int] = frozenset()
    seen_prices: datetime | None = None
    reloaded_at: datetime | None = None
    full_at: datetime | None = None
    renewed_at: datetime | None = None
    takeovers: list[tuple[datetime, frozenset[int]]] = field(default_factory=list)

    def run(self, deps: Deps) -> int:
        """One pass: leases, book, prices. Returns the orders the exits produced."""
        now = deps.clock.now()
        owned = self._leases(deps, now)
        if owned != self.owned:
            self.owned = owned
            self.takeovers.append((now, owned))
            self.seen_prices = None  # a partition just taken: evaluate its current prices
            self.full_at = None
        self._reload(deps, now)
        with deps.uow(write=False) as uow:
            changed = uow.market.changed_since(self.seen_prices)
        ticks = [Tick(symbol, price, ts) for symbol, price, ts in changed
                 if partition_of(symbol) in self.owned]
        if changed:
            self.seen_prices = max(ts for _, _, ts in changed)
        return exit_engine.on_ticks(ticks, deps) if ticks else 0

    def release(self, deps: Deps) -> None:
        """On a clean stop: give the partitions back at once instead of letting them lapse."""
        with deps.uow() as uow:
            for p in self.owned:
                uow.trigger_leases.release(p, deps.worker_id)
            uow.commit()
        self.owned = frozenset()

    def _leases(self, deps: Deps, now: datetime) -> frozenset[int]:
        if self.renewed_at is not None and now - self.renewed_at < LEASE / 4 and self.owned:
            return self.owned  # renewed recently enough; spare the database a write per pass
        with deps.uow() as uow:
            keep, give = plan_leases(deps.worker_id, uow.trigger_leases.all(now), PARTITIONS)
            for p in give:
                uow.trigger_leases.release(p, deps.worker_id)
            held = frozenset(p for p in sorted(keep)
                             if uow.trigger_leases.take(p, deps.worker_id, now, now + LEASE))
            uow.commit()
        self.renewed_at = now
        return held

    def _reload(self, deps: Deps, now: datetime) -> None:
        full = self.full_at is None or now - self.full_at >= FULL_RELOAD
        with deps.uow(write=False) as uow:
            plans = (uow.exit_plans.armed() if full
                     else uow.exit_plans.changed_since((self.reloaded_at or now) - SLACK))
        if full:
            deps.exits.clear()
            self.full_at = now
        for p in plans:
            if partition_of(p.symbol) not in self.owned:
                continue
            deps.exits.arm(*arming_of(p))  # a plan that is done is disarmed
        self.reloaded_at = now
