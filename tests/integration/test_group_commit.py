"""Group commit on SQLite: concurrent write units share one transaction and one fsync, and
each unit's commit returns only once that transaction is durable."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from tests.support import parent_child_db
from tradewire.adapters.db.engine import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with parent_child_db(tmp_path / "g.db") as database:
        yield database


def _children(tmp_db: Database) -> set[int]:
    path = tmp_db.engine.url.database
    with sqlite3.connect(str(path)) as raw:  # a connection of its own: committed rows only
        return {row[0] for row in raw.execute("SELECT id FROM child")}


def _unit(db: Database, body: Callable[[Connection], None]) -> None:
    unit = db.write_unit()
    conn = unit.begin()
    try:
        body(conn)
        unit.commit()
    finally:
        unit.close()


def _insert(child: int, parent: int = 1) -> Callable[[Connection], None]:
    def body(conn: Connection) -> None:
        conn.execute(text("INSERT INTO child VALUES (:c, :p)"), {"c": child, "p": parent})
    return body


def _queued(db: Database, bodies: list[Callable[[Connection], None]]) -> list[BaseException | None]:
    """Run every body as a write unit on its own thread, all of them queued behind the group's
    mutex before any starts, so that they make one batch. Returns each unit's outcome."""
    group = db.group
    assert group is not None
    outcomes: list[BaseException | None] = [None] * len(bodies)

    def run(i: int) -> None:
        try:
            _unit(db, bodies[i])
        except BaseException as exc:
            outcomes[i] = exc

    group.acquire()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while group._waiting < len(bodies) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert group._waiting == len(bodies)
    group.release()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_queued_writers_share_one_durable_commit(db: Database) -> None:
    assert db.group is not None
    before = db.group.commits
    outcomes = _queued(db, [_insert(i) for i in range(32)])
    assert outcomes == [None] * 32
    assert _children(db) == set(range(32))
    assert db.group.commits - before == 1


def test_a_failing_unit_rolls_back_alone(db: Database) -> None:
    def fails(conn: Connection) -> None:
        _insert(100)(conn)
        raise ValueError("the unit's own error")

    outcomes = _queued(db, [_insert(1), fails, _insert(2)])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert _children(db) == {1, 2}


def test_a_failed_commit_fails_every_unit_in_it(db: Database) -> None:
    # The second unit breaks a deferred foreign key: SQLite refuses the whole COMMIT, so the
    # first unit, whose own rows were fine, must not be told they are stored.
    outcomes = _queued(db, [_insert(1), _insert(2, parent=99)])
    assert all(o is not None for o in outcomes)
    assert _children(db) == set()
    _unit(db, _insert(3))  # the group carries on with a fresh transaction
    assert _children(db) == {3}


def test_commit_returns_once_durable(db: Database) -> None:
    for i in range(5):
        _unit(db, _insert(i))
        assert i in _children(db)


def test_the_connection_cannot_be_used_after_commit(db: Database) -> None:
    unit = db.write_unit()
    conn = unit.begin()
    _insert(1)(conn)
    unit.commit()
    with pytest.raises(RuntimeError, match="outside its unit"):
        conn.execute(text("SELECT 1"))
    unit.close()
    _unit(db, _insert(2))
    assert _children(db) == {1, 2}


def test_an_exclusive_writer_commits_the_open_batch_first(db: Database) -> None:
    group = db.group
    assert group is not None
    group.acquire()
    _insert(1)(group.begin_unit())
    group_batch = group.end_unit(commit=True)  # committed into a batch left open ...
    group._waiting += 1  # ... as if a writer were queued to join it
    group.release()
    group._waiting -= 1
    assert group_batch is not None and not group_batch.done.is_set()
    with db.writing():  # a migration, say: it must not wait on an open write transaction
        assert group_batch.done.is_set()
        assert _children(db) == {1}


