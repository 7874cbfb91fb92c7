"""The batch writer on PostgreSQL: its batches are a transaction on a connection of its own,
and that connection can be dropped under it (the database restarted, an administrator ended
the session). The next unit must then be written on a new connection, not fail forever."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.support import PG_URL, Caller, require_postgres
from tradewire.bootstrap import Container

pytestmark = pytest.mark.postgres


@pytest.fixture
def db_kind() -> str:
    require_postgres()
    return "postgres"


def _pending(caller: Caller, source: str) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": source}


def test_a_writer_connection_dropped_by_the_database_is_replaced(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    writer = container.writer
    assert writer is not None and writer.alone
    first = client.post("/api/v1/signals", headers=alice.headers, json=_pending(alice, "d-1"))
    assert first.status_code == 201, first.text
    pid = writer.submit(lambda uow: uow.conn.execute(text("SELECT pg_backend_pid()"))
                        .scalar_one()).result(timeout=10)

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    finally:
        admin.dispose()

    before = writer.units
    r = client.post("/api/v1/signals", headers=alice.headers, json=_pending(alice, "d-2"))
    assert r.status_code == 201, r.text
    assert writer.units - before == 1
    pid_after = writer.submit(lambda uow: uow.conn.execute(text("SELECT pg_backend_pid()"))
                              .scalar_one()).result(timeout=10)
    assert pid_after != pid


def test_two_batches_crossing_on_the_same_keys_both_commit_every_unit(
        db_url: str, container: Container) -> None:
    """Two processes' writers, each with a batch of two units inserting the same two keys in
    opposite orders: each batch waits on a row the other holds, and PostgreSQL ends one
    statement to break the deadlock. That unit is written again after the units before it
    commit; every unit then succeeds, each key written once."""
    from concurrent.futures import Future
    from threading import Barrier, Event

    from tradewire.adapters.db.engine import connect
    from tradewire.adapters.db.writer import BatchWriter

    with container.db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE crossed (k text PRIMARY KEY)"))
    first_half = Barrier(2, timeout=10)  # each batch holds one key before it asks for the other
    gate = Event()
    databases = [connect(db_url), connect(db_url)]
    writers = [BatchWriter(db) for db in databases]
    try:
        def insert(key: str, then_wait: bool) -> Any:
            def unit(uow: Any) -> int:
                n = uow.conn.execute(text("INSERT INTO crossed VALUES (:k) ON CONFLICT DO NOTHING"),
                                     {"k": key}).rowcount
                if then_wait:
                    first_half.wait()
                return int(n)
            return unit

        futures: list[Future[Any]] = []
        for writer, (a, b) in zip(writers, (("k1", "k2"), ("k2", "k1")), strict=True):
            writer.submit(lambda _uow: gate.wait(10))  # holds the thread until both are queued
            futures += [writer.submit(insert(a, then_wait=True)),
                        writer.submit(insert(b, then_wait=False))]
        gate.set()
        inserted = [f.result(timeout=30) for f in futures]  # raised DeadlockDetected before
        assert sorted(inserted) == [0, 0, 1, 1]
        with container.db.engine.connect() as conn:
            assert conn.execute(text("SELECT k FROM crossed ORDER BY k")).scalars().all() == [
                "k1", "k2"]
    finally:
        for writer in writers:
            writer.close()
        for db in databases:
            db.close()
