"""The SQL unit of work: one connection, one transaction, every repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from tradewire.adapters.db import repositories as r
from tradewire.adapters.db.engine import Database, WriteUnit
from tradewire.adapters.db.notification_repos import NotificationRepo

# Every repository, built on first use: most units touch three or four of them.
_REPOS: dict[str, Callable[[Connection], Any]] = {
    "users": r.UserRepo, "accounts": r.AccountRepo, "keys": r.ApiKeyRepo,
    "signals": r.SignalRepo, "orders": r.OrderRepo, "fills": r.FillRepo,
    "positions": r.PositionRepo, "jobs": r.JobRepo, "audit": r.AuditRepo, "flags": r.FlagRepo,
    "access_tokens": r.AccessTokenRepo, "triggers": r.TriggerRepo, "partners": r.PartnerRepo,
    "timings": r.TimingRepo, "market": r.MarketPriceRepo, "channels": r.ChannelRepo,
    "partner_signals": r.PartnerSignalRepo, "exit_plans": r.ExitPlanRepo, "bars": r.BarRepo,
    "strategies": r.StrategyRepo, "credentials": r.CredentialRepo, "risk": r.RiskRepo,
    "notifications": NotificationRepo, "stats": r.StatsRepo,
    "trigger_leases": r.TriggerLeaseRepo,
}


class SqlUnitOfWork:
    def __init__(self, db: Database, *, write: bool = True) -> None:
        self._db = db
        self._write = write
        self._unit: WriteUnit | None = None
        self._bound = False
        self.conn: Connection

    @classmethod
    def on(cls, db: Database, conn: Connection) -> SqlUnitOfWork:
        """The repositories over a write unit someone else opened and will commit (the batch
        writer): used without `with`, and `commit()` is refused."""
        uow = cls(db)
        uow.conn = conn
        uow._bound = True
        return uow

    def __enter__(self) -> SqlUnitOfWork:
        if self._write:
            self._unit = self._db.write_unit()
            self.conn = self._unit.begin()
        else:
            self.conn = self._db.engine.connect().execution_options(tw_write=False)
            self.conn.begin()
        return self

    def __getattr__(self, name: str) -> Any:
        factory = _REPOS.get(name)
        if factory is None or "conn" not in self.__dict__:
            raise AttributeError(name)
        repo = factory(self.conn)
        setattr(self, name, repo)
        return repo

    def commit(self) -> None:
        """Durable when it returns. The unit is over then: read or write in a new one."""
        if self._bound:
            raise RuntimeError("this unit is committed by its writer, with its batch")
        if self._unit is not None:
            self._unit.commit()
        else:
            self.conn.commit()

    def __exit__(self, *exc: object) -> None:
        if self._unit is not None:
            self._unit.close()
            return
        if self.conn.in_transaction():
            self.conn.rollback()
        self.conn.close()


class SqlUnitOfWorkFactory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, write=write)
