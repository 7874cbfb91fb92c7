"""A Jepsen-style crash harness for `tradewire serve` (issue 8, point 1).

Several client threads send signals to a real `tradewire serve` process while a nemesis
thread kills it: with SIGKILL at random moments, and at named failpoints (the process is
restarted with TRADEWIRE_FAILPOINTS set and dies by itself there). After each kill the
server is started again on the same data; the clients carry on against the new process.

Every request is recorded as

* ok: a 2xx answer (with the id of the signal it names),
* failed: a definite 4xx answer (the request changed nothing),
* unknown: no answer (connection reset, timeout) or a 5xx.

At the end the server is left to settle (the worker's sweep sends the orders whose request
died, runs the jobs that came due) and the database is checked directly:

* lost: a sourceId answered 2xx has no live signal, or the live one is not the one answered;
* duplicated: a sourceId with two live signals, a signal with two orders for one leg, an
  order that reached the (paper) broker twice or that the broker has and we never stored,
  a sourceId acknowledged with two different signal ids, fills that disagree with the
  broker's;
* stuck: anything not in a definite state after the settle (a signal queued or due but not
  run, an order new or submitting, a job due and not done, an expiry without its reason);
* phantom: a signal whose every request was refused with a 4xx, or that nobody sent.

The sizes come from a `Plan`; `Plan.from_env` reads TW_SOAK_* so `make soak` can run the
same code longer. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, select

from tests.e2e.conftest import Cli, Service
from tradewire.adapters.db import tables as t

SYMBOL = "BTC/USDT"  # a 24/7 market: market orders are sent at once whatever the wall clock
PRICE = 1  # cheap, so thousands of buys never run out of the default 100,000 cash
# The kill schedule repeats: a random SIGKILL, the process dying after a signal's commit and
# before its answer, another random SIGKILL, dying after the broker accepted an order and
# before tradewire recorded it.
KILL_PATTERN: tuple[str | None, ...] = (None, "signal-committed", None, "broker-accepted")
FAILPOINT_EXIT = 137  # bootstrap._failpoints: os._exit(137)
FAILPOINT_WAIT_S = 15  # a failpoint not reached by then: SIGKILL instead (counted as random)
REQUEST_TIMEOUT_S = 10
# After the load: the worker sends orders whose request died (a request's reservation is
# 10 s; an order killed mid-send waits for its 30 s submit lease to lapse), runs due jobs.
SETTLE_TIMEOUT_S = 75
LIVE_EXCLUDED = ("rejected", "replaced")  # kept for the record; they free their sourceId
FINAL_SIGNAL = frozenset({"executed", "expired", "rejected", "cancelled", "replaced"})


@dataclass(frozen=True)
class Plan:
    kills: int
    seconds: float  # bound on the load phase (the kills stop when it is over)
    clients: int = 4
    seed: int = 8
    min_gap_s: float = 0.3  # load between a restart and the next random kill
    max_gap_s: float = 3.0

    @classmethod
    def from_env(cls, kills: int, seconds: float) -> Plan:
        """The CI size given, or the TW_SOAK_* environment's (`make soak`)."""
        env = os.environ
        return cls(kills=int(env.get("TW_SOAK_KILLS", kills)),
                   seconds=float(env.get("TW_SOAK_SECONDS", seconds)),
                   clients=int(env.get("TW_SOAK_CLIENTS", cls.clients)),
                   seed=int(env.get("TW_SOAK_SEED", cls.seed)),
                   max_gap_s=float(env.get("TW_SOAK_MAX_GAP", cls.max_gap_s)))


# ---- what the clients were told ----------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    source_id: str
    kind: str  # immediate | scheduled | invalid | replay
    outcome: str  # ok | failed | unknown | refused (connection refused: never sent)
    status: int | None
    signal_id: str | None
    note: str = ""


@dataclass
class History:
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # sourceId -> body
    attempts: list[Attempt] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # sourceIds whose first try came back
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: dict[str, Any], attempt: Attempt, *, first: bool) -> None:
        with self.lock:
            self.attempts.append(attempt)
            if first:
                self.bodies[attempt.source_id] = body
                self.answered.append(attempt.source_id)

    def pick_replay(self, rng: random.Random, now: datetime) -> dict[str, Any] | None:
        """A body sent before, still valid for a while (a body past its validUntil is
        refused at parse time, before the sourceId is looked up)."""
        with self.lock:
            if not self.answered:
                return None
            for _ in range(5):
                body = self.bodies[rng.choice(self.answered)]
                until = body.get("validUntil")
                if until is None or parse_utc(until) > now + timedelta(seconds=1):
                    return body
        return None

    def by_source(self) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = defaultdict(list)
        for a in self.attempts:
            out[a.source_id].append(a)
        return out