def test_the_units_savepoints_are_journalled_in_memory(db: Database) -> None:
    # Each unit's savepoint nests in the last; SQLite copies the pages a unit changes into the
    # savepoints' journal, by default a temporary file (a write system call per page:
    # `python -m bench.ids --savepoints`). The group's connection keeps it in memory, and a
    # unit that wrote more than SQLite keeps in memory before spilling still rolls back alone.
    temp_store: list[int] = []

    def big(first: int, fail: bool) -> Callable[[Connection], None]:
        def body(conn: Connection) -> None:
            temp_store.append(conn.exec_driver_sql("PRAGMA temp_store").scalar_one())
            for child in range(first, first + 300):
                conn.exec_driver_sql(f"INSERT INTO child VALUES ({child}, 1)")
            conn.exec_driver_sql("UPDATE child SET parent = 1")  # every page the batch wrote
            if fail:
                raise ValueError("the unit's own error")
        return body

    outcomes = _queued(db, [big(0, False), big(1000, True), big(2000, False)])
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert _children(db) == set(range(300)) | set(range(2000, 2300))
    assert temp_store == [2, 2, 2]  # MEMORY


def _sync_level(conn: Connection) -> int:
    """SQLite's synchronous setting on the unit's connection: 1 NORMAL (no fsync at commit in
    WAL mode), 2 FULL."""
    return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def _riding_unit(db: Database, body: Callable[[Connection], None], seen: list[int]) -> None:
    unit = db.write_unit(rides=True)
    conn = unit.begin()
    try:
        seen.append(_sync_level(conn))
        body(conn)
        unit.commit()
    finally:
        unit.close()


def test_a_riders_batch_commits_without_an_fsync_and_the_next_one_syncs(db: Database) -> None:
    """The paper venue's order (a rider) commits with synchronous=NORMAL; tradewire's record of
    it, next, commits with FULL, which makes both durable: the setting goes back for it."""
    group = db.group
    assert group is not None
    seen: list[int] = []
    riding_before, commits_before = group.riding_commits, group.commits
    _riding_unit(db, _insert(1), seen)
    assert group.riding_commits - riding_before == 1
    assert _children(db) == {1}  # committed (visible to another connection)

    def durable(conn: Connection) -> None:
        seen.append(_sync_level(conn))
        _insert(2)(conn)

    _unit(db, durable)
    assert seen == [1, 2]
    assert group.riding_commits - riding_before == 1
    assert group.commits - commits_before == 2
    assert _children(db) == {1, 2}


def test_a_unit_that_does_not_ride_never_commits_in_a_riders_batch(db: Database) -> None:
    group = db.group
    assert group is not None
    group.acquire()
    rider = group.begin_unit(rides=True)
    _insert(1)(rider)
    riders = group.end_unit(commit=True)  # left open, as if another writer were queued ...
    assert riders is not None and not riders.done.is_set()
    conn = group.begin_unit()  # ... and the next one does not ride: the riders commit first
    assert riders.done.is_set() and riders.error is None
    assert _sync_level(conn) == 2
    _insert(2)(conn)
    durable = group.end_unit(commit=True)
    group.release(flush=True)
    assert durable is not None and durable.done.is_set() and not durable.rides
    assert _children(db) == {1, 2}


def test_a_rider_joining_a_batch_that_syncs_is_committed_durably(db: Database) -> None:
    group = db.group
    assert group is not None
    seen: list[int] = []
    riding_before = group.riding_commits
    group.acquire()
    conn = group.begin_unit()
    _insert(3)(conn)
    batch = group.end_unit(commit=True)
    conn = group.begin_unit(rides=True)  # joins the open batch, which syncs
    seen.append(_sync_level(conn))
    _insert(4)(conn)
    assert group.end_unit(commit=True) is batch
    group.release(flush=True)
    assert batch is not None and batch.done.is_set() and not batch.rides
    assert seen == [2]
    assert group.riding_commits == riding_before
    assert _children(db) == {3, 4}
