"""Engines for SQLite (WAL, synchronous=FULL on every connection) and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from tradewire.adapters.db import fast
from tradewire.adapters.db.group_commit import GroupCommit, WriteTurn

_local = threading.local()


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and pick the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass
class Database:
    engine: Engine
    # SQLite: the writers of this process share transactions and fsyncs (group_commit.py).
    group: GroupCommit | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Write alone, on a connection of one's own (migrations): no unit runs meanwhile and
        the group's open transaction is committed first."""
        enter_writer()
        try:
            if self.group is None:
                yield
                return
            self.group.acquire()
            try:
                self.group.flush_open()
                with self.group.turn():  # other processes' writers wait for it too
                    yield
            finally:
                self.group.release()
        finally:
            leave_writer()

    def write_unit(self, *, rides: bool = False) -> WriteUnit:
        """One unit of writes: `begin()`, then `commit()` (durable when it returns) or
        `close()` without it to roll back. With `rides`, the commit may be durable only with
        the next one that syncs: for writes a later durable commit always follows before
        anyone is told of them (GroupCommit.begin_unit; on PostgreSQL an asynchronous commit,
        whose WAL the next synchronous commit flushes with its own)."""
        if self.group is not None:
            return _GroupUnit(self.group, rides=rides)
        return _OwnUnit(self.engine, rides=rides)

    def close(self) -> None:
        if self.group is not None:
            self.group.close()
        self.engine.dispose()


def enter_writer() -> None:
    """This thread starts writing: a second write unit inside the first is refused (it would
    wait forever on the mutex its own thread holds)."""
    if getattr(_local, "writing", False):
        raise RuntimeError("nested write transaction (a broker call inside a transaction?)")
    _local.writing = True


def leave_writer() -> None:
    _local.writing = False


class WriteUnit(Protocol):
    def begin(self) -> Connection: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class _OwnUnit:
    """PostgreSQL: a connection and a transaction of the unit's own."""

    def __init__(self, engine: Engine, *, rides: bool = False) -> None:
        self._engine = engine
        self._rides = rides
        self._conn: Connection | None = None

    def begin(self) -> Connection:
        enter_writer()
        try:
            conn = self._engine.connect().execution_options(tw_write=True)
            conn.begin()
        except BaseException:
            leave_writer()
            raise
        self._conn = conn
        return conn

    def commit(self) -> None:
        assert self._conn is not None
        if self._rides:
            fast.driver_sql(self._conn, "SET LOCAL synchronous_commit TO OFF")
        self._conn.commit()

    def close(self) -> None:
        try:
            if self._conn is not None:
                if self._conn.in_transaction():
                    self._conn.rollback()
                self._conn.close()
        finally:
            self._conn = None
            leave_writer()


class _GroupUnit:
    """SQLite: a savepoint in the group's shared transaction."""

    def __init__(self, group: GroupCommit, *, rides: bool = False) -> None:
        self._group = group
        self._rides = rides
        self._open = False

    def begin(self) -> Connection:
        enter_writer()
        try:
            self._group.acquire()
        except BaseException:
            leave_writer()
            raise
        try:
            conn = self._group.begin_unit(rides=self._rides)
        except BaseException:
            self._group.release()
            leave_writer()
            raise
        self._open = True
        return conn

    def commit(self) -> None:
        if not self._open:
            raise RuntimeError("commit of a write unit that is not open")
        self._open = False
        try:
            batch = self._group.end_unit(commit=True)
        finally:
            self._group.release()
            leave_writer()
        if batch is not None:
            self._group.wait(batch)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            self._group.end_unit(commit=False)
        finally:
            self._group.release()
            leave_writer()


def _json_text(value: Any) -> str:
    """A JSON column's text, by orjson: about a tenth of the standard library's cost, a
    `pending` signal's unit 174-179 -> 150-157 us (its metadata, legs, exit rule and audit
    payload). Keys that are not strings become strings, as the standard library makes them."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16,
        max_overflow=40, json_serializer=_json_text,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # tradewire issues BEGIN itself, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A writer takes the write lock at BEGIN, so two writers never deadlock on upgrade.
        writes = conn.get_execution_options().get("tw_write", True)
        fast.driver_sql(conn, "BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def connect(url: str) -> Database:
    """A Database for a SQLAlchemy URL (`sqlite:///path` or `postgresql://...`)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url)
        path = make_url(url).database
        turn = WriteTurn(path + ".write-turn") if path and path != ":memory:" else None
        return Database(engine, GroupCommit(engine, turn=turn))
    # More connections than the API's 40 worker threads plus the worker loop, so a request
    # never waits on the pool while another holds a row lock it needs.
    engine = create_engine(url, pool_size=24, max_overflow=32, pool_pre_ping=True,
                           json_serializer=_json_text)
    return Database(engine)