def classify(r: httpx.Response) -> tuple[str, str | None]:
    if 200 <= r.status_code < 300:
        signal = r.json().get("signal") or {}
        return "ok", signal.get("id")
    if 400 <= r.status_code < 500:
        return "failed", None
    return "unknown", None


def at_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def parse_utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# ---- the server under test ---------------------------------------------------------------

@dataclass
class Creds:
    account_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


def bootstrap(cli: Cli, service: Service) -> Creds:
    """First start (it writes the initial credentials), then a 24/7 paper account of the
    admin. The service is left running."""
    service.start()
    data = json.loads((cli.data_dir / "initial-credentials.json").read_text())
    account = cli.json("accounts", "create", "--name", "harness", "--market", "24/7")
    return Creds(account["id"], data["api_key"])


class Target:
    """The service, restarted on the same data, optionally armed with a failpoint. `up` is
    set while a process is believed to answer."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.base_env = {k: v for k, v in service.env.items() if k != "TRADEWIRE_FAILPOINTS"}
        self.up = threading.Event()
        self.armed: str | None = None
        self._url = service.url if service.running else ""
        if service.running:
            self.up.set()

    @property
    def url(self) -> str:
        return self._url

    def start(self, failpoint: str | None) -> bool:
        """Start a process; False when it died at its failpoint before it was ready (the
        worker's sweep can reach `broker-accepted` on its own at start)."""
        env = dict(self.base_env)
        if failpoint:
            env["TRADEWIRE_FAILPOINTS"] = failpoint
        self.service.env = env
        try:
            self.service.start()
        except AssertionError:
            proc = self.service.proc
            if failpoint and proc is not None and proc.poll() == FAILPOINT_EXIT:
                self.service.proc = None
                return False
            raise
        self._url = self.service.url
        self.armed = failpoint
        self.up.set()
        return True

    def sigkill(self) -> None:
        self.up.clear()
        self.service.kill()

    def wait_for_failpoint(self, timeout: float) -> int | None:
        """Wait for the armed process to exit by itself: its exit code (FAILPOINT_EXIT when
        it died at the failpoint), or None when it did not within `timeout` (SIGKILLed)."""
        proc = self.service.proc
        assert proc is not None
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # nothing reached the point
            self.sigkill()
            return None
        self.up.clear()
        self.service.proc = None
        return code


# ---- load and nemesis --------------------------------------------------------------------

class Workload:
    """Client threads sending a mix of signals until told to stop."""

    def __init__(self, target: Target, creds: Creds, plan: Plan, history: History) -> None:
        self.target = target
        self.creds = creds
        self.plan = plan
        self.history = history
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True,
                                         name=f"harness-client-{i}")
                        for i in range(plan.clients)]

    def __enter__(self) -> Workload:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for th in self.threads:
            th.join(timeout=REQUEST_TIMEOUT_S + 5)
        assert not any(th.is_alive() for th in self.threads), "a client thread hangs"

    def _client(self, i: int) -> None:
        rng = random.Random(self.plan.seed * 1000 + i)
        serial = 0
        with httpx.Client(headers=self.creds.headers, timeout=REQUEST_TIMEOUT_S) as http:
            while not self.stop.is_set():
                if not self.target.up.wait(timeout=0.2):
                    continue
                url = self.target.url
                roll = rng.random()
                if roll < 0.05:
                    with contextlib.suppress(httpx.HTTPError):
                        http.post(f"{url}/api/v1/market/prices",
                                  json={"symbol": SYMBOL, "price": PRICE})
                    continue
                if roll < 0.25:
                    body = self.history.pick_replay(rng, datetime.now(UTC))
                    if body is not None:
                        self._send(http, url, body, "replay", first=False)
                    continue
                serial += 1
                source_id = f"h{self.plan.seed}-c{i}-{serial}"
                kind, body = self._new_body(rng, source_id, roll)
                self._send(http, url, body, kind, first=True)

    def _new_body(self, rng: random.Random, source_id: str,
                  roll: float) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"symbol": SYMBOL, "action": "openLong", "quantity": 1,
                                "accountId": self.creds.account_id, "sourceId": source_id}
        if roll < 0.65:
            return "immediate", {**body, "executeMode": "immediate"}
        if roll < 0.9:
            due = datetime.now(UTC) + timedelta(seconds=rng.uniform(0.5, 2.5))
            body.update(executeMode="scheduled", scheduledProcessAt=at_utc(due), timezone="UTC")
            if rng.random() < 0.5:  # may lapse while the server is down: expires, saying why
                body["validUntil"] = at_utc(due + timedelta(seconds=rng.uniform(0.3, 1.5)))
            return "scheduled", body
        # A definite 4xx: refused by validation, before anything is stored.
        if rng.random() < 0.5:
            return "invalid", {**body, "executeMode": "scheduled"}  # no scheduledProcessAt
        return "invalid", {**body, "executeMode": "immediate", "quantity": -1}

    def _send(self, http: httpx.Client, url: str, body: dict[str, Any], kind: str, *,
              first: bool) -> None:
        source_id = body["sourceId"]
        try:
            r = http.post(f"{url}/api/v1/signals", json=body)
        except httpx.ConnectError as exc:  # refused: the request never reached a server
            attempt = Attempt(source_id, kind, "refused", None, None, type(exc).__name__)
            time.sleep(0.1)  # the server is down; the nemesis is restarting it
        except httpx.HTTPError as exc:  # sent, and the answer is lost: unknown
            attempt = Attempt(source_id, kind, "unknown", None, None, type(exc).__name__)
            time.sleep(0.05)
        else:
            try:
                outcome, signal_id = classify(r)
            except ValueError:  # a 2xx without JSON would be a bug: no proof of storage
                outcome, signal_id = "unknown", None
            attempt = Attempt(source_id, kind, outcome, r.status_code, signal_id,
                              r.text[:200] if outcome != "ok" else "")
        self.history.add(body, attempt, first=first)


