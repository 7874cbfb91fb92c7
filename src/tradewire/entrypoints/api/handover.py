"""Signals stored by the process's writer thread instead of a threadpool thread.

A signal sent with an API key, sized without asking the broker, needs nothing before its
write unit but parsing: it is parsed on the event loop, its unit (the key checked, the signal
stored: `services.ingest.storing`) handed to the writer (adapters/db/writer.py), and the
request answered once the commit holding it is durable. Only an immediate signal's orders,
sent after that commit, take a thread: a broker call may wait. Orders for the paper venue,
which answers from this process's own database, are sent by the writer thread itself right
after the commit (the unit's `then`, adapters/db/writer.py), without going back through the
event loop to a thread of the pool.

On a SQLite file served by `serve` or `api`, a waiting signal's unit (every executeMode but
`immediate`) goes to the writer process instead, once it is ready (`writer_process.py`): the
same unit, built there from the signal and the key's hash, answered after its commit there.

On PostgreSQL (the writer `alone`, its batch a transaction beside the others) an immediate
signal is not handed over: its unit locks the position row it sizes against, and a batch
would hold such locks across units in arrival order, while recording fills takes them sorted
by symbol; the two orders could deadlock. Its unit runs on a thread of its own there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.domain.signals import Signal
from tradewire.domain.values import ExecuteMode
from tradewire.entrypoints.api.deps import api_key_hash, caller_of_key, decode_json
from tradewire.entrypoints.api.writer_process import StoreSignal
from tradewire.services import logcontext
from tradewire.services.ingest import (
    IngestResult,
    after_commit,
    may_wait,
    needs_equity,
    sends_locally,
    storing,
)

Parse = Callable[..., Signal]  # a dialect's parser: parse(json, now=...)


async def stored(c: Container, headers: Headers, body: bytes, parse: Parse
                 ) -> tuple[Signal, IngestResult] | None:
    """The request's signal (parsed by the dialect's `parse`) and what storing it gave, its
    unit run by the writer; None when the request goes the general way: no writer, signals
    off, a credential other than an API key, a signal the writer does not take, or a body
    `parse` refuses (answered there after the caller is checked: a stranger learns nothing
    from a 400)."""
    key_hash = _key_hash(c, headers)
    if key_hash is None:
        return None
    try:
        signal = parse(decode_json(body), now=c.deps.clock.now())
    except Exception:
        return None
    if not _takes(c, signal):
        return None
    return signal, await _ingest(c, signal, key_hash)


def _key_hash(c: Container, headers: Headers) -> str | None:
    """The hash of the request's API key, its caller to be checked inside the unit; None when
    the request goes the general way (no writer, signals off, or a credential other than an
    API key)."""
    if not _takes_signals(c):
        return None
    return api_key_hash(c, headers)


def _takes_signals(c: Container) -> bool:
    """This process has a writer and takes signals."""
    return c.writer is not None and c.settings.signals_enabled


def _takes(c: Container, signal: Signal) -> bool:
    """`signal` (parsed, its caller known by `_key_hash`) may be stored by the writer."""
    if needs_equity(signal):
        return False  # the broker is asked for the equity first
    return takes_immediate(c) or signal.execute_mode is not ExecuteMode.IMMEDIATE


def takes_immediate(c: Container) -> bool:
    """Immediate signals may be stored by the writer (not on PostgreSQL: the module's doc)."""
    return _takes_signals(c) and c.writer is not None and not c.writer.alone


async def _ingest(c: Container, signal: Signal, key_hash: str) -> IngestResult:
    """`ingest_signal`, its write unit on the writer thread, or in the writer process (see
    the module's docstring)."""
    assert c.writer is not None
    logcontext.bind(signal_id=signal.id, account_id=signal.account_id)
    if signal.execute_mode is not ExecuteMode.IMMEDIATE and _writer_process(c):
        request = StoreSignal(signal, key_hash, logcontext.fields())
        return await finish(c, await c.writer_process.store(request))
    unit = storing(signal, caller_of_key(c, key_hash, Scope.SIGNALS_WRITE), c.deps)
    if signal.execute_mode is ExecuteMode.IMMEDIATE:  # its orders may go out from the writer
        return await sent(c, await c.writer.run(unit, then=then(c)))
    return await finish(c, await c.writer.run(unit))  # answered with its batch


def _writer_process(c: Container) -> bool:
    """A writer process is ready for this process's waiting signals."""
    return c.writer_process is not None and c.writer_process.usable


async def finish(c: Container, result: IngestResult) -> IngestResult:
    """After the writer's durable commit: `after_commit`, on a thread if it may wait."""
    if may_wait(result, c.deps):
        return await run_in_threadpool(after_commit, result, c.deps)
    return after_commit(result, c.deps)


@dataclass(frozen=True)
class _Later:
    """A stored signal whose `after_commit` may wait: run on a thread by `sent`."""

    result: IngestResult


def then(c: Container) -> Callable[[IngestResult], IngestResult | _Later]:
    """A writer unit's `then` (immediate signals): `after_commit` on the writer thread, right
    after the commit, when it waits on nothing but this database (orders for the paper venue,
    or nothing to send); otherwise left to `sent`, on a thread."""

    def after(result: IngestResult) -> IngestResult | _Later:
        if may_wait(result, c.deps) and not sends_locally(result, c.deps):
            return _Later(result)
        return after_commit(result, c.deps)

    return after


async def sent(c: Container, done: IngestResult | _Later) -> IngestResult:
    """What the writer answered for a unit given `then(c)`, the rest done."""
    if isinstance(done, _Later):
        return await run_in_threadpool(after_commit, done.result, c.deps)
    return done
