"""Engines for SQLite (WAL, synchronous=FULL on every connection) and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

_local = threading.local()


def normalize_url(url: str) -> str:
    """Accept plain `postgresql://` and pick the psycopg 3 driver."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@dataclass
class Database:
    engine: Engine
    # One writer at a time inside this process: cheaper than SQLite's busy-wait loop.
    write_lock: Any = field(default_factory=contextlib.nullcontext)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the in-process write lock; a second write on the same thread is a bug."""
        if getattr(_local, "writing", False):
            raise RuntimeError("nested write transaction (a broker call inside a transaction?)")
        with self.write_lock:
            _local.writing = True
            try:
                yield
            finally:
                _local.writing = False


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16,
        max_overflow=40,
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
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def connect(url: str) -> Database:
    """A Database for a SQLAlchemy URL (`sqlite:///path` or `postgresql://...`)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return Database(_sqlite_engine(url), write_lock=threading.Lock())
    # More connections than the API's 40 worker threads plus the worker loop, so a request
    # never waits on the pool while another holds a row lock it needs.
    engine = create_engine(url, pool_size=24, max_overflow=32, pool_pre_ping=True)
    return Database(engine)
