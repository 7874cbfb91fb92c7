"""The composition root: settings in, a wired container of adapters and services out."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tradewire.adapters.brokers.paper import PaperBroker
from tradewire.adapters.brokers.registry import BrokerRegistry
from tradewire.adapters.calendars import ExchangeCalendars
from tradewire.adapters.clock import SystemClock
from tradewire.adapters.db import migrate
from tradewire.adapters.db.engine import Database, connect
from tradewire.adapters.db.uow import SqlUnitOfWorkFactory
from tradewire.adapters.market_prices import DbMarketPrices
from tradewire.adapters.security import SecretBox
from tradewire.config import Settings
from tradewire.domain.matching import FillModel
from tradewire.services.deps import Deps
from tradewire.services.exit_engine import load_armed
from tradewire.services.ports import Clock


@dataclass
class Container:
    settings: Settings
    db: Database
    deps: Deps
    secrets: SecretBox
    paper: PaperBroker
    wake_event: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self.db.engine.dispose()


def _failpoints(names: str) -> Callable[[str], None]:
    armed = {n.strip() for n in names.split(",") if n.strip()}

    def failpoint(name: str) -> None:
        if name in armed:
            os._exit(137)  # as abrupt as SIGKILL: no cleanup, no flush

    return failpoint


def build(settings: Settings, *, clock: Clock | None = None, migrate_db: bool = True,
          worker_id: str = "local") -> Container:
    clock = clock or SystemClock()
    db = connect(settings.resolved_database_url())
    if migrate_db:
        migrate.upgrade(db)
    calendar = ExchangeCalendars()
    paper = PaperBroker(db, clock, calendar, FillModel(fee_bps=settings.paper.fee_bps,
                                             slippage_bps=settings.paper.slippage_bps))
    wake_event = threading.Event()
    deps = Deps(uow=SqlUnitOfWorkFactory(db), clock=clock, brokers=BrokerRegistry(paper),
                prices=DbMarketPrices(db), calendar=calendar, wake=wake_event.set,
                worker_id=worker_id, failpoint=_failpoints(settings.failpoints))
    if migrate_db:
        load_armed(deps)
    return Container(settings=settings, db=db, deps=deps,
                     secrets=SecretBox(settings.resolved_secret_key()), paper=paper,
                     wake_event=wake_event)