@dataclass
class Kill:
    at_s: float
    how: str  # random | <failpoint name> | <failpoint name>@start | crash:exit N


class Nemesis:
    """Kills the server `plan.kills` times (bounded by `plan.seconds`), restarting it after
    each kill; arms the failpoints of KILL_PATTERN on the restarts that precede them."""

    def __init__(self, target: Target, plan: Plan) -> None:
        self.target = target
        self.plan = plan
        self.kills: list[Kill] = []
        self.restarts: list[float] = []  # seconds each restart took to be ready
        self.rng = random.Random(plan.seed)
        self.started = time.monotonic()

    def run(self) -> None:
        deadline = self.started + self.plan.seconds
        while len(self.kills) < self.plan.kills and time.monotonic() < deadline:
            how = KILL_PATTERN[len(self.kills) % len(KILL_PATTERN)]
            if how is None:
                time.sleep(self.rng.uniform(self.plan.min_gap_s, self.plan.max_gap_s))
                self.target.sigkill()
                self._record("random")
            else:
                code = self.target.wait_for_failpoint(FAILPOINT_WAIT_S)
                if code is None:
                    self._record("random")  # the point was not reached in time: SIGKILLed
                else:  # anything but the failpoint's own exit is a crash: a finding
                    self._record(how if code == FAILPOINT_EXIT else f"crash:exit {code}")
            time.sleep(self.rng.uniform(0.0, 0.3))  # down for a moment
            self._restart()
        if self.target.armed:  # time ran out before that kill: no failpoint in the settle
            self.target.sigkill()
            self._record("random")
            self._restart(final=True)
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _restart(self, *, final: bool = False) -> None:
        """Start again, armed for the next kill if it is a failpoint; a process that dies
        at its failpoint while starting counts as that kill."""
        for _ in range(2 * len(KILL_PATTERN) + 2):
            last = final or len(self.kills) >= self.plan.kills
            armed = None if last else KILL_PATTERN[len(self.kills) % len(KILL_PATTERN)]
            began = time.monotonic()
            if self.target.start(armed):
                self.restarts.append(time.monotonic() - began)
                return
            self._record(f"{armed}@start")
        raise AssertionError("the server keeps dying at start")

    def _record(self, how: str) -> None:
        self.kills.append(Kill(round(time.monotonic() - self.started, 2), how))


# ---- the checks --------------------------------------------------------------------------

