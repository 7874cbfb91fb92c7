"""The writer process: signals that wait (every executeMode but `immediate`) stored by a
process of their own, beside the API process, on SQLite.

One API process is bound by one core's Python: its event loop (HTTP, parsing, the answer)
and its writer thread (the write units: statements, savepoints, the group commit) take turns
on one GIL, and a `pending` signal's unit is about a third of what the process does for it.
The writer process runs those units on the other core. The API process parses the request
and hashes its API key as before, then sends the signal and the key's hash over a Unix
socket; the writer process builds the same unit (`services.ingest.storing`, the key checked
inside it), runs the units that have arrived in batches of `BATCH_UNITS`, each ending in one
durable commit (`BatchWriter.write_here`), and only then sends that batch's answers back: the
API process answers a request once the commit holding its signal is durable, exactly as with
its own writer thread.
Both processes take turns on the database file as two API processes do
(`group_commit.WriteTurn`).

What stays in the API process: `immediate` signals (their orders go out from its writer
thread right after the commit; the paper venue answers from there), everything the general
path handles (other credentials, bodies that do not parse), and every other write. If the
writer process is not ready yet, or has gone, the API process's own writer thread takes the
signals; a request whose signal was with the writer process when it went gets 503 (its
signal may or may not be stored: a retry with its sourceId answers as the original did).

The writer process exits when the API process closes the socket (its shutdown), and is killed
with it (`PR_SET_PDEATHSIG`) when the API process dies. `TRADEWIRE_WRITER_PROCESS=false` keeps
every unit in the API process. Measured in docs/performance.md (item 38).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import io
import itertools
import logging
import math
import os
import pickle
import signal as signals
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from tradewire import config
from tradewire.bootstrap import Container, build
from tradewire.domain.accounts import Scope
from tradewire.domain.errors import TradewireError
from tradewire.domain.signals import Signal
from tradewire.entrypoints import logs
from tradewire.entrypoints.api.deps import caller_of_key
from tradewire.entrypoints.api.errors import ApiError
from tradewire.entrypoints.api.limits import RateLimiter
from tradewire.services import logcontext
from tradewire.services.ingest import IngestResult, storing

log = logging.getLogger(__name__)

# Every message: its length, the request's id and its kind, then its payload; the id outside
# the payload, so that a message whose payload cannot be read is still answered.
_FRAME = struct.Struct("!IQB")
_VALUE = 0  # a value in msgpack (`_Codec`)
_PICKLED = 1  # a value msgpack would not give back equal, pickled
_ERROR = 2  # what a unit raised, pickled (`_error_pickle`)
_READY_ID = 2**64 - 1  # the writer process's first message: its pid
_READ = 1 << 16  # per recv: a larger buffer is mapped and unmapped each call (16 us more at 1 MiB)
_START_WAIT_S = 60.0  # for the writer process to import, connect and say it is ready
_STOP_WAIT_S = 30.0  # for the writer process to write what it holds, at shutdown
# Units per batch: each batch's answers go back once its commit is durable, so the API
# process answers those requests while the writer process writes the next batch (with every
# unit that had arrived in one batch, the two processes took turns: one waited while the
# other worked). 16 measured better than 8, 12, 32 or all (docs/performance.md, item 45).
BATCH_UNITS = 16


def wanted(c: Container) -> bool:
    """This process should have a writer process: it is set on, and the database is a SQLite
    file this process writes with its own writer thread (PostgreSQL is a server of its own)."""
    return (c.settings.writer_process and c.writer is not None and not c.writer.alone
            and c.db.engine.url.database not in (None, "", ":memory:"))


@dataclass(frozen=True)
class StoreSignal:
    """What the writer process is asked: store `signal` for the holder of the API key hashed
    to `key_hash` (`deps.api_key_hash`), checked inside the unit."""

    signal: Signal
    key_hash: str
    log_fields: dict[str, Any]

    def unit(self, c: Container) -> Callable[[Any], IngestResult]:
        store = storing(self.signal, caller_of_key(c, self.key_hash, Scope.SIGNALS_WRITE), c.deps)
        fields = self.log_fields

        def unit(uow: Any) -> IngestResult:
            with logcontext.scope(**fields):  # the request's id on the lines it writes
                return store(uow)

        return unit


class WriterGone(ApiError):
    """The writer process went away with the request's signal: stored or not, unknown."""

    def __init__(self) -> None:
        super().__init__(503, "The signal writer stopped; retry shortly (a retry with the same "
                         "sourceId answers as the original did)", "SERVICE_OVERLOADED",
                         headers={"Retry-After": "1"})


T = TypeVar("T")


