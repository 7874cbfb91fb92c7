"""Processes writing one SQLite file take turns on a lock beside it (group_commit.WriteTurn)
before SQLite's BEGIN IMMEDIATE, instead of sleeping in SQLite's busy handler.

Two `connect()`s of one file stand for two processes here: each has its own group and its
own open lock file, which the kernel orders exactly as it orders two processes' (an `flock`
belongs to the open file, not to the process). One test uses a real second process, killed
while it holds the turn."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from tradewire.adapters.db.engine import Database, connect
from tradewire.adapters.db.uow import SqlUnitOfWork
from tradewire.adapters.db.writer import BatchWriter

WAIT_S = 10
STILL_WAITING_S = 0.3  # how long the second writer is watched not to have begun


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'turn.db'}"
    setup = connect(url)
    with setup.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO parent VALUES (1)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
                             "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    setup.close()
    return url


@pytest.fixture
def two(url: str) -> Iterator[tuple[Database, Database]]:
    a, b = connect(url), connect(url)
    yield a, b
    a.close()
    b.close()


def _began(db: Database) -> threading.Event:
    """Set when `db` sends a BEGIN (a writer's BEGIN IMMEDIATE: SQLite's busy handler waits
    inside it while another connection holds the write lock)."""
    began = threading.Event()

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("BEGIN"):
            began.set()

    event.listen(db.engine, "before_cursor_execute", before)
    return began


def _write_in_thread(db: Database, child: int, parent: int = 1) -> tuple[threading.Thread,
                                                                           list[BaseException]]:
    errors: list[BaseException] = []

    def write() -> None:
        unit = db.write_unit()
        try:
            conn = unit.begin()
            conn.exec_driver_sql("INSERT INTO child VALUES (?, ?)", (child, parent))
            unit.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            unit.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread, errors


def _children(db: Database) -> set[int]:
    with db.engine.connect().execution_options(tw_write=False) as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT id FROM child")}


def test_the_turn_is_a_file_beside_the_database(two: tuple[Database, Database]) -> None:
    a, _ = two
    unit = a.write_unit()
    unit.begin()
    unit.close()
    assert Path(str(a.engine.url.database) + ".write-turn").exists()


def test_a_second_writer_waits_for_the_turn_before_it_begins(
        two: tuple[Database, Database]) -> None:
    a, b = two
    b_began = _began(b)
    unit = a.write_unit()
    try:
        conn = unit.begin()  # a's batch is open: a holds the turn and SQLite's write lock
        thread, errors = _write_in_thread(b, child=2)
        # Without the turn, b would be inside BEGIN IMMEDIATE now, in SQLite's busy handler.
        waited = not b_began.wait(STILL_WAITING_S)
        conn.exec_driver_sql("INSERT INTO child VALUES (1, 1)")
        unit.commit()
    finally:
        unit.close()
    assert waited
    thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    assert b_began.is_set()
    assert _children(a) == {1, 2}


def test_a_failed_commit_gives_the_turn_back(two: tuple[Database, Database]) -> None:
    a, b = two
    unit = a.write_unit()
    conn = unit.begin()
    conn.exec_driver_sql("INSERT INTO child VALUES (9, 99)")  # no parent 99: COMMIT fails
    with pytest.raises(Exception, match="FOREIGN KEY"):
        unit.commit()
    thread, errors = _write_in_thread(b, child=3)
    thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    assert _children(b) == {3}


def test_a_unit_rolled_back_alone_keeps_nothing_and_the_next_writer_gets_in(
        two: tuple[Database, Database]) -> None:
    a, b = two
    unit = a.write_unit()
    conn = unit.begin()
    conn.exec_driver_sql("INSERT INTO child VALUES (4, 1)")
    unit.close()  # rolled back: the batch held nothing, its transaction ends
    thread, errors = _write_in_thread(b, child=5)
    thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    assert _children(b) == {5}


def test_an_exclusive_writer_takes_the_turn_too(two: tuple[Database, Database]) -> None:
    a, b = two
    b_began = _began(b)
    with a.writing(), a.engine.begin() as conn:  # a migration's kind of write
        conn.exec_driver_sql("INSERT INTO child VALUES (6, 1)")
        thread, errors = _write_in_thread(b, child=7)
        waited = not b_began.wait(STILL_WAITING_S)
    assert waited
    thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    assert _children(b) == {6, 7}


_HOLDER = """
import sys, time
from tradewire.adapters.db.engine import connect
db = connect(sys.argv[1])
unit = db.write_unit()
unit.begin()
print("holding", flush=True)
time.sleep(60)
"""


def test_a_process_killed_holding_the_turn_leaves_it_free(url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"holding"
        db = connect(url)
        try:
            b_began = _began(db)
            thread, errors = _write_in_thread(db, child=8)
            waited = not b_began.wait(STILL_WAITING_S)  # the holder has the turn
            holder.kill()  # SIGKILL: no cleanup of its own runs
            holder.wait(WAIT_S)
            assert waited
            thread.join(WAIT_S)
            assert not thread.is_alive() and errors == []
            assert _children(db) == {8}
        finally:
            db.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(WAIT_S)


def test_a_writer_kept_waiting_for_the_turn_takes_everything_queued_meanwhile(
        two: tuple[Database, Database]) -> None:
    """The batch writer drains its queue once it has the turn, not before: units handed over
    while another process held the file join the same commit."""
    a, b = two
    writer = BatchWriter(b)
    unit = a.write_unit()
    try:
        unit.begin()  # a holds the turn
        first = writer.submit(_insert(10))
        _until(lambda: writer._queue.empty())  # the writer took it and waits for the turn
        rest = [writer.submit(_insert(child)) for child in (11, 12, 13, 14)]
        time.sleep(STILL_WAITING_S)
        assert not first.done()
    finally:
        unit.close()  # a lets go (its batch held nothing)
    try:
        assert [f.result(WAIT_S) for f in (first, *rest)] == [10, 11, 12, 13, 14]
        assert writer.batches == 1  # one turn, one commit for all five
    finally:
        writer.close()
    assert _children(a) == {10, 11, 12, 13, 14}


def _insert(child: int) -> Callable[[SqlUnitOfWork], int]:
    def unit(uow: SqlUnitOfWork) -> int:
        uow.conn.exec_driver_sql("INSERT INTO child VALUES (?, 1)", (child,))
        return child
    return unit


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_turn_taken_for_units_that_went_away_is_given_back(
        two: tuple[Database, Database]) -> None:
    a, b = two
    writer = BatchWriter(b)
    try:
        unit = a.write_unit()
        try:
            unit.begin()
            gone = writer.submit(_insert(20))
            _until(lambda: writer._queue.empty())
            assert gone.cancel()  # its request went away before the writer's turn
        finally:
            unit.close()
        _until(lambda: writer.batches == 1)  # the writer's turn came, with nothing to write
        thread, errors = _write_in_thread(a, child=21)  # a can have the file back
        thread.join(WAIT_S)
        assert not thread.is_alive() and errors == []
    finally:
        writer.close()
    assert _children(a) == {21}
