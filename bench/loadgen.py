"""A lean HTTP/1.1 load generator over persistent keep-alive connections.

Run as `python -m bench.loadgen` with a JSON spec on stdin; it prints one JSON object on
stdout. Two shapes of load:

- closed loop (`Spec`, see `Tally.summary`): a fixed number of connections each send the next
  body as soon as the previous answer is in; the warm-up bodies first. With `ports`, the
  connections are spread round robin over several servers.
- open loop (`OpenSpec`, `"mode": "open"`, see `run_open`): requests start on a fixed schedule
  (`rate` per second) whether or not earlier ones were answered, on a pool of connections that
  grows up to `max_connections`; each latency runs from the request's scheduled start, so time
  spent queued (in the server or waiting for a free connection) counts.

Both stop at the deadline even if some requests are left, so every run is bounded.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_ERROR_SAMPLES = 5


@dataclass(frozen=True)
class Spec:
    """What to send: every body is POSTed once to `path`, the first `warmup` unmeasured."""

    port: int
    path: str
    headers: dict[str, str]
    bodies: list[str]
    warmup: int
    connections: int
    deadline_s: float
    request_timeout_s: float
    host: str = "127.0.0.1"
    content_type: str = "application/json"
    # Several servers of one service: connection i goes to ports[i % len(ports)] (round robin).
    ports: list[int] | None = None


@dataclass
class Tally:
    """What one phase saw: latencies of 2xx answers, status counts, failures."""

    latencies_ns: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def record(self, status: int, body: bytes, elapsed_ns: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.latencies_ns.append(elapsed_ns)
            answer = _first_status_field(body)
            self.answers[answer] = self.answers.get(answer, 0) + 1
        else:
            self.fail(f"HTTP {status}: {body[:300].decode(errors='replace')}")

    def fail(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES and what not in self.samples:
            self.samples.append(what)

    def summary(self, elapsed_s: float, cpu_s: float, planned: int) -> dict[str, Any]:
        lat = sorted(self.latencies_ns)
        ok = len(lat)
        return {
            "planned": planned, "ok": ok, "errors": self.errors,
            "unsent": planned - ok - self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "answers": dict(sorted(self.answers.items())),
            "elapsed_s": elapsed_s, "rps": ok / elapsed_s if elapsed_s > 0 else 0.0,
            "p50_ms": _rank(lat, 0.50), "p99_ms": _rank(lat, 0.99),
            "max_ms": lat[-1] / 1e6 if lat else None,
            "client_cpu": cpu_s / elapsed_s if elapsed_s > 0 else 0.0,
            "error_samples": self.samples,
        }


def _first_status_field(body: bytes) -> str:
    """The first `"status":"..."` value of a JSON answer (the signal's state), or "-"."""
    return _first_field(body, b"status") or "-"


def _first_field(body: bytes, name: bytes) -> str | None:
    """The first `"<name>":"..."` string value in a compact JSON answer, found without parsing."""
    key = b'"' + name + b'":"'
    start = body.find(key)
    if start < 0:
        return None
    start += len(key)
    return body[start:body.find(b'"', start)].decode(errors="replace")


def _rank(sorted_ns: list[int], q: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return None
    return sorted_ns[max(0, math.ceil(q * len(sorted_ns)) - 1)] / 1e6


# uvicorn closes a keep-alive connection idle for 5 s; a client that writes on it then reads
# nothing back. Like HTTP clients (httpx's keep-alive expiry), reopen one idle for longer
# than this instead of racing the server's close.
IDLE_REOPEN_S = 4.0


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after a failure, `Connection: close`, or
    `IDLE_REOPEN_S` of idleness."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        now = time.monotonic()
        if self.writer is not None and now - self.last_used > IDLE_REOPEN_S:
            self.close()
        self.last_used = now
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = _framing(head)
        body = await _chunked(self.reader) if chunked else await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """Content-Length, chunked?, and Connection: close? from a response head."""
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    return length, chunked, close


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def encode(spec: Spec | OpenSpec, body: str) -> bytes:
    """The bytes of one POST request carrying `body`."""
    payload = body.encode()
    head = [f"POST {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}",
            f"Content-Type: {spec.content_type}", f"Content-Length: {len(payload)}"]
    head += [f"{k}: {v}" for k, v in spec.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


async def _drive(conn: Connection, work: Iterator[bytes], tally: Tally, deadline: float,
                 timeout_s: float) -> None:
    """Send requests one after another on `conn` until the work or the time runs out."""
    for raw in work:
        if time.monotonic() >= deadline:
            return
        start = time.perf_counter_ns()
        try:
            async with asyncio.timeout(timeout_s):
                status, body = await conn.request(raw)
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")
            conn.close()
            continue
        tally.record(status, body, time.perf_counter_ns() - start)


async def _phase(conns: list[Connection], requests: list[bytes], deadline: float,
                 timeout_s: float) -> tuple[Tally, float, float]:
    """All connections share one iterator (one thread: no lock needed); returns wall and CPU s."""
    tally, work = Tally(), iter(requests)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(_drive(c, work, tally, deadline, timeout_s) for c in conns))
    return tally, time.perf_counter() - wall0, time.process_time() - cpu0


async def run(spec: Spec) -> dict[str, Any]:
    """Warm up, then measure; the result describes the measured phase."""
    requests = [encode(spec, b) for b in spec.bodies]  # built before the clock starts
    deadline = time.monotonic() + spec.deadline_s
    ports = spec.ports or [spec.port]
    conns = [Connection(spec.host, ports[i % len(ports)]) for i in range(spec.connections)]
    warm, _, _ = await _phase(conns, requests[:spec.warmup], deadline, spec.request_timeout_s)
    measured = requests[spec.warmup:]
    tally, wall, cpu = await _phase(conns, measured, deadline, spec.request_timeout_s)
    for c in conns:
        c.close()
    out = tally.summary(wall, cpu, len(measured))
    out.update(warmup_ok=len(warm.latencies_ns), warmup_errors=warm.errors, warmup_samples=warm.samples,
               timed_out=time.monotonic() >= deadline)
    return out


@dataclass(frozen=True)
class OpenSpec:
    """Open loop: `warmup` unmeasured then `count` measured requests, `rate` per second.

    Request i carries `bodies[i % len(bodies)]` (the warm-up ones first), so a list that
    alternates buys and sells keeps alternating across the two phases.
    """

    port: int
    path: str
    headers: dict[str, str]
    bodies: list[str]
    rate: float
    count: int
    warmup: int
    max_connections: int
    deadline_s: float
    request_timeout_s: float
    host: str = "127.0.0.1"
    content_type: str = "application/json"
    mode: str = "open"


class Pool:
    """Keep-alive connections handed out one request at a time, opened on demand up to `limit`.

    Taking one is never cancelled (only the request itself has a timeout), so none is lost.
    """

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[Connection] = []
        self.opened = self.busy = self.peak_busy = self.waited = 0
        self.waiters: deque[asyncio.Future[Connection]] = deque()

    async def take(self) -> Connection:
        self.busy += 1
        self.peak_busy = max(self.peak_busy, self.busy)
        if self.idle:
            return self.idle.pop()
        if self.opened < self.limit:
            self.opened += 1
            return Connection(self.host, self.port)
        self.waited += 1
        waiter: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def give_back(self, conn: Connection) -> None:
        self.busy -= 1
        if self.waiters:
            self.waiters.popleft().set_result(conn)
        else:
            self.idle.append(conn)

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


@dataclass
class OpenTally(Tally):
    """A Tally that also keeps how late each request started and the signal ids answered."""

    start_lag_ns: list[int] = field(default_factory=list)  # due time to the task's start
    signal_ids: list[str] = field(default_factory=list)
    # Each answered signal's scheduled start on the wall clock (ns since the epoch), the clock
    # the server stamps its stage times with: the server's acknowledgement time less this is
    # the time from the request's start to the broker's acknowledgement. Converted at the
    # moment the request is sent (the wall clock read then, less the time since its due
    # time on the perf_counter clock), not with one offset for the phase: the wall clock may
    # be slewed against perf_counter's (measured here once: 5 ms a second for minutes), and
    # over a phase of 10 s that would have moved every acknowledgement by up to 50 ms.
    signal_starts: list[int] = field(default_factory=list)
    last_done_ns: int = 0


async def _scheduled(pool: Pool, raw: bytes, due_ns: int, tally: OpenTally,
                     timeout_s: float) -> None:
    """One request due at `due_ns` (perf_counter clock); its latency counts from then."""
    # How late the load generator itself was, before any wait for a free connection.
    tally.start_lag_ns.append(time.perf_counter_ns() - due_ns)
    conn = await pool.take()
    try:
        sent_ns = time.perf_counter_ns()
        due_wall_ns = time.time_ns() - (sent_ns - due_ns)  # the due time on the wall clock, now
        left = max(0.001, timeout_s - (sent_ns - due_ns) / 1e9)
        try:
            async with asyncio.timeout(left):
                status, body = await conn.request(raw)
        except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            tally.fail(f"TimeoutError: no answer {timeout_s:.0f} s after the scheduled start"
                       if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}")
            conn.close()
            return
        done = time.perf_counter_ns()
        tally.last_done_ns = max(tally.last_done_ns, done)
        tally.record(status, body, done - due_ns)
        if 200 <= status < 300:
            signal_id = _first_field(body, b"signal_id")
            if signal_id is not None:
                tally.signal_ids.append(signal_id)
                tally.signal_starts.append(due_wall_ns)
    finally:
        pool.give_back(conn)


async def _open_phase(pool: Pool, requests: list[bytes], first: int, count: int, rate: float,
                      deadline: float, timeout_s: float) -> tuple[OpenTally, int, int, float]:
    """Start `count` requests `1/rate` s apart; wait for them all. Tally, sent, t0, CPU s.

    The schedule is kept by a thread of its own (`_ticker`), which sleeps to each due time
    with the system's nanosecond sleep and then hands the request to the event loop: the
    loop's own timers fire on whole milliseconds (libuv's, epoll's), up to a millisecond
    late, and a request started late would count the load generator's lateness as the
    server's latency (measured: 0.1-0.3 ms at the median)."""
    tally, tasks = OpenTally(), set()
    loop = asyncio.get_running_loop()
    interval_ns = 1e9 / rate
    cpu0 = time.process_time()
    t0 = time.perf_counter_ns() + 2_000_000  # the first one is due 2 ms from now
    dues = [t0 + int(i * interval_ns) for i in range(count)]
    all_started: asyncio.Future[int] = loop.create_future()

    def start(i: int) -> None:
        task = asyncio.create_task(_scheduled(pool, requests[(first + i) % len(requests)],
                                              dues[i], tally, timeout_s))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def started(sent: int) -> None:
        all_started.set_result(sent)

    ticker = threading.Thread(target=_ticker, args=(loop, start, started, dues, deadline),
                              name="loadgen-ticker", daemon=True)
    ticker.start()
    sent = await all_started
    ticker.join()
    while tasks:  # every request has its own timeout, so this ends
        await asyncio.gather(*tasks)
    return tally, sent, t0, time.process_time() - cpu0


def _ticker(loop: asyncio.AbstractEventLoop, start: Callable[[int], None],
            started: Callable[[int], None], dues: list[int], deadline: float) -> None:
    """On its own thread: at each due time (perf_counter ns), have the loop start request i;
    at the end (or the deadline), tell it how many were started."""
    _fine_timer_slack()
    sent = 0
    for i, due in enumerate(dues):
        wait_ns = due - time.perf_counter_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        if time.monotonic() >= deadline:
            break
        loop.call_soon_threadsafe(start, i)
        sent += 1
    loop.call_soon_threadsafe(started, sent)


def _fine_timer_slack() -> None:
    """Linux wakes a sleeping thread up to its timer slack (50 us by default) late; 1 us
    here. Elsewhere, or without libc, the default stays."""
    try:
        import ctypes

        pr_set_timerslack = 29
        ctypes.CDLL(None).prctl(pr_set_timerslack, 1000, 0, 0, 0)
    except (OSError, AttributeError):
        pass


async def run_open(spec: OpenSpec) -> dict[str, Any]:
    """Warm up at the same rate, then measure: latencies from each request's scheduled start."""
    requests = [encode(spec, b) for b in spec.bodies]  # built before the clock starts
    deadline = time.monotonic() + spec.deadline_s
    pool = Pool(spec.host, spec.port, spec.max_connections)
    warm, _, _, _ = await _open_phase(pool, requests, 0, spec.warmup, spec.rate, deadline,
                                      spec.request_timeout_s)
    pool.peak_busy = pool.waited = 0
    tally, sent, t0, cpu = await _open_phase(pool, requests, spec.warmup, spec.count, spec.rate,
                                             deadline, spec.request_timeout_s)
    pool.close()
    span_s = (tally.last_done_ns - t0) / 1e9 if tally.last_done_ns else 0.0
    out = tally.summary(span_s, cpu, spec.count)
    lag = sorted(tally.start_lag_ns)
    out.update(
        mode="open", offered_rps=spec.rate, sent=sent,
        # Answers per second from the first scheduled start to the last answer.
        achieved_rps=out.pop("rps"),
        start_lag_p50_ms=_rank(lag, 0.50), start_lag_p99_ms=_rank(lag, 0.99),
        start_lag_max_ms=lag[-1] / 1e6 if lag else None,
        peak_in_flight=pool.peak_busy, connections_opened=pool.opened,
        waited_for_connection=pool.waited, signal_ids=tally.signal_ids,
        signal_starts_ns=tally.signal_starts,
        warmup_ok=len(warm.latencies_ns), warmup_errors=warm.errors,
        warmup_samples=warm.samples, timed_out=time.monotonic() >= deadline,
    )
    return out


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # optional: the stdlib loop works, only slower
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    raw = json.load(sys.stdin)
    coro: Coroutine[Any, Any, dict[str, Any]] = (
        run_open(OpenSpec(**raw)) if raw.get("mode") == "open" else run(Spec(**raw)))
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(coro)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
