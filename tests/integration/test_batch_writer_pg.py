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
