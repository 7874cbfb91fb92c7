"""Baseline servers for the ingest benchmark, run as `uvicorn bench.baselines:durable|ceiling`.

Both take the same JSON body as POST /api/v1/signals and validate it with pydantic in a sync
route, the shape most projects have. `durable` commits one row per request to SQLite (WAL,
synchronous=FULL, one connection per thread); `ceiling` writes nothing. The database file
comes from the BENCH_DB environment variable.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field

_SCHEMA = """CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
    quantity TEXT NOT NULL, execute_mode TEXT NOT NULL, source_id TEXT, created_at TEXT NOT NULL,
    UNIQUE (account_id, source_id))"""
_INSERT = "INSERT INTO signals VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
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


def _create_schema() -> None:
    path = os.environ.get("BENCH_DB")
    if path:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)


def _accepted(signal: SignalIn, signal_id: str) -> dict[str, object]:
    return {"success": True, "message": "Signal created",
            "signal": {"id": signal_id, "status": "pending", "executeMode": signal.executeMode}}


durable = FastAPI(on_startup=[_create_schema])
ceiling = FastAPI()


@durable.post("/api/v1/signals", status_code=201)
def create_durable(signal: SignalIn) -> dict[str, object]:
    """Validate, then commit one row on this thread's connection."""
    signal_id = str(uuid.uuid4())
    conn = _connection()
    with conn:  # one transaction, committed (and fsynced) before the answer
        conn.execute(_INSERT, (signal_id, str(signal.accountId), signal.symbol, signal.action,
                               str(signal.quantity), signal.executeMode, signal.sourceId,
                               datetime.now(UTC).isoformat()))
    return _accepted(signal, signal_id)


@ceiling.post("/api/v1/signals", status_code=201)
def create_nothing(signal: SignalIn) -> dict[str, object]:
    """Validate and answer; nothing is stored."""
    return _accepted(signal, str(uuid.uuid4()))


@durable.get("/healthz")
@ceiling.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