@dataclass
class Report:
    db: str
    plan: Plan
    kills: list[Kill] = field(default_factory=list)
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    broker_orders: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    phantom: list[str] = field(default_factory=list)
    seconds: float = 0.0
    restart_s: float = 0.0  # mean time for a restarted server to be ready

    @property
    def crashes(self) -> list[Kill]:
        """Deaths nobody caused: the server exited by itself, not at its failpoint."""
        return [k for k in self.kills if k.how.startswith("crash")]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.phantom or self.crashes)

    def line(self) -> str:
        how = Counter(k.how.split("@")[0] for k in self.kills)
        return (f"crash-harness db={self.db} lost={len(self.lost)} "
                f"duplicated={len(self.duplicated)} stuck={len(self.stuck)} "
                f"kills={len(self.kills)} requests={self.requests} "
                f"phantom={len(self.phantom)} ok={self.outcomes['ok']} "
                f"failed={self.outcomes['failed']} unknown={self.outcomes['unknown']} "
                f"refused={self.outcomes['refused']} "
                f"signals={self.signals} broker_orders={self.broker_orders} "
                f"random_kills={how['random']} "
                f"signal_committed_kills={how['signal-committed']} "
                f"broker_accepted_kills={how['broker-accepted']} "
                f"clients={self.plan.clients} restart_s={self.restart_s:.1f} "
                f"seconds={self.seconds:.0f}")

    def problems(self, limit: int = 12) -> str:
        out = [*self.lost, *self.duplicated, *self.stuck, *self.phantom,
               *(f"crash: the server died by itself at {k.at_s}s ({k.how})"
                 for k in self.crashes)]
        return "\n".join(out[:limit]) + (f"\n... {len(out) - limit} more" if len(out) > limit
                                         else "")


