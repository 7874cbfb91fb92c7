"""The composition root: settings in, a wired container of adapters and services out."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tradewire.adapters.brokers.paper import PaperBroker
from tradewire.adapters.brokers.registry import BrokerRegistry
from tradewire.adapters.calendars import ExchangeCalendars
from tradewire.adapters.clock import SystemClock
from tradewire.adapters.db import migrate
from tradewire.adapters.db.engine import Database, connect
from tradewire.adapters.db.notify import PgNotifier, is_postgres
from tradewire.adapters.db.uow import SqlUnitOfWorkFactory
from tradewire.adapters.db.writer import BatchWriter
from tradewire.adapters.market_data.csv_folder import CsvFolderBars
from tradewire.adapters.market_data.db import DbBars
from tradewire.adapters.market_data.sources import BarSources
from tradewire.adapters.market_prices import DbMarketPrices
from tradewire.adapters.security import CredentialSealer, SecretBox
from tradewire.config import MarketDataSettings, Settings
from tradewire.domain.matching import FillModel
from tradewire.services.credentials import CredentialSource
from tradewire.services.deps import Deps
from tradewire.services.exit_engine import load_armed
from tradewire.services.ports import BarSource, Clock, UnitOfWorkFactory


@dataclass
class Container:
    settings: Settings
    db: Database
    deps: Deps
    secrets: SecretBox
    paper: PaperBroker
    wake_event: threading.Event = field(default_factory=threading.Event)
    role: str = "all"
    limiter: Any = None  # the API's rate limiter per credential (set by create_app)
    # Write units handed over from the event loop, many to a commit (adapters/db/writer.py).
    writer: BatchWriter | None = None
    # The writer process's client (entrypoints/api/writer_process.py), when serving with one.
    writer_process: Any = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.db.close()


def _no_wake() -> None:
    return None


def _failpoints(names: str) -> Callable[[str], None]:
    armed = {n.strip() for n in names.split(",") if n.strip()}

    def failpoint(name: str) -> None:
        if name in armed:
            os._exit(137)  # as abrupt as SIGKILL: no cleanup, no flush

    return failpoint


def bar_sources(settings: MarketDataSettings, uow: UnitOfWorkFactory) -> BarSource:
    """The configured bar sources, asked in order (the database alone by default). The
    outside ones load their SDKs only when configured."""
    sources: list[BarSource] = []
    for kind, arg in settings.source_list():
        if kind == "db":
            sources.append(DbBars(uow))
        elif kind == "csv":
            sources.append(CsvFolderBars(Path(arg)))
        elif kind == "ccxt":
            from tradewire.adapters.market_data.ccxt import CcxtBars
            sources.append(CcxtBars(arg, base_url=settings.ccxt_base_url))
        elif kind == "alpaca":
            from tradewire.adapters.market_data.alpaca import AlpacaBars
            sources.append(AlpacaBars(
                key_id=_plain(settings.alpaca_key_id), secret_key=_plain(settings.alpaca_secret_key),
                base_url=settings.alpaca_base_url))
        else:
            raise ValueError(f"unknown market data source {kind!r} (db, csv:FOLDER, "
                             "ccxt:EXCHANGE, alpaca)")
    return BarSources(sources)


def _plain(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def build(settings: Settings, *, clock: Clock | None = None, migrate_db: bool = True,
          worker_id: str = "local", role: str = "all") -> Container:
    """`role`: "all" (one process: API, worker and trigger book together), "api" (scale-out:
    wakes the workers over LISTEN/NOTIFY, leaves exits to them) or "worker"."""
    clock = clock or SystemClock()
    db = connect(settings.resolved_database_url())
    if migrate_db:
        migrate.upgrade(db)
    calendar = ExchangeCalendars()
    paper = PaperBroker(db, clock, calendar, FillModel(fee_bps=settings.paper.fee_bps,
                                             slippage_bps=settings.paper.slippage_bps),
                        native_exits=settings.paper.native_exits)
    wake_event = threading.Event()
    wake: Callable[[], None] = wake_event.set
    if role == "api" and is_postgres(db):
        wake = PgNotifier(db)
    elif role == "api":
        wake = _no_wake  # SQLite: the workers' poll finds the work
    uow = SqlUnitOfWorkFactory(db)
    sealer = CredentialSealer(settings.resolved_credential_keys())
    brokers = BrokerRegistry(paper, CredentialSource(uow, sealer))
    deps = Deps(uow=uow, clock=clock, brokers=brokers, prices=DbMarketPrices(db),
                calendar=calendar, bars=bar_sources(settings.market_data, uow),
                wake=wake, worker_id=worker_id, failpoint=_failpoints(settings.failpoints),
                sealer=sealer, exits_here=role == "all")
    if migrate_db and role == "all":
        load_armed(deps)
    return Container(settings=settings, db=db, deps=deps,
                     secrets=SecretBox(settings.resolved_secret_key(),
                                       **settings.password_hash.model_dump()),
                     paper=paper,
                     wake_event=wake_event, role=role,
                     writer=BatchWriter(db) if role != "worker" else None)