class _Codec(Generic[T]):
    """One kind of message's value as msgpack, decoded into its own classes by its type
    (msgspec): a signal or its answer in 1-3 us each way, where pickle took 15-25 (it reduced
    every enum, dataclass, datetime and Decimal in Python and named each class by import).

    Typed fields come back as they went; a field typed `Any` (a signal's metadata and
    protection, free-form JSON) comes back as msgpack's own types. `plain(value)` says its
    free-form parts hold only JSON's types, which come back equal; otherwise the value is
    decoded again here and compared, and one msgpack would not give back equal (a Decimal or
    a tuple among them, a NaN) is pickled instead: the other side gets what was sent."""

    def __init__(self, kind: type[T], plain: Callable[[T], bool]) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(kind)
        self._plain = plain

    def encode(self, value: T) -> tuple[int, bytes]:
        try:
            data = self._encoder.encode(value)
            if self._plain(value) or self._decoder.decode(data) == value:
                return _VALUE, data
        except (TypeError, ValueError, msgspec.MsgspecError):
            pass
        return _PICKLED, pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, kind: int, data: bytes) -> T:
        if kind == _VALUE:
            return self._decoder.decode(data)
        # The socket is a socketpair between this process and the one it started (or that
        # started it): no one else's.
        value: T = pickle.loads(data)  # noqa: S301
        return value


def _json(value: Any) -> bool:
    """`value` holds only JSON's types (what msgpack gives back equal and of the same type)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(type(k) is str and _json(v) for k, v in value.items())
    if kind is list:
        return all(_json(v) for v in value)
    return False


def _plain_signal(signal: Signal) -> bool:
    """The signal's free-form fields (its metadata and protection, typed `Any` inside) hold
    only JSON's types."""
    return (type(signal.metadata) is dict and _json(signal.metadata)
            and type(signal.protection) is tuple and all(_json(p) for p in signal.protection))


_REQUESTS = _Codec(StoreSignal, lambda r: _plain_signal(r.signal) and _json(r.log_fields))
_ANSWERS = _Codec(IngestResult, lambda r: _plain_signal(r.signal))


