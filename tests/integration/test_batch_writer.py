"""The batch writer: write units handed over from the event loop to one thread, answered only
once the commit holding them is durable.

The first tests drive the writer on a SQLite database of their own, as test_group_commit.py
drives the group; the last ones send signals to the real API on loopback (SQLite and
PostgreSQL), where a signal sent with an API key is stored by the writer. On PostgreSQL an
immediate signal is not (entrypoints/api/handover.py): it goes the general way there."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support import Caller, login, parent_child_db
from tradewire.adapters.db.engine import Database
from tradewire.adapters.db.uow import SqlUnitOfWork
from tradewire.adapters.db.writer import BatchWriter
from tradewire.bootstrap import Container

WAIT_S = 10


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with parent_child_db(tmp_path / "w.db") as database:
        yield database


@pytest.fixture
def writer(db: Database) -> Iterator[BatchWriter]:
    w = BatchWriter(db)
    yield w
    w.close()


def _children(db: Database) -> set[int]:
    with sqlite3.connect(str(db.engine.url.database)) as raw:  # committed rows only
        return {row[0] for row in raw.execute("SELECT id FROM child")}


def _insert(child: int, parent: int = 1) -> Callable[[SqlUnitOfWork], int]:
    def unit(uow: SqlUnitOfWork) -> int:
        uow.conn.execute(text("INSERT INTO child VALUES (:c, :p)"), {"c": child, "p": parent})
        return child
    return unit


def _held(db: Database, writer: BatchWriter, units: list[Callable[[SqlUnitOfWork], Any]]
          ) -> list[Future[Any]]:
    """Hand every unit over while another writer holds the group, so that they queue."""
    group = db.group
    assert group is not None
    group.acquire()
    try:
        futures = [writer.submit(u) for u in units]
    finally:
        group.release()
    wait(futures, timeout=WAIT_S)
    assert all(f.done() for f in futures)
    return futures


def test_a_unit_is_answered_only_once_its_commit_is_durable(
        db: Database, writer: BatchWriter) -> None:
    seen: dict[int, bool] = {}

    def on_answer(future: Future[int]) -> None:  # runs the moment the answer is given
        child = future.result()
        seen[child] = child in _children(db)

    futures = []
    for i in range(20):
        future = writer.submit(_insert(i))
        future.add_done_callback(on_answer)
        futures.append(future)
    writer.close()  # the thread is done, with the callbacks it ran
    assert [f.result() for f in futures] == list(range(20))
    assert seen == dict.fromkeys(range(20), True)


def test_units_that_wait_share_one_commit(db: Database, writer: BatchWriter) -> None:
    assert db.group is not None
    before = db.group.commits
    futures = _held(db, writer, [_insert(i) for i in range(16)])
    assert [f.result() for f in futures] == list(range(16))
    assert _children(db) == set(range(16))
    # The writer may have taken the first unit before the rest arrived: two commits at most.
    assert db.group.commits - before <= 2
    assert writer.units == 16


def test_a_unit_that_raises_fails_alone_and_leaves_nothing(
        db: Database, writer: BatchWriter) -> None:
    def fails(uow: SqlUnitOfWork) -> int:
        _insert(100)(uow)
        raise ValueError("the unit's own error")

    first, failed, last = _held(db, writer, [_insert(1), fails, _insert(2)])
    assert first.result() == 1 and last.result() == 2
    assert isinstance(failed.exception(), ValueError)
    assert _children(db) == {1, 2}


def test_a_failed_commit_fails_every_unit_in_it(db: Database, writer: BatchWriter) -> None:
    # The second unit breaks a deferred foreign key: SQLite refuses the whole COMMIT, so the
    # first unit, whose own row was fine, must not be told it is stored.
    futures = _held(db, writer, [_insert(1), _insert(2, parent=99)])
    assert all(f.exception() is not None for f in futures)
    assert _children(db) == set()
    assert writer.submit(_insert(3)).result(timeout=WAIT_S) == 3  # it carries on
    assert _children(db) == {3}


def test_write_here_writes_on_the_calling_thread_in_batches_of_at_most_max_units(
        db: Database) -> None:
    # The writer process's way (entrypoints/api/writer_process.py): no thread to hand over to.
    assert db.group is not None
    writer = BatchWriter(db, max_units=4)
    threads: set[str] = set()

    def insert(child: int) -> Callable[[SqlUnitOfWork], int]:
        def unit(uow: SqlUnitOfWork) -> int:
            threads.add(threading.current_thread().name)
            return _insert(child)(uow)
        return unit

    def fails(uow: SqlUnitOfWork) -> int:
        _insert(100)(uow)
        raise ValueError("the unit's own error")

    before = db.group.commits
    answers = writer.write_here([insert(i) for i in range(5)] + [fails] + [insert(5), insert(6)])
    assert threads == {threading.current_thread().name}
    assert [value for value, _ in answers] == [0, 1, 2, 3, 4, None, 5, 6]
    assert isinstance(answers[5][1], ValueError)
    assert [error for i, (_, error) in enumerate(answers) if i != 5] == [None] * 7
    assert _children(db) == set(range(7))  # not the failed unit's row
    assert db.group.commits - before == 2  # eight units, four to a batch
    assert writer.units == 7


def test_write_here_gives_a_failed_commits_error_to_every_unit_of_its_batch(
        db: Database) -> None:
    writer = BatchWriter(db, max_units=2)
    answers = writer.write_here([_insert(1), _insert(2, parent=99), _insert(3)])
    assert answers[0][1] is not None and answers[1][1] is not None  # one batch, refused
    assert answers[2] == (3, None)  # the next batch is written
    assert _children(db) == {3}


def test_a_unit_cannot_open_a_second_write_unit(db: Database, writer: BatchWriter) -> None:
    def nested(uow: SqlUnitOfWork) -> int:
        _insert(1)(uow)
        db.write_unit().begin()  # would wait forever on the group its own thread holds
        return 1

    future = writer.submit(nested)
    with pytest.raises(RuntimeError, match="nested write"):
        future.result(timeout=WAIT_S)
    assert _children(db) == set()
    assert writer.submit(_insert(2)).result(timeout=WAIT_S) == 2


def test_a_unit_does_not_commit_itself(db: Database, writer: BatchWriter) -> None:
    def commits(uow: SqlUnitOfWork) -> int:
        _insert(1)(uow)
        uow.commit()
        return 1

    with pytest.raises(RuntimeError, match="committed by its writer"):
        writer.submit(commits).result(timeout=WAIT_S)
    assert _children(db) == set()


def test_a_unit_whose_request_went_away_before_its_turn_is_not_written(
        db: Database, writer: BatchWriter) -> None:
    group = db.group
    assert group is not None
    group.acquire()
    try:
        kept = writer.submit(_insert(1))
        gone = writer.submit(_insert(2))
        assert gone.cancel()
    finally:
        group.release()
    assert kept.result(timeout=WAIT_S) == 1
    assert gone.cancelled()
    assert _children(db) == {1}


def test_close_writes_what_was_handed_over_first(db: Database) -> None:
    w = BatchWriter(db)
    futures = [w.submit(_insert(i)) for i in range(5)]
    w.close()
    assert all(f.done() for f in futures)
    assert _children(db) == set(range(5))
    with pytest.raises(RuntimeError, match="closed"):
        w.submit(_insert(9))


def test_the_unit_runs_in_the_callers_log_context(db: Database, writer: BatchWriter) -> None:
    from tradewire.services import logcontext

    def fields(_uow: SqlUnitOfWork) -> dict[str, Any]:
        return logcontext.fields()

    with logcontext.scope(request_id="r-1"):
        future = writer.submit(fields)
    assert future.result(timeout=WAIT_S)["request_id"] == "r-1"


# -- through the API ------------------------------------------------------------------------


def _price(client: httpx.Client, caller: Caller, symbol: str, price: float) -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def _body(caller: Caller, source: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": source, **extra}


def test_signals_sent_with_an_api_key_are_stored_by_the_writer(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    assert container.writer is not None
    before = container.writer.units
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        r = client.post("/api/v1/signals", headers=alice.headers, json=_body(alice, f"w-{i}"))
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert sorted(r.status_code for r in answers) == [201] * 24, [r.text for r in answers]
    assert container.writer.units - before == 24
    ids = {r.json()["signal"]["id"] for r in answers}
    with container.db.engine.connect() as conn:
        stored = {row[0] for row in conn.execute(text("SELECT id FROM signal"))}
    assert ids <= stored

    again = client.post("/api/v1/signals", headers=alice.headers, json=_body(alice, "w-3"))
    assert again.status_code == 200, again.text  # the duplicate's answer, from the writer too
    assert again.json()["signal"]["id"] in ids
    assert container.writer.units - before == 25


def _immediate(container: Container) -> int:
    """Units an immediate signal gives the writer: one on SQLite, none on PostgreSQL."""
    assert container.writer is not None
    return 0 if container.writer.alone else 1


def test_an_immediate_signal_is_stored_by_the_writer_and_sent_after_the_commit(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    assert container.writer is not None
    _price(client, alice, "BTC/USDT", 10)
    before = container.writer.units
    r = client.post("/api/v1/signals", headers=alice.headers,
                    json=_body(alice, "imm-1", symbol="BTC/USDT", executeMode="immediate"))
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    assert container.writer.units - before == _immediate(container)


def test_the_general_way_stays_for_what_the_writer_does_not_take(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    assert container.writer is not None
    before = container.writer.units
    jwt = client.post("/api/v1/signals", headers=login(client, alice), json=_body(alice, "jwt"))
    assert jwt.status_code == 201, jwt.text
    _price(client, alice, "SPY", 500)
    # A percent-of-equity size asks the broker first: not on the writer's thread.
    equity = client.post("/api/v1/signals", headers=alice.headers,
                         json=_body(alice, "pct", symbol="SPY", quantity=10,
                                    quantityType="percentEquity"))
    assert equity.status_code == 201, equity.text
    bad = client.post("/api/v1/signals", headers=alice.headers, content=b"{not json")
    assert bad.status_code == 400, bad.text
    assert container.writer.units == before


def test_the_older_ingest_api_stores_through_the_writer_too(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    assert container.writer is not None
    before = container.writer.units
    body = {"symbol": "AAPL", "action": "openLong", "quantity": 1, "accountId": alice.account_id,
            "sourceId": "old-1", "processAt": "2026-02-09T09:25:00", "timezone": "America/New_York"}
    r = client.post("/api/signals/ingest", headers=alice.headers, json=body)
    assert r.status_code == 202, r.text  # scheduled
    again = client.post("/api/signals/ingest", headers=alice.headers, json=body)
    assert again.status_code == 400, again.text  # this API refuses a duplicate sourceId
    assert container.writer.units - before == 2
    stranger = client.post("/api/signals/ingest", headers={"X-API-Key": "tw_not-a-key"},
                           json={**body, "sourceId": "old-2"})
    assert stranger.status_code == 401, stranger.text
    assert "success" not in stranger.json()  # the older API's error shape
    assert container.writer.units - before == 2
    now = client.post("/api/signals/ingest", headers=alice.headers,
                      json={**body, "sourceId": "old-3", "processAt": "now", "symbol": "BTC/USDT"})
    assert now.status_code in (201, 400), now.text  # immediate: sent (or refused) at once
    assert container.writer.units - before == 2 + _immediate(container)


def test_units_awaited_from_an_event_loop_are_answered_there(
        db: Database, writer: BatchWriter) -> None:
    import asyncio

    def fails(_uow: SqlUnitOfWork) -> int:
        raise ValueError("refused")

    async def main() -> list[Any]:
        return await asyncio.gather(*(writer.run(_insert(i)) for i in range(10)),
                                    writer.run(fails), return_exceptions=True)

    answers = asyncio.run(main())
    assert answers[:10] == list(range(10))
    assert isinstance(answers[10], ValueError)
    assert _children(db) == set(range(10))


def test_a_units_then_runs_on_the_writer_after_its_commit_and_is_its_answer(
        db: Database, writer: BatchWriter) -> None:
    import asyncio

    group = db.group
    assert group is not None
    seen: list[tuple[str, bool]] = []

    def then(child: int) -> str:
        # On the writer thread, the unit's row committed (durable) before it runs.
        seen.append((threading.current_thread().name, child in _children(db)))
        return f"sent {child}"

    def refuses(child: int) -> str:
        raise RuntimeError(f"could not send {child}")

    async def main() -> list[Any]:
        group.acquire()  # all three wait, then share one batch
        try:
            followed = asyncio.ensure_future(writer.run(_insert(1), then=then))
            plain = asyncio.ensure_future(writer.run(_insert(2)))
            failing = asyncio.ensure_future(writer.run(_insert(3), then=refuses))
            await asyncio.sleep(0)
        finally:
            group.release()
        return await asyncio.gather(followed, plain, failing, return_exceptions=True)

    answers = asyncio.run(main())
    assert answers[:2] == ["sent 1", 2]
    assert isinstance(answers[2], RuntimeError)  # the unit stays written: only `then` failed
    assert seen == [("tradewire-writer", True)]
    assert _children(db) == {1, 2, 3}


def test_a_unit_awaited_by_a_cancelled_task_before_its_turn_is_not_written(
        db: Database, writer: BatchWriter) -> None:
    import asyncio

    group = db.group
    assert group is not None

    async def main() -> None:
        group.acquire()  # another writer holds the group: the units wait
        try:
            kept = asyncio.ensure_future(writer.run(_insert(1)))
            gone = asyncio.ensure_future(writer.run(_insert(2)))
            await asyncio.sleep(0)  # both handed over
            gone.cancel()
            await asyncio.sleep(0)
        finally:
            group.release()
        assert await kept == 1
        assert gone.cancelled()

    asyncio.run(main())
    assert _children(db) == {1}


def test_one_order_sent_with_an_access_token_is_stored_by_the_writer(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    from tradewire.services import capabilities

    assert container.writer is not None
    _price(client, alice, "BTC/USDT", 10)
    row, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                  container.secrets)
    before = container.writer.units
    tradingview = b'{"symbol": "BTC/USDT", "side": "buy", "quantity": "1"}'
    r = client.post(f"/signal/execute-via-token/{token}", content=tradingview,
                    headers={"Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 201, r.text
    assert r.json()["order"]["status"] == "executed"
    assert container.writer.units - before == _immediate(container)

    invalid = client.post(f"/signal/execute-via-token/{token}",
                          json={"symbol": "BTC/USDT", "side": "buy", "quantity": -1})
    assert invalid.status_code == 400, invalid.text
    assert invalid.json()["code"] == "VALIDATION_ERROR"
    batch = client.post(f"/signal/execute-via-token/{token}",
                        json=[{"symbol": "BTC/USDT", "side": "buy", "quantity": 1}])
    assert batch.status_code == 200, batch.text  # a batch goes the general way
    assert container.writer.units - before == _immediate(container)

    signals = _signals_stored(container)
    capabilities.revoke_access_token(row.id, container.deps)
    refused = client.post(f"/signal/execute-via-token/{token}", content=tradingview)
    assert refused.status_code == 401, refused.text
    stranger = client.post("/signal/execute-via-token/twat_" + "x" * 40, content=tradingview)
    assert stranger.status_code == 401, stranger.text
    assert _signals_stored(container) == signals
    assert container.writer.units - before == _immediate(container)


@pytest.mark.parametrize("local", [True, False])
def test_orders_for_the_paper_venue_are_sent_by_the_writer_thread(
        client: httpx.Client, alice: Caller, container: Container,
        monkeypatch: pytest.MonkeyPatch, local: bool) -> None:
    """An immediate signal's order for a venue that answers from this database goes out from
    the writer thread right after the commit; any other broker's from a thread of the pool."""
    from tradewire.adapters.brokers.paper import PaperBroker

    monkeypatch.setattr(PaperBroker, "answers_locally", local)
    threads: list[str] = []
    submit = PaperBroker.submit

    def spy(self: PaperBroker, request: Any) -> Any:
        threads.append(threading.current_thread().name)
        return submit(self, request)

    monkeypatch.setattr(PaperBroker, "submit", spy)
    _price(client, alice, "BTC/USDT", 10)
    r = client.post("/api/v1/signals", headers=alice.headers,
                    json=_body(alice, "sent-1", symbol="BTC/USDT", executeMode="immediate"))
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    assert len(threads) == 1
    # PostgreSQL: an immediate signal is not handed to the writer (handover.py).
    assert container.writer is not None
    handed = not container.writer.alone
    assert (threads[0] == "tradewire-writer") == (local and handed), threads


