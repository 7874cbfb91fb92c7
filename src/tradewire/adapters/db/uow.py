"""The SQL unit of work: one connection, one transaction, every repository."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from tradewire.adapters.db import repositories as r
from tradewire.adapters.db.engine import Database
from tradewire.adapters.db.notification_repos import NotificationRepo


class SqlUnitOfWork:
    def __init__(self, db: Database, *, write: bool = True) -> None:
        self._db = db
        self._write = write
        self._lock: Any = None
        self.conn: Connection

    def __enter__(self) -> SqlUnitOfWork:
        if self._write:
            self._lock = self._db.writing()
            self._lock.__enter__()
        try:
            conn = self._db.engine.connect()
            self.conn = conn.execution_options(tw_write=self._write)
            self.conn.begin()
        except BaseException:
            self._release()
            raise
        c = self.conn
        self.users = r.UserRepo(c)
        self.accounts = r.AccountRepo(c)
        self.keys = r.ApiKeyRepo(c)
        self.signals = r.SignalRepo(c)
        self.orders = r.OrderRepo(c)
        self.fills = r.FillRepo(c)
        self.positions = r.PositionRepo(c)
        self.jobs = r.JobRepo(c)
        self.audit = r.AuditRepo(c)
        self.flags = r.FlagRepo(c)
        self.access_tokens = r.AccessTokenRepo(c)
        self.triggers = r.TriggerRepo(c)
        self.partners = r.PartnerRepo(c)
        self.timings = r.TimingRepo(c)
        self.market = r.MarketPriceRepo(c)
        self.channels = r.ChannelRepo(c)
        self.partner_signals = r.PartnerSignalRepo(c)
        self.exit_plans = r.ExitPlanRepo(c)
        self.bars = r.BarRepo(c)
        self.strategies = r.StrategyRepo(c)
        self.credentials = r.CredentialRepo(c)
        self.risk = r.RiskRepo(c)
        self.notifications = NotificationRepo(c)
        self.stats = r.StatsRepo(c)
        self.trigger_leases = r.TriggerLeaseRepo(c)
        return self

    def commit(self) -> None:
        self.conn.commit()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
            self.conn.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None


class SqlUnitOfWorkFactory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.db, write=write)
