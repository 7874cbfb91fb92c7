"""One writer thread per process for SQLite: write units handed over from the event loop.

Every API request that writes used to take a thread of the threadpool, and 64 concurrent
requests meant 64 threads taking turns on the GIL and on the group commit's mutex. Here a
request that needs nothing but its write unit hands the unit over instead: the writer thread
takes every unit waiting, runs each in its own savepoint of the group's shared transaction
(group_commit.py: a unit that fails rolls back alone), commits them together, and only then
answers each one. A unit's future therefore resolves after the commit that holds it is
durable, with the unit's result, or with the exception the unit raised (nothing of it
stored), or with the commit's error (nothing of the batch stored).

Units run one at a time in the order they were handed over, under the same mutex as every
other writer of the process, so they see and are seen exactly as units written from a thread
of their own.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from tradewire.adapters.db.engine import Database, enter_writer, leave_writer
from tradewire.adapters.db.group_commit import Batch, GroupCommit
from tradewire.adapters.db.uow import SqlUnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[Any], T]  # given the unit of work (SqlUnitOfWork), returns what the caller awaits
_STOP = object()


class _Job:
    __slots__ = ("context", "future", "unit")

    def __init__(self, unit: Unit[Any], future: Future[Any],
                 context: contextvars.Context) -> None:
        self.unit = unit
        self.future = future
        self.context = context


class BatchWriter:
    """Runs write units on one thread, many to a durable commit (SQLite's group commit)."""

    def __init__(self, db: Database, *, max_units: int = 64) -> None:
        if db.group is None:
            raise ValueError("the batch writer needs SQLite's group commit")
        self._db = db
        self._group: GroupCommit = db.group
        self.max_units = max_units
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        self.units = 0  # units committed through this writer
        self.batches = 0  # turns taken (each ends in one durable commit)

    def submit(self, unit: Unit[T]) -> Future[T]:
        """Run `unit(uow)` in a write unit; the future resolves once it is durable (or failed).

        The unit runs in a copy of the caller's context (its log fields), and must not
        commit: the writer does, for the whole batch.
        """
        future: Future[T] = Future()
        if self._closed:
            raise RuntimeError("the batch writer is closed")
        self._ensure_started()
        self._queue.put(_Job(unit, future, contextvars.copy_context()))
        return future

    def close(self) -> None:
        """Write what was handed over, then stop the thread."""
        with self._start:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)

    # -- the thread ------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="tradewire-writer", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.max_units:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
            try:
                self._write(jobs)
            except BaseException as exc:  # never leave a request waiting on a dead thread
                log.exception("the batch writer failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
            if stop:
                return

    def _write(self, jobs: list[_Job]) -> None:
        group = self._group
        written: list[tuple[_Job, Any, Batch]] = []
        enter_writer()
        try:
            group.acquire()
            try:
                for job in jobs:
                    if not job.future.set_running_or_notify_cancel():
                        continue  # the request went away before its turn: nothing stored
                    outcome = self._one(job)
                    if outcome is not None:
                        written.append((job, *outcome))
                group.flush_open()
            finally:
                group.release()
        finally:
            leave_writer()
        self.batches += 1
        for job, value, batch in written:
            batch.done.wait()  # set by the flush above, or when the batch was lost
            if batch.error is not None:
                job.future.set_exception(batch.error)
            else:
                self.units += 1
                job.future.set_result(value)

    def _one(self, job: _Job) -> tuple[Any, Batch] | None:
        """Run one unit in its savepoint: (its value, the batch holding it), or None when it
        raised (its future then holds the error and nothing of it stays)."""
        group = self._group
        try:
            uow = SqlUnitOfWork.on(self._db, group.begin_unit())
            value = job.context.run(job.unit, uow)
        except BaseException as exc:
            try:
                group.end_unit(commit=False)
            except BaseException:  # the batch is lost; its units get that error
                log.exception("rolling back a write unit failed")
            job.future.set_exception(exc)
            return None
        try:
            batch = group.end_unit(commit=True)
        except BaseException as exc:
            job.future.set_exception(exc)
            return None
        if batch is None:  # SQLite dropped the transaction under it
            job.future.set_exception(RuntimeError("the shared write transaction was rolled back"))
            return None
        return value, batch
