"""The SQL a signal costs: a budget of statements per signal on the hot paths.

Each statement is Python in the driver (and, off the driver's cursor, in SQLAlchemy) before
the database sees it, and a round trip on PostgreSQL; on this kind of machine they are a large
share of an immediate signal's time (docs/performance.md). The budgets are what the paths take today: a
change that adds a statement to every signal has to say so here. The count is of statements
sent while one signal is handled (its request, the writer's unit, the paper venue's
transaction, the report recorded; the answer takes the signal from the record, it does not
read it again), after a first signal of the same
kind has created the rows every later one finds. The statements also build no SQLAlchemy
execution context: they run on the driver's cursor (adapters/db/fast.py).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import default

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.services.ports import Tick
from tradewire.services.ticks import apply_ticks

# (database, executeMode) -> most statements one signal may send.
BUDGET = {
    ("sqlite", "pending"): 4,
    ("sqlite", "immediate"): 33,
    ("postgres", "pending"): 4,
    # One more: the paper venue's commit is asynchronous there (SET LOCAL synchronous_commit),
    # made durable by the record of its answer (docs/reliability.md).
    ("postgres", "immediate"): 34,
}

# executeMode -> most SQLAlchemy execution contexts one signal may build: every statement runs
# on the driver's cursor (adapters/db/fast.py), a unit's audit events too (one executemany).
CONTEXTS = {"pending": 0, "immediate": 0}


class Recorder:
    """The statements sent, and the execution contexts built, while `on` (threads of the
    background worker aside)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.contexts = 0
        self._recording = threading.Event()

    def _counts(self) -> bool:
        return self._recording.is_set() and not threading.current_thread().name.startswith(
            ("tradewire-worker", "tradewire-notify"))

    def __call__(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        if self._counts():
            self.sent.append(statement)

    def context_built(self) -> None:
        if self._counts():
            self.contexts += 1

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        self._recording.set()
        try:
            yield
        finally:
            self._recording.clear()

    def sql(self) -> list[str]:
        """Everything but transaction and savepoint control."""
        return [s for s in self.sent if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]


@pytest.fixture
def recorder(container: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    r = Recorder()
    real = default.DefaultExecutionContext._init_compiled.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, *args: Any, **kwargs: Any) -> Any:
        r.context_built()
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(default.DefaultExecutionContext, "_init_compiled",
                        classmethod(counting))
    event.listen(container.db.engine, "before_cursor_execute", r)
    yield r
    event.remove(container.db.engine, "before_cursor_execute", r)


@pytest.mark.parametrize("mode", ["pending", "immediate"])
def test_one_signal_stays_within_its_statement_budget(
        mode: str, db_kind: str, client: httpx.Client, alice: Caller, container: Container,
        recorder: Recorder) -> None:
    apply_ticks([Tick("AAPL", Decimal(100), container.deps.clock.now())], container.deps)
    body = {"symbol": "AAPL", "action": "openLong", "accountId": alice.account_id,
            "quantity": 1, "executeMode": mode}
    first = client.post("/api/v1/signals", json={**body, "sourceId": "first"},
                        headers=alice.headers)
    assert first.status_code == 201, first.text
    with recorder.on():
        r = client.post("/api/v1/signals", json={**body, "sourceId": "second"},
                        headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == ("pending" if mode == "pending" else "executed")
    sql = recorder.sql()
    print(f"{db_kind} {mode}: {len(sql)} statements, {recorder.contexts} contexts")
    assert len(sql) <= BUDGET[(db_kind, mode)], "\n".join(sql)
    assert recorder.contexts <= CONTEXTS[mode]


def test_recording_an_orders_fill_writes_only_the_columns_that_changed(
        db_kind: str, client: httpx.Client, alice: Caller, container: Container,
        recorder: Recorder) -> None:
    """An immediate signal's order is updated once, when the paper venue's answer (accepted,
    filled) is recorded: the SET list holds what moved and the times, not the columns an
    index covers that never change (the account, the symbol, the signal, the client order id,
    the creation time), whose index entries SQLite would rewrite anyway."""
    apply_ticks([Tick("AAPL", Decimal(100), container.deps.clock.now())], container.deps)
    body = {"symbol": "AAPL", "action": "openLong", "accountId": alice.account_id,
            "quantity": 1, "executeMode": "immediate", "sourceId": "only-what-moved"}
    with recorder.on():
        r = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    [update] = [s for s in recorder.sql() if s.startswith("UPDATE trade_order")]
    written = set(re.findall(r"(\w+)=", update.split(" WHERE ")[0]))
    assert {"status", "filled_qty", "avg_fill_price", "broker_order_id",
            "updated_at"} <= written, update
    assert not written & {"account_id", "symbol", "signal_id", "client_order_id", "created_at",
                          "qty", "side", "link_group"}, update