def engine_for(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


@dataclass
class Snapshot:
    """The account's rows, read directly from the database."""

    signals: list[Any]
    orders: list[Any]
    jobs: list[Any]
    broker: list[Any]
    fills: list[Any]
    broker_fills: list[Any]
    positions: list[Any]

    @classmethod
    def read(cls, engine: Engine, account_id: str) -> Snapshot:
        with engine.connect() as conn:
            def rows(stmt: Any) -> list[Any]:
                return list(conn.execute(stmt))
            return cls(
                signals=rows(select(t.signals).where(t.signals.c.account_id == account_id)),
                orders=rows(select(t.orders).where(t.orders.c.account_id == account_id)),
                jobs=rows(select(t.jobs).where(t.jobs.c.account_id == account_id)),
                broker=rows(select(t.paper_orders).where(
                    t.paper_orders.c.account_ref == account_id)),
                fills=rows(select(t.fills).where(t.fills.c.account_id == account_id)),
                broker_fills=rows(select(t.paper_fills).where(
                    t.paper_fills.c.account_ref == account_id)),
                positions=rows(select(t.positions).where(
                    t.positions.c.account_id == account_id)))


def find_stuck(snap: Snapshot, now: datetime) -> list[str]:
    """Everything not in a definite state at `now`."""
    out = []
    for s in snap.signals:
        due = s.scheduled_at is not None and s.scheduled_at <= now
        if s.status in ("queued", "waiting") or (s.status == "scheduled" and due):
            out.append(f"stuck: signal {s.id} ({s.source_id}) is {s.status}")
        elif s.status == "expired" and not s.status_reason:
            out.append(f"stuck: signal {s.id} ({s.source_id}) expired without a reason")
        elif s.status not in FINAL_SIGNAL and s.status != "scheduled":
            out.append(f"stuck: signal {s.id} ({s.source_id}) is {s.status}")
    out += [f"stuck: order {o.id} of signal {o.signal_id} is {o.status}"
            for o in snap.orders if o.status in ("new", "submitting")]
    for j in snap.jobs:
        if j.status in ("scheduled", "running") and j.due_at <= now:
            out.append(f"stuck: job {j.id} of signal {j.signal_id} is {j.status}, due {j.due_at}")
        elif j.status == "expired" and not j.result:
            out.append(f"stuck: job {j.id} of signal {j.signal_id} expired without a reason")
    return out


def settle(engine: Engine, account_id: str, history: History,
           timeout: float = SETTLE_TIMEOUT_S) -> Snapshot:
    """Wait (bounded) until every scheduled time has passed and nothing is stuck."""
    due = [parse_utc(b["scheduledProcessAt"]) for b in history.bodies.values()
           if "scheduledProcessAt" in b]
    last_due = max(due, default=datetime.now(UTC))
    deadline = time.monotonic() + timeout
    while True:
        snap = Snapshot.read(engine, account_id)
        now = datetime.now(UTC)
        if now > last_due and not find_stuck(snap, now):
            return snap
        if time.monotonic() > deadline:
            return snap
        time.sleep(0.5)


def check(history: History, snap: Snapshot, report: Report) -> None:
    """Compare what the clients were told with what the database holds."""
    now = datetime.now(UTC)
    report.requests = sum(a.outcome != "refused" for a in history.attempts)
    report.outcomes = Counter(a.outcome for a in history.attempts)
    report.kinds = Counter(a.kind for a in history.attempts)
    report.signals = len(snap.signals)
    report.broker_orders = len(snap.broker)
    live: dict[str, list[Any]] = defaultdict(list)
    for s in snap.signals:
        if s.status not in LIVE_EXCLUDED:
            live[s.source_id].append(s)
    attempts = history.by_source()

    for sid, tries in attempts.items():
        acked = {a.signal_id for a in tries if a.outcome == "ok"}
        held = live.get(sid, [])
        if acked and not held:
            report.lost.append(f"lost: {sid} was answered 2xx ({sorted(map(str, acked))}) "
                               "and is not stored")
        elif acked and not acked <= {s.id for s in held}:
            report.lost.append(f"lost: {sid} answered as {sorted(map(str, acked))}, stored as "
                               f"{[s.id for s in held]}")
        if len(acked) > 1:
            report.duplicated.append(f"duplicated: {sid} acknowledged as two signals {acked}")
        if held and all(a.outcome in ("failed", "refused") for a in tries):
            report.phantom.append(f"phantom: {sid} was refused with "
                                  f"{[a.status for a in tries]} and is stored "
                                  f"({held[0].status})")
    for sid, held in live.items():
        if len(held) > 1:
            report.duplicated.append(f"duplicated: sourceId {sid} has {len(held)} live signals")
        if sid not in attempts:
            report.phantom.append(f"phantom: signal {held[0].id} ({sid}) nobody sent")

    legs = Counter((o.signal_id, o.purpose) for o in snap.orders)
    report.duplicated += [f"duplicated: signal {sig} has {n} {purpose} orders"
                          for (sig, purpose), n in legs.items() if n > 1]
    ours = {o.client_order_id: o for o in snap.orders}
    sent = Counter(b.client_order_id for b in snap.broker)
    report.duplicated += [f"duplicated: {coid} reached the broker {n} times"
                          for coid, n in sent.items() if n > 1]
    report.duplicated += [f"duplicated: the broker has {coid}, which tradewire never stored"
                          for coid in sent if coid not in ours]
    per_signal = Counter((ours[c].signal_id, ours[c].purpose) for c in sent if c in ours)
    report.duplicated += [f"duplicated: signal {sig} reached the broker {n} times ({purpose})"
                          for (sig, purpose), n in per_signal.items() if n > 1]

    # Fills: what the broker filled is what tradewire recorded and what the position holds.
    broker_qty = sum((Decimal(f.qty) for f in snap.broker_fills), Decimal(0))
    our_qty = sum((Decimal(f.qty) for f in snap.fills), Decimal(0))
    held_qty = sum((Decimal(p.qty) for p in snap.positions), Decimal(0))
    if not broker_qty == our_qty == held_qty:
        report.duplicated.append(f"duplicated: the broker filled {broker_qty}, tradewire "
                                 f"recorded {our_qty}, the position holds {held_qty}")
    report.stuck = find_stuck(snap, now)


# ---- one run -----------------------------------------------------------------------------

def run(db: str, plan: Plan, cli: Cli, service: Service, url: str) -> Report:
    """Bootstrap, load with kills, settle, check. Leaves the service killed. With
    TW_SOAK_RESULTS set, the report's line is appended to that file."""
    started = time.monotonic()
    creds = bootstrap(cli, service)
    engine = engine_for(url)
    try:
        with httpx.Client(base_url=service.url, headers=creds.headers, timeout=15) as c:
            r = c.post("/api/v1/market/prices", json={"symbol": SYMBOL, "price": PRICE})
            assert r.status_code == 200, r.text
        history = History()
        target = Target(service)
        nemesis = Nemesis(target, plan)
        with Workload(target, creds, plan, history):
            nemesis.run()
        snap = settle(engine, creds.account_id, history)
        report = Report(db, plan, kills=nemesis.kills,
                        restart_s=sum(nemesis.restarts) / max(1, len(nemesis.restarts)))
        check(history, snap, report)
        if service.proc is None or service.proc.poll() is not None:
            report.stuck.append("stuck: the server was not running at the end of the settle")
        report.seconds = time.monotonic() - started
        results = os.environ.get("TW_SOAK_RESULTS")
        if results:
            with Path(results).open("a") as out:
                out.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} "
                          f"{report.line()}\n")
        return report
    finally:
        service.kill()
        engine.dispose()
