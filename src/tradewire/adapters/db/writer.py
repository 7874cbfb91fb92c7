"""One writer thread per process: write units handed over from the event loop.

Every API request that writes used to take a thread of the threadpool, and 64 concurrent
requests meant 64 threads taking turns on the GIL and on the group commit's mutex. Here a
request that needs nothing but its write unit hands the unit over instead: the writer thread
takes every unit waiting, runs each in its own savepoint of the group's shared transaction
(group_commit.py: a unit that fails rolls back alone), commits them together, and only then
answers each one. A unit's future therefore resolves after the commit that holds it is
durable, with the unit's result, or with the exception the unit raised (nothing of it
stored), or with the commit's error (nothing of the batch stored).

Units run one at a time in the order they were handed over. On SQLite they take turns under
the same mutex as every other writer of the process, so they see and are seen exactly as
units written from a thread of their own. On PostgreSQL the writer's batches are a
transaction of their own on a connection of their own, beside the other writers' (see
`BatchWriter`); one thread there too (two or four threads measured no better on two cores).

A unit may come with a `then`: what the request does next, run on the writer thread once the
commit holding the unit is durable, its value the answer. It is for work that waits on nothing
but this database (an immediate signal's order sent to the paper venue, which answers from
it): the request's next step starts at once, instead of after a hop back to the event loop and
out to a thread of the pool (about 180 us between the commit and the send, measured). Answers
without one go out first; each `then` after them, in turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from tradewire.adapters.db.engine import Database, enter_writer, leave_writer
from tradewire.adapters.db.group_commit import Batch, GroupCommit
from tradewire.adapters.db.uow import SqlUnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[Any], T]  # given the unit of work (SqlUnitOfWork), returns what the caller awaits
_STOP = object()


class _Here:
    """Where `write_here`'s answers go: back to its caller on the same thread, who cannot have
    gone away (a thread's `Future` for each would cost a lock and a condition per unit)."""

    __slots__ = ()

    @staticmethod
    def cancelled() -> bool:
        return False


_HERE = _Here()


class _Job:
    """A unit handed over, and where its answer goes: a thread's `Future`, or an asyncio
    future of `loop` (answered from the loop itself, a whole batch in one call)."""

    __slots__ = ("context", "future", "loop", "then", "unit")

    def __init__(self, unit: Unit[Any], future: Future[Any] | asyncio.Future[Any] | _Here,
                 context: contextvars.Context, loop: asyncio.AbstractEventLoop | None,
                 then: Callable[[Any], Any] | None = None) -> None:
        self.unit = unit
        self.future = future
        self.context = context
        self.loop = loop
        self.then = then

    def start(self) -> bool:
        """False when whoever waits for it has gone away (nothing of it is written then)."""
        if isinstance(self.future, Future):
            return self.future.set_running_or_notify_cancel()
        return not self.future.cancelled()


class BatchWriter:
    """Runs write units on one thread, many to a durable commit.

    On SQLite it shares the process's group commit with every other writer. On PostgreSQL,
    where each other writer has a transaction of its own, the writer's batches are one more
    transaction beside them (`alone`): a batch holds the row locks of all its units until its
    commit, taken in the order the units arrived, so only units that lock no row others lock
    in an order of their own should be handed to it (see entrypoints/api/handover.py). Two
    processes' batches that each insert the same two new keys in opposite orders (the same
    two signals sent to both at the same instant, crossed) wait on each other until
    PostgreSQL ends one of the statements (deadlock detection, 1 s): the units before that
    one commit, releasing their locks, and that unit runs again at the head of a new batch,
    where it waits for the other batch and then finds what it wrote.
    """

    def __init__(self, db: Database, *, max_units: int = 64) -> None:
        self._db = db
        self.alone = db.group is None
        self._group: GroupCommit = db.group or GroupCommit(db.engine, max_units=max_units)
        self.max_units = max_units
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self._stopping = False  # the stop was taken from the queue: end after this batch
        self.units = 0  # units committed through this writer
        self.batches = 0  # turns taken (each ends in one durable commit)

    def submit(self, unit: Unit[T]) -> Future[T]:
        """Run `unit(uow)` in a write unit; the future resolves once it is durable (or failed).

        The unit runs in a copy of the caller's context (its log fields), and must not
        commit: the writer does, for the whole batch.
        """
        future: Future[T] = Future()
        self._put(_Job(unit, future, contextvars.copy_context(), None))
        return future

    async def run(self, unit: Unit[T], then: Callable[[T], Any] | None = None) -> Any:
        """`submit` from the event loop, awaited: the answers of one batch reach the loop in
        one wake-up rather than one each. With `then`, the answer is `then(value)`, run on
        the writer thread after the commit (see the module's docstring): only for work that
        waits on nothing but this database."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put(_Job(unit, future, contextvars.copy_context(), loop, then))
        return await future

    def write_here(self, units: list[Unit[Any]]) -> list[tuple[Any, BaseException | None]]:
        """Run `units` in batches of at most `max_units` on the calling thread, each batch
        ending in one durable commit; per unit, in order, (its value, None) or (None, the
        error: the unit's own, nothing of it stored, or its batch's commit's). For a process
        whose one job is writing (the writer process, entrypoints/api/writer_process.py):
        it takes the units waiting and writes them itself, with no thread to hand over to.
        Units run in the caller's context; nothing may be waiting in this writer's queue."""
        done: dict[int, tuple[Any, BaseException | None]] = {}
        jobs = [_Job(unit, _HERE, contextvars.copy_context(), None) for unit in units]
        for at in range(0, len(jobs), self.max_units):
            batch = jobs[at:at + self.max_units]
            answers: list[tuple[_Job, Any, BaseException | None]] = []
            try:
                self._write(batch, answers)
            except BaseException as exc:  # the batch is lost: every unit not answered gets it
                log.exception("the batch writer failed")
                answers += [(job, None, exc) for job in batch]
            for job, value, error in answers:
                done.setdefault(id(job), (value, error))
        return [done[id(job)] for job in jobs]

    def _put(self, job: _Job) -> None:
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        self._ensure_started()
        self._queue.put(job)

    def close(self) -> None:
        """Write what was handed over, then stop the thread."""
        with self._start:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)
        if self.alone:  # the writer's own connection
            self._group.close()

    # -- the thread ------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start:  # first use, or (a bug) the thread died: a new one takes the queue
            if (self._thread is None or not self._thread.is_alive()) and not self._closed:
                thread = threading.Thread(target=self._run, name="tradewire-writer", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            answers: list[tuple[_Job, Any, BaseException | None]] = []
            try:
                self._write(jobs, answers)
            except BaseException as exc:  # never leave a request waiting on a dead thread
                log.exception("the batch writer failed")
                answered = {id(job) for job, _, _ in answers}
                answers += [(job, None, exc) for job in jobs if id(job) not in answered]
            _answer([a for a in answers if a[0].then is None or a[2] is not None])
            for job, value, error in answers:
                if job.then is not None and error is None:
                    _answer([_then(job, value)])
            if self._stopping:
                return

    def _drain(self, jobs: list[_Job]) -> None:
        """Add the units waiting now to `jobs`, up to `max_units` (noting a stop among them)."""
        while len(jobs) < self.max_units and not self._stopping:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is _STOP:
                self._stopping = True
            else:
                jobs.append(job)

    def _write(self, jobs: list[_Job], answers: list[tuple[_Job, Any, BaseException | None]]
               ) -> None:
        """Run `jobs` and commit them; each one's answer goes to `answers`."""
        group = self._group
        written: list[tuple[_Job, Any, Batch]] = []
        enter_writer()
        try:
            group.acquire()
            try:
                # The batch takes the units waiting once it may write (on SQLite, once other
                # processes' writers let go of the file, which may take one of their batches):
                # what arrived meanwhile joins this commit instead of waiting for the next.
                group.take_turn()
                self._drain(jobs)
                for job in jobs:
                    if not job.start():
                        continue  # the request went away before its turn: nothing stored
                    value, batch, error = self._one(job)
                    if batch is None and deadlocked(error):
                        # Chosen by PostgreSQL to end a deadlock with another transaction
                        # (another process's batch, waiting on rows this batch holds): commit
                        # the units before it, so their locks go, then run it again at the
                        # head of a new batch, where it waits for that transaction instead.
                        log.warning("a write unit ended a deadlock; written again after the "
                                    "units before it")
                        group.flush_open()
                        value, batch, error = self._one(job)
                    if batch is None:
                        answers.append((job, None, error))
                    else:
                        written.append((job, value, batch))
                group.flush_open()
            finally:
                group.release()
        finally:
            leave_writer()
        self.batches += 1
        for job, value, batch in written:
            batch.done.wait()  # set by the flush above, or when the batch was lost
            if batch.error is None:
                self.units += 1
            answers.append((job, value, batch.error))

    def _one(self, job: _Job) -> tuple[Any, Batch | None, BaseException | None]:
        """Run one unit in its savepoint: (its value, the batch holding it, None), or
        (None, None, the error) when it failed and nothing of it stays."""
        group = self._group
        try:
            uow = SqlUnitOfWork.on(self._db, group.begin_unit())
            value = job.context.run(job.unit, uow)
        except BaseException as exc:
            try:
                group.end_unit(commit=False)
            except BaseException:  # the batch is lost; its units get that error
                log.exception("rolling back a write unit failed")
            return None, None, exc
        try:
            batch = group.end_unit(commit=True)
        except BaseException as exc:
            return None, None, exc
        if batch is None:  # SQLite dropped the transaction under it
            return None, None, RuntimeError("the shared write transaction was rolled back")
        return value, batch, None


def deadlocked(error: BaseException | None) -> bool:
    """PostgreSQL ended the statement to break a deadlock (SQLSTATE 40P01)."""
    return (isinstance(error, DBAPIError)
            and getattr(error.orig, "sqlstate", None) == "40P01")


def _then(job: _Job, value: Any) -> tuple[_Job, Any, BaseException | None]:
    """The job's `then` of its committed value, in the job's context, as its answer."""
    assert job.then is not None
    try:
        return job, job.context.run(job.then, value), None
    except BaseException as exc:  # the request gets it, as from its own thread
        return job, None, exc


def _answer(answers: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """Give every answer: threads' futures at once, each event loop's in one call."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, BaseException | None]]] = {}
    for job, value, error in answers:
        if job.loop is None:
            assert isinstance(job.future, Future)
            try:
                if error is None:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(error)
            except InvalidStateError:  # cancelled before its turn
                continue
        else:
            loops.setdefault(job.loop, []).append((job.future, value, error))
    for loop, settled in loops.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("answers for a closed event loop dropped")


def _settle(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in settled:
        if future.done():  # cancelled meanwhile
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
