"""Signals stored by the process's writer thread instead of a threadpool thread.

A signal sent with an API key, sized without asking the broker, needs nothing before its
write unit but parsing: it is parsed on the event loop, its unit (the key checked, the signal
stored: `services.ingest.storing`) handed to the writer (adapters/db/writer.py), and the
request answered once the commit holding it is durable. Only an immediate signal's orders,
sent after that commit, take a thread: a broker call may wait.

On PostgreSQL (the writer `alone`, its batch a transaction beside the others) an immediate
signal is not handed over: its unit locks the position row it sizes against, and a batch
would hold such locks across units in arrival order, while recording fills takes them sorted
by symbol; the two orders could deadlock. Its unit runs on a thread of its own there.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.domain.signals import Signal
from tradewire.domain.values import ExecuteMode
from tradewire.entrypoints.api.deps import key_caller
from tradewire.services import logcontext
from tradewire.services.ingest import (
    Caller,
    IngestResult,
    after_commit,
    may_wait,
    needs_equity,
    storing,
)


def caller(c: Container, headers: Headers) -> Caller | None:
    """The request's caller, to be checked inside the writer's unit; None when the request
    goes the general way (no writer, signals off, or a credential other than an API key)."""
    if not takes_signals(c):
        return None
    return key_caller(c, headers, Scope.SIGNALS_WRITE)


def takes_signals(c: Container) -> bool:
    """This process has a writer and takes signals."""
    return c.writer is not None and c.settings.signals_enabled


def takes(c: Container, signal: Signal) -> bool:
    """`signal` (parsed, its caller from `caller`) may be stored by the writer."""
    if needs_equity(signal):
        return False  # the broker is asked for the equity first
    return takes_immediate(c) or signal.execute_mode is not ExecuteMode.IMMEDIATE


def takes_immediate(c: Container) -> bool:
    """Immediate signals may be stored by the writer (not on PostgreSQL: the module's doc)."""
    return c.writer is not None and not c.writer.alone


async def ingest(c: Container, signal: Signal, who: Caller) -> IngestResult:
    """`ingest_signal`, its write unit on the writer thread (see the module's docstring)."""
    assert c.writer is not None
    logcontext.bind(signal_id=signal.id, account_id=signal.account_id)
    return await finish(c, await c.writer.run(storing(signal, who, c.deps)))


async def finish(c: Container, result: IngestResult) -> IngestResult:
    """After the writer's durable commit: `after_commit`, on a thread if it may wait."""
    if may_wait(result, c.deps):
        return await run_in_threadpool(after_commit, result, c.deps)
    return after_commit(result, c.deps)