class WriterProcess:
    """The API process's side: starts the writer process, sends it requests, hands each
    answer to the request waiting for it (all on the event loop)."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._transport: asyncio.Transport | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._ready = False
        self._gone = False
        self._started: asyncio.Future[None] | None = None
        self._out: list[bytes] = []  # requests to send when the event loop next gets to it

    @property
    def usable(self) -> bool:
        """Ready for requests: started, said so, and not gone."""
        return self._ready and not self._gone

    async def start(self) -> None:
        """Start the writer process, connect to it and wait until it is ready (the
        application's start-up: the server takes no request before). If it does not come up,
        this process writes every signal itself."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            self._proc = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
                [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),))
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        await loop.create_unix_connection(lambda: _Answers(self), sock=ours)
        try:
            await asyncio.wait_for(asyncio.shield(self._started), _START_WAIT_S)
        except (TimeoutError, WriterGone):
            log.error("the writer process did not start; signals are written in this process")

    async def store(self, request: StoreSignal) -> IngestResult:
        """`request` written by the writer process: its unit's value once durable, or the
        error it raised (nothing of it stored); `WriterGone` if the process went with it."""
        if self._transport is None or self._gone:
            raise WriterGone()
        msg_id = next(self._ids)
        frame = _frame(msg_id, *_REQUESTS.encode(request))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._waiting[msg_id] = future
        if not self._out:
            loop.call_soon(self._send)
        self._out.append(frame)
        return await future

    def _send(self) -> None:
        """Send the requests made since the last time in one write: the requests of one turn
        of the event loop reach the writer process in one system call, not one each."""
        out, self._out = self._out, []
        if self._transport is not None and not self._gone:
            self._transport.write(b"".join(out))

    async def close(self) -> None:
        """Close the socket (the writer process writes what it holds, answers, and exits),
        then wait for it (the application's shutdown)."""
        if self._transport is not None:
            if self._out:
                self._send()
            self._transport.close()
        proc = self._proc
        if proc is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, _STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.error("the writer process did not stop in %.0f s; killed", _STOP_WAIT_S)
            proc.kill()

    # -- answers, on the event loop -------------------------------------------------------

    def _connected(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def _received(self, msg_id: int, kind: int, payload: bytes) -> None:
        try:
            value = _ANSWERS.decode(kind, payload)
        except Exception as exc:  # a bug: the request gets it rather than waiting on
            value, kind = RuntimeError(f"the writer's answer could not be read: {exc!r}"), _ERROR
        if msg_id == _READY_ID:
            self.pid, self._ready = value, True
            log.info("writer process %s ready", self.pid)
            if self._started is not None and not self._started.done():
                self._started.set_result(None)
            return
        future = self._waiting.pop(msg_id, None)
        if future is None or future.done():  # the request went away meanwhile
            return
        if kind != _ERROR:
            future.set_result(value)
        else:
            future.set_exception(value)

    def _lost(self) -> None:
        self._gone = True
        if self._waiting:
            log.error("the writer process went away with %d signals unanswered (each gets "
                      "503); signals are written in this process from now on", len(self._waiting))
        elif self._ready:
            log.info("writer process %s stopped", self.pid)
        if self._started is not None and not self._started.done():
            self._started.set_exception(WriterGone())
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(WriterGone())


class _Answers(asyncio.Protocol):
    """The socket's reading side in the API process: whole messages to `WriterProcess`."""

    def __init__(self, owner: WriterProcess) -> None:
        self.owner = owner
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner._connected(transport)  # type: ignore[arg-type]  # uvloop's, a Transport's methods

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for msg_id, kind, payload in _messages(self.buffer):
            self.owner._received(msg_id, kind, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost()


def _frame(msg_id: int, kind: int, payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), msg_id, kind) + payload


def _messages(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """The whole messages at the head of `buffer` (id, kind, payload), taken out of it."""
    found, at = [], 0
    while len(buffer) - at >= _FRAME.size:
        size, msg_id, kind = _FRAME.unpack_from(buffer, at)
        end = at + _FRAME.size + size
        if len(buffer) < end:
            break
        found.append((msg_id, kind, bytes(buffer[at + _FRAME.size:end])))
        at = end
    del buffer[:at]
    return found


# -- the writer process ---------------------------------------------------------------------

def main(argv: list[str]) -> None:
    """`python -m tradewire.entrypoints.api.writer_process FD PARENT_PID`: serve the API
    process at the other end of socket FD until it closes it."""
    fd, parent = int(argv[1]), int(argv[2])
    _die_with(parent)
    signals.signal(signals.SIGINT, signals.SIG_IGN)  # Ctrl-C stops the API process, which stops us
    settings = config.load()
    logs.configure(settings.log_format)
    c = build(settings, migrate_db=False, worker_id=f"{socket.gethostname()}:{os.getpid()}",
              role="api")
    c.limiter = RateLimiter(settings.rate_limit_per_minute)
    # As the API process does (cli._serve_http): the start-up objects out of the collector's
    # sight, or a full collection walks them all with a batch waiting.
    gc.collect()
    gc.freeze()
    try:
        with socket.socket(fileno=fd) as sock:
            sock.sendall(_frame(_READY_ID, _PICKLED, pickle.dumps(os.getpid())))
            serve(c, sock)
    finally:
        c.close()


def serve(c: Container, sock: socket.socket) -> None:
    """Take the requests that have arrived and write them in batches of `BATCH_UNITS`, each
    batch's answers sent as soon as its commit is durable; again until the socket closes."""
    assert c.writer is not None
    buffer = bytearray()
    while True:
        data = sock.recv(_READ)
        if not data:
            return
        buffer += data
        requests = _messages(buffer)
        for at in range(0, len(requests), BATCH_UNITS):
            part = requests[at:at + BATCH_UNITS]
            answers = c.writer.write_here([_unit(c, kind, payload) for _, kind, payload in part])
            sock.sendall(b"".join(_answer(msg_id, value, error)
                                  for (msg_id, _, _), (value, error) in zip(part, answers,
                                                                             strict=True)))


def _unit(c: Container, kind: int, payload: bytes) -> Callable[[Any], Any]:
    """The unit of the request in `payload`; one that raises what refused it when the request
    cannot be read or its unit cannot be made (answered as that unit's error)."""
    try:
        return _REQUESTS.decode(kind, payload).unit(c)
    except Exception as exc:
        error = exc

        def refused(_: Any) -> Any:
            raise error

        return refused


def _answer(msg_id: int, value: Any, error: BaseException | None) -> bytes:
    if error is None:
        try:
            return _frame(msg_id, *_ANSWERS.encode(value))
        except Exception as exc:  # a bug: the request gets it as an error
            error = RuntimeError(f"the writer's answer could not be sent: {exc!r}")
    if not isinstance(error, TradewireError | ApiError):
        log.error("a write unit failed", exc_info=error)
    return _frame(msg_id, _ERROR, _error_pickle(error))


def _error_pickle(error: BaseException) -> bytes:
    """The error as the request will raise it: its class, arguments and attributes (an
    exception's own pickling calls its class with its arguments alone, which most of
    tradewire's refuse); its traceback stays here, logged."""
    try:
        out = io.BytesIO()
        _ErrorPickler(out, pickle.HIGHEST_PROTOCOL).dump(error)
        return out.getvalue()
    except Exception:
        return pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"),
                            pickle.HIGHEST_PROTOCOL)


class _ErrorPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, BaseException):
            return _rebuilt, (type(obj), obj.args, obj.__dict__)
        return NotImplemented


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
             ) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def _die_with(parent: int) -> None:
    """Be killed when the API process dies (Linux); exit now if it already has."""
    try:
        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signals.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # elsewhere: the socket's end tells it
    if os.getppid() != parent:
        sys.exit(0)


if __name__ == "__main__":
    # Run under the module's own name, so that what it pickles names it (not `__main__`).
    from tradewire.entrypoints.api.writer_process import main as _main

    _main(sys.argv)
