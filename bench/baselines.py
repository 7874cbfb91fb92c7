"""Baseline servers for the ingest benchmark, run as `uvicorn bench.baselines:<app>`.

All take the same JSON body as POST /api/v1/signals and validate it with pydantic. `durable`
is the shape most projects have: a sync route committing one row per request to SQLite (WAL,
synchronous=FULL, one connection per thread). `ceiling` writes nothing and answers on the event
loop, the most FastAPI + pydantic can do here; `ceiling_sync` is the durable route without its
write. The database file comes from the BENCH_DB environment variable. `durable_pg` is the
durable route on PostgreSQL (one connection per thread, one committed INSERT per request, the
server's synchronous_commit as it is); its libpq URL comes from BENCH_PG_URL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

import psycopg
from fastapi import FastAPI
from pydantic import BaseModel, Field

_SCHEMA = """CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
    quantity TEXT NOT NULL, execute_mode TEXT NOT NULL, source_id TEXT, created_at TEXT NOT NULL,
    UNIQUE (account_id, source_id))"""
_INSERT = "INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_PG = "INSERT INTO signals VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
_local = threading.local()


class SignalIn(BaseModel):
    """The fields of the tradewire signal body that the benchmark sends."""

    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9./:_-]+$")
    action: Literal["openLong", "closeLong", "openShort", "closeShort"]
    accountId: uuid.UUID
    quantity: Annotated[Decimal, Field(gt=0, lt=Decimal("1e12"), allow_inf_nan=False)]
    executeMode: Literal["immediate", "pending", "scheduled"]
    sourceId: str | None = Field(default=None, min_length=1, max_length=255)


def _connection() -> sqlite3.Connection:
    """This thread's connection, opened on first use with the durable settings."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        # timeout=30: the usual answer to "database is locked"; contention waits instead of failing.
        conn = sqlite3.connect(os.environ["BENCH_DB"], timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        _local.conn = conn
    return conn


@contextlib.asynccontextmanager
async def _schema(_app: FastAPI) -> AsyncIterator[None]:
    """Create the table before the first request."""
    with contextlib.closing(sqlite3.connect(os.environ["BENCH_DB"])) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.commit()
    yield


def _pg_connection() -> psycopg.Connection[tuple[object, ...]]:
    """This thread's PostgreSQL connection, opened on first use."""
    conn: psycopg.Connection[tuple[object, ...]] | None = getattr(_local, "pg", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["BENCH_PG_URL"])
        _local.pg = conn
    return conn


@contextlib.asynccontextmanager
async def _pg_schema(_app: FastAPI) -> AsyncIterator[None]:
    """Create the table (in the schema BENCH_PG_URL's search_path names) before the first request."""
    with psycopg.connect(os.environ["BENCH_PG_URL"], autocommit=True) as conn:
        conn.execute(_SCHEMA)
    yield


def _row(signal: SignalIn, signal_id: str) -> tuple[str | None, ...]:
    return (signal_id, str(signal.accountId), signal.symbol, signal.action, str(signal.quantity),
            signal.executeMode, signal.sourceId, datetime.now(UTC).isoformat())


def _accepted(signal: SignalIn, signal_id: str) -> dict[str, object]:
    return {"success": True, "message": "Signal created",
            "signal": {"id": signal_id, "status": "pending", "executeMode": signal.executeMode}}


durable = FastAPI(lifespan=_schema)
durable_pg = FastAPI(lifespan=_pg_schema)
ceiling = FastAPI()
ceiling_sync = FastAPI()


@durable.post("/api/v1/signals", status_code=201)
def create_durable(signal: SignalIn) -> dict[str, object]:
    """Validate, then commit one row on this thread's connection."""
    signal_id = str(uuid.uuid4())
    conn = _connection()
    with conn:  # one transaction, committed (and fsynced) before the answer
        conn.execute(_INSERT, _row(signal, signal_id))
    return _accepted(signal, signal_id)


@durable_pg.post("/api/v1/signals", status_code=201)
def create_durable_pg(signal: SignalIn) -> dict[str, object]:
    """Validate, then commit one row on this thread's PostgreSQL connection."""
    signal_id = str(uuid.uuid4())
    conn = _pg_connection()
    with conn.transaction():  # committed (synchronous_commit as the server has it) before the answer
        conn.execute(_INSERT_PG, _row(signal, signal_id))
    return _accepted(signal, signal_id)


@ceiling.post("/api/v1/signals", status_code=201)
async def create_nothing(signal: SignalIn) -> dict[str, object]:
    """Validate and answer on the event loop; nothing is stored. The framework's ceiling."""
    return _accepted(signal, str(uuid.uuid4()))


@ceiling_sync.post("/api/v1/signals", status_code=201)
def create_nothing_in_a_thread(signal: SignalIn) -> dict[str, object]:
    """The durable route without its write: what the hop to the thread pool alone costs."""
    return _accepted(signal, str(uuid.uuid4()))


@durable.get("/healthz")
@durable_pg.get("/healthz")
@ceiling.get("/healthz")
@ceiling_sync.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
