"""Group commit: concurrent write units share one transaction and one durable commit.

SQLite takes one writer at a time, and with `synchronous=FULL` every commit waits for an
fsync. Committing each request's transaction on its own makes every writer queue behind the
previous one's fsync. Here the writers of one process take turns on one connection instead:
each unit runs inside a SAVEPOINT of a shared transaction (so a unit that fails rolls back
alone), and the transaction commits once no other writer is waiting to join it, or when it
holds `max_units` units or is `max_age_s` old. A unit's `commit()` returns only after that
commit is durable, so nothing is acknowledged before it is on disk; if the commit fails, every
unit in it gets the error, as each would have alone.

Units run one at a time under the group's mutex, in the order they took it, exactly as they
did under the process's write lock before: a unit sees the units before it in the same
transaction, and commits or fails with them.

On SQLite every writer of the process goes through the group (`Database.group`), and the
processes writing one file take turns on a lock beside it (`WriteTurn`) for each batch. On
PostgreSQL, where writers have transactions of their own, only the batch writer uses one
(adapters/db/writer.py), for the units it is handed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from tradewire.adapters.db import fast

log = logging.getLogger(__name__)


# On the shared connection's `info`: (the open batch's transaction, what it remembers).
_MEMO = "tw_batch_memo"


def batch_memo(conn: Connection) -> dict[Any, Any] | None:
    """What the open SQLite batch on `conn` remembers of rows it read, for its later units; None
    on any other connection or transaction.

    A SQLite batch holds the file's write lock (BEGIN IMMEDIATE) from its first unit to its
    commit, so no other connection can change a row it read until then: a read of rows that
    only this connection could change, and that every write to them forgets (`forget`), gives
    the same answer to every unit of the batch. On PostgreSQL a batch is one transaction
    beside others (read committed: each statement sees what they committed), so nothing is
    remembered there."""
    held = conn.info.get(_MEMO)
    if held is None or held[0] is not conn.get_transaction():
        return None
    memo: dict[Any, Any] = held[1]
    return memo


def forget(conn: Connection) -> None:
    """The open batch on `conn` forgets what it read: a unit wrote rows it may have read, or a
    unit was rolled back (what it wrote, and what was read after, is gone)."""
    held = conn.info.get(_MEMO)
    if held is not None:
        held[1].clear()


class Batch:
    """One shared transaction: the units committed in it, and its outcome."""

    __slots__ = ("done", "error", "opened", "rides", "units")

    def __init__(self, *, rides: bool = False) -> None:
        self.opened = time.monotonic()
        self.units = 0
        self.rides = rides  # riders only, committed without an fsync (GroupCommit.begin_unit)
        self.done = threading.Event()
        self.error: BaseException | None = None


class WriteTurn:
    """The processes writing one SQLite file take turns here before their BEGIN IMMEDIATE.

    SQLite lets one writer in at a time; a process that finds the write lock taken waits in
    SQLite's busy handler, which sleeps and tries again (1, 2, 5 ... up to 100 ms between
    tries), so with several API processes on one file the waits, not the writes, set the
    tail latency. An exclusive `flock` on a file beside the database is a queue the kernel
    wakes the next writer from as soon as the last one lets go. The turn only orders writers
    that take it; SQLite's own lock still decides (a writer that does not take the turn is
    waited for as before)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def take(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits

    def give(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # and the lock with it


class GroupCommit:
    def __init__(self, engine: Engine, *, max_units: int = 64, max_age_s: float = 0.005,
                 turn: WriteTurn | None = None) -> None:
        self._engine = engine
        self._turn = turn
        self._turn_held = False
        self.max_units = max_units
        self.max_age_s = max_age_s
        self._mutex = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0  # writers blocked on the mutex: the next batch members
        self._owner: int | None = None
        self._conn: Connection | None = None
        self._tx: Any = None
        self._savepoint = False  # a unit's savepoint is open
        self._batch: Batch | None = None
        self.commits = 0  # commits made, each holding one or more units
        self.riding_commits = 0  # of them, batches of riders, made without an fsync
        self._riding = False  # the connection is set to synchronous=NORMAL

    # -- the mutex -------------------------------------------------------------------------

    def acquire(self) -> None:
        with self._count:
            self._waiting += 1
        try:
            self._mutex.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        self._owner = threading.get_ident()

    def release(self, *, flush: bool = False) -> None:
        """Commit the batch unless another writer is about to join it; let the next in."""
        try:
            batch = self._batch
            if batch is not None and (flush or self._due(batch)):
                self._flush()
        finally:
            if self._batch is None:  # a turn taken for a batch that did not open
                self._give_turn()
            self._owner = None
            self._mutex.release()

    def _due(self, batch: Batch) -> bool:
        return (self._waiting == 0 or batch.units == 0 or batch.units >= self.max_units
                or time.monotonic() - batch.opened >= self.max_age_s)

    # -- units (under the mutex) -----------------------------------------------------------

    def begin_unit(self, *, rides: bool = False) -> Connection:
        """The shared connection, inside a fresh savepoint of the open batch.

        A unit that `rides` may be committed without an fsync of its own, durable with the
        next commit that syncs the WAL (which holds every frame written before its own):
        only for writes that a later durable commit always follows before anyone is told of
        them (the paper venue taking an order, then tradewire's record of its answer:
        services/submit.py). A batch opened by a rider is riders only and commits with
        `synchronous=NORMAL` (set before its BEGIN: SQLite cannot change it inside a
        transaction); a unit that does not ride commits that batch first and opens one that
        syncs, which it may then share with riders."""
        for attempt in (1, 2):
            try:
                self._open_savepoint(rides)
                break
            except BaseException as exc:
                # The connection is broken (the database restarted ...): the units already in
                # the batch cannot commit on it, and the next unit starts on a new one. When
                # nothing was written on it yet, that next unit is this one.
                batch = self._batch
                fresh = batch is None or batch.units == 0
                if batch is not None:
                    self._lose(batch, exc)
                else:
                    self._discard()
                dropped = isinstance(exc, DBAPIError) and exc.connection_invalidated
                if attempt == 2 or not fresh or not dropped:
                    raise
                log.warning("the shared write connection was dropped; writing on a new one")
        self._savepoint = True
        assert self._conn is not None
        return self._conn

    def _open_savepoint(self, rides: bool) -> None:
        if self._batch is not None and self._batch.rides and not rides:
            self._flush()  # the riders' batch ends here; this unit's syncs
        if self._conn is None:
            conn = self._engine.connect().execution_options(tw_write=True)
            if conn.dialect.name == "sqlite":
                # Each unit's savepoint nests in the last, and SQLite copies every page a unit
                # first changes into the savepoints' journal: in a temporary file by default
                # (a write system call per page, about 60 us of system CPU per `pending`
                # signal, three quarters of the database's own cost), in memory here. A
                # batch's journal is at most the pages its units changed.
                conn.connection.driver_connection.execute("PRAGMA temp_store=MEMORY")
            event.listen(conn, "before_cursor_execute", self._check_owner)
            self._conn = conn
            self._riding = False  # a new connection syncs (engine.py sets FULL on connect)
        if self._batch is None:
            self.take_turn()
            try:
                rides = rides and self._conn.dialect.name == "sqlite"
                if rides != self._riding:  # outside a transaction, where SQLite allows it
                    self._conn.connection.driver_connection.execute(
                        "PRAGMA synchronous=" + ("NORMAL" if rides else "FULL"))
                    self._riding = rides
                self._tx = self._conn.begin()
            except BaseException:
                self._give_turn()
                raise
            self._batch = Batch(rides=rides)
            if self._conn.dialect.name == "sqlite":
                self._conn.info[_MEMO] = (self._tx, {})
        # One fixed name: units never nest, and the driver keeps the statement prepared.
        fast.driver_sql(self._conn, "SAVEPOINT tw_unit")

    def end_unit(self, *, commit: bool) -> Batch | None:
        """Keep the unit in the batch (which it then waits for), or roll it back. Returns the
        batch to wait for, or None when the unit left nothing in it.

        A kept unit's savepoint is not released: the next unit's nests in it, and the batch's
        COMMIT commits them all (one statement less per unit, a round trip on PostgreSQL).
        A unit rolled back goes back to its own savepoint, the latest of that name."""
        savepoint, self._savepoint = self._savepoint, False
        batch = self._batch
        if not savepoint or batch is None or self._conn is None:
            return None
        try:
            if commit:
                batch.units += 1
                return batch
            forget(self._conn)
            self._conn.exec_driver_sql("ROLLBACK TO tw_unit")
            self._conn.exec_driver_sql("RELEASE tw_unit")
        except BaseException as exc:
            self._lose(batch, exc)
            raise
        if not self._in_transaction():  # SQLite ended the whole transaction (disk full ...)
            self._lose(batch, RuntimeError("the shared write transaction was rolled back"))
        return None

    def flush_open(self) -> None:
        """Under the mutex: commit the open batch now (before an exclusive writer)."""
        if self._batch is not None:
            self._flush()

    def wait(self, batch: Batch) -> None:
        """Until the batch is committed; then raise its error, if it failed."""
        while not batch.done.wait(0.05):
            # The writers after us are slow to finish: commit it ourselves.
            self.acquire()
            self.release(flush=self._batch is batch)
        if batch.error is not None:
            raise batch.error

    # -- internals -------------------------------------------------------------------------

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None
        if self._conn is not None:
            self._conn.info.pop(_MEMO, None)
        try:
            if batch.units:
                self._tx.commit()
                self.commits += 1
                self.riding_commits += batch.rides
            else:
                self._tx.rollback()
        except BaseException as exc:
            log.exception("group commit of %d write units failed", batch.units)
            batch.error = exc
            self._discard()
        finally:
            self._tx = None
            self._give_turn()
            batch.done.set()

    def _lose(self, batch: Batch, exc: BaseException) -> None:
        batch.error = exc
        self._batch = None
        self._discard()
        batch.done.set()

    def _discard(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # the connection is already broken; a new one comes next time
                log.debug("discarding the shared write connection failed", exc_info=True)
        self._give_turn()  # after the close: the transaction ended with the connection

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Under the mutex, with no batch open: this process's turn to write the file, for a
        writer on a connection of its own."""
        self.take_turn()
        try:
            yield
        finally:
            self._give_turn()

    def take_turn(self) -> None:
        """Under the mutex: wait for this process's turn to write the file (a no-op when it
        holds it, or has no turn to take). Kept until the batch commits, or given back at
        `release` when no batch opened; the batch writer takes it before its units."""
        if self._turn is not None and not self._turn_held:
            self._turn.take()
            self._turn_held = True

    def _give_turn(self) -> None:
        if self._turn_held:
            self._turn_held = False
            assert self._turn is not None
            self._turn.give()

    def _in_transaction(self) -> bool:
        assert self._conn is not None
        dbapi = self._conn.connection.dbapi_connection
        return bool(getattr(dbapi, "in_transaction", True))

    def _check_owner(self, *_: Any) -> None:
        if self._owner != threading.get_ident():
            raise RuntimeError("a statement on the shared write connection outside its unit "
                               "(used after commit, or from another thread)")

    def close(self) -> None:
        self.acquire()
        try:
            self.flush_open()
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if self._turn is not None:
                self._turn.close()
        finally:
            self._owner = None
            self._mutex.release()