def test_the_paper_venues_commit_rides_on_the_durable_record_of_its_answer(
        client: httpx.Client, alice: Caller, container: Container,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper venue taking an order commits without an fsync of its own (SQLite: a riders'
    batch; PostgreSQL: an asynchronous commit); the record of its answer, which follows before
    the signal is answered, is a durable commit and makes both durable."""
    from sqlalchemy import event

    from tradewire.adapters.db.group_commit import Batch, GroupCommit

    _price(client, alice, "BTC/USDT", 10)
    flushed: list[bool] = []
    flush = GroupCommit._flush

    def spy(self: GroupCommit) -> None:
        batch: Batch | None = self._batch
        if batch is not None and batch.units:
            flushed.append(batch.rides)
        flush(self)

    monkeypatch.setattr(GroupCommit, "_flush", spy)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(container.db.engine, "before_cursor_execute", seen)
    try:
        r = client.post("/api/v1/signals", headers=alice.headers,
                        json=_body(alice, "rides-1", symbol="BTC/USDT", executeMode="immediate"))
    finally:
        event.remove(container.db.engine, "before_cursor_execute", seen)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    if container.db.group is not None:  # SQLite: the signal's, the venue's, the record's
        assert flushed == [False, True, False], flushed
    else:
        asynchronous = [i for i, s in enumerate(statements) if "synchronous_commit" in s]
        venue = max(i for i, s in enumerate(statements) if s.startswith("INSERT INTO paper_fill"))
        record = max(i for i, s in enumerate(statements) if s.startswith("INSERT INTO fill "))
        assert len(asynchronous) == 1 and venue < asynchronous[0] < record, statements


def _signals_stored(container: Container) -> int:
    with container.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM signal")).scalar_one())
