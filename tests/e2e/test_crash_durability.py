"""Guarantees 1, 2 and 4 against a real `tradewire serve` process killed with SIGKILL.

Jepsen style: every request is recorded as ok (a 2xx answer, with the signal's id) or unknown
(the connection broke). The server is killed at named points (right after the first answer,
after the Nth answer of a concurrent burst, before a scheduled job is due) and started again on
the same data. Then every ok signal must be stored with its work, every unknown one must exist
at most once (sending it again answers 200 or 201, never a second signal), and no order may
reach the broker twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.e2e.conftest import Cli, Service, clean_env
from tests.support import database_url

pytestmark = pytest.mark.slow

SETTLE_TIMEOUT_S = 15
# An order stored by a request that died before sending it waits this long for the worker's
# sweep (the request's reservation, services/submit.py RESERVATION = 10 s), plus a margin.
OUTBOX_TIMEOUT_S = 30
# A market that never closes, so market orders are sent at once whatever the wall clock says
# (the bootstrap account is 24/7 too; this one makes the choice explicit).
SYMBOL = "BTC/USDT"
TLS = ssl.create_default_context()  # httpx builds one per client otherwise (about 30 ms)
_ids = itertools.count(1)


@dataclass
class Creds:
    account_id: str
    api_key: str
    admin_username: str
    admin_password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


@dataclass
class Ledger:
    """What the clients were told: ok (2xx, with the answer) or unknown (no answer)."""

    ok: dict[str, dict[str, Any]] = field(default_factory=dict)  # sourceId -> answer
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict)  # sourceId -> body
    refused: dict[str, httpx.Response] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: dict[str, Any], send: Callable[[], httpx.Response]) -> bool:
        """Send `body`; True when it was acknowledged with a 2xx."""
        source_id = body["sourceId"]
        try:
            r = send()
        except httpx.TransportError:
            with self.lock:
                self.unknown[source_id] = body
            return False
        with self.lock:
            if 200 <= r.status_code < 300:
                self.ok[source_id] = {"body": body, "status": r.status_code, **r.json()}
                return True
            self.refused[source_id] = r
            return False


def signal_body(creds: Creds, mode: str, **fields: Any) -> dict[str, Any]:
    body = {"symbol": SYMBOL, "action": "openLong", "accountId": creds.account_id,
            "quantity": 1, "executeMode": mode, "sourceId": f"crash-{next(_ids)}-{mode}"}
    body.update(fields)
    return body


def engine_for(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


def table_rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def wait_until(what: str, check: Callable[[], bool], timeout: float = SETTLE_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def detail(c: httpx.Client, signal_id: str) -> dict[str, Any]:
    r = c.get(f"/api/v1/signals/{signal_id}")
    assert r.status_code == 200, f"acknowledged signal {signal_id} is gone: {r.text}"
    return dict(r.json()["signal"])


def all_signals(c: httpx.Client) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = c.get("/api/v1/signals", params={"limit": 200, "offset": len(out)}).json()
        out.extend(page["signals"])
        if not page["pagination"]["hasMore"]:
            return out


def set_price(c: httpx.Client, symbol: str, price: float) -> None:
    r = c.post("/api/v1/market/prices", json={"symbol": symbol, "price": price})
    assert r.status_code == 200, r.text


def at_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")


def sleep_until(moment: datetime) -> None:
    delay = (moment - datetime.now(UTC)).total_seconds()
    assert delay < 30, "refusing to sleep that long"
    if delay > 0:
        time.sleep(delay)


# ---- checks after a restart ----------------------------------------------------------------

def check_acknowledged(c: httpx.Client, ledger: Ledger) -> None:
    """Every signal answered with a 2xx is stored, with its order when it was immediate."""
    for source_id, answer in ledger.ok.items():
        acked = answer["signal"]
        stored = detail(c, acked["id"])
        assert stored["sourceId"] == source_id
        mode = answer["body"]["executeMode"]
        entries = [o for o in stored["orders"] if o["purpose"] == "entry"]
        if mode == "pending":
            assert answer["status"] == 201 and stored["status"] == "pending"
            assert entries == []
        elif mode == "scheduled":
            assert answer["status"] == 202 and stored["status"] in ("scheduled", "queued",
                                                                   "executed", "expired")
            assert len(stored["jobs"]) == 1
        else:
            assert answer["status"] == 201
            assert len(entries) == 1, stored
            if acked["status"] == "executed":
                assert stored["status"] == "executed"
                assert entries[0]["id"] == acked["orderId"]
                assert entries[0]["status"] == "filled"


def check_exactly_once(c: httpx.Client, engine: Engine, creds: Creds, ledger: Ledger, *,
                       outbox: bool = True) -> None:
    """Unknown requests sent again find their signal or make it; nothing exists twice.
    With `outbox`, also wait until every stored order has been sent (the worker's sweep)."""
    before = {s["sourceId"]: s["id"] for s in all_signals(c)}
    assert set(ledger.ok) <= set(before)
    assert set(before) <= set(ledger.ok) | set(ledger.unknown), "a signal nobody sent"
    for source_id, body in ledger.unknown.items():
        r = c.post("/api/v1/signals", json=body)
        if source_id in before:
            assert r.status_code == 200, r.text
            assert r.json()["signal"]["id"] == before[source_id]
        else:
            assert r.status_code == 201, r.text
    after = all_signals(c)
    source_ids = [s["sourceId"] for s in after]
    assert len(source_ids) == len(set(source_ids)), "a sourceId stored twice"
    assert set(source_ids) == set(ledger.ok) | set(ledger.unknown)

    # No order reached the broker twice, and each signal has at most one entry order.
    if outbox:
        wait_until("stored orders to be sent after the restart", lambda: not table_rows(
            engine, "SELECT id FROM trade_order WHERE status = 'new'"), OUTBOX_TIMEOUT_S)
    per_signal = table_rows(engine, "SELECT signal_id, count(*) AS n FROM trade_order "
                                    "GROUP BY signal_id HAVING count(*) > 1")
    assert per_signal == []
    sent = table_rows(engine, "SELECT client_order_id FROM paper_order WHERE account_ref = :a",
                      a=creds.account_id)
    ours = {r.client_order_id for r in table_rows(
        engine, "SELECT client_order_id FROM trade_order WHERE account_id = :a",
        a=creds.account_id)}
    assert len(sent) == len({r.client_order_id for r in sent})
    assert {r.client_order_id for r in sent} <= ours, "the broker has an order we never stored"
    immediate = [s for s in after if s["executeMode"] == "immediate"]
    assert len(sent) <= len(immediate)
    # What the broker filled is what the position holds: nothing was bought twice.
    filled = table_rows(engine, "SELECT coalesce(sum(qty), 0) AS q FROM paper_fill "
                                "WHERE account_ref = :a", a=creds.account_id)[0].q
    unsettled = table_rows(engine, "SELECT id FROM trade_order "
                                   "WHERE status IN ('new', 'submitting')")
    if not unsettled:  # an order killed mid-send settles when its 30 s lease lapses
        positions = c.get("/api/v1/positions").json()["positions"]
        held = sum((Decimal(p["qty"]) for p in positions), Decimal(0))
        assert held == Decimal(str(filled)) == len(sent)


# ---- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'tradewire.db').resolve()}"


def bootstrap(cli: Cli, service: Service) -> Creds:
    """The first start bootstraps (credentials in a 0600 file); then a 24/7 paper account of
    the admin, which the admin's key sees. The service is left running."""
    service.start()
    path = cli.data_dir / "initial-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    account = cli.json("accounts", "create", "--name", "crypto", "--market", "24/7")
    return Creds(account["id"], data["api_key"], data["admin_username"], data["admin_password"])


@pytest.fixture
def creds(cli: Cli, service: Service) -> Creds:
    return bootstrap(cli, service)


@contextlib.contextmanager
def running(service: Service, creds: Creds) -> Iterator[httpx.Client]:
    """The service (started on its data unless it runs); SIGKILLed when the block ends."""
    if not service.running:
        service.start()
    try:
        with httpx.Client(base_url=service.url, headers=creds.headers, timeout=15,
                          verify=TLS) as c:
            yield c
    finally:
        service.kill()


# ---- the tests -----------------------------------------------------------------------------

def test_a_signal_acknowledged_just_before_a_kill_is_there_after_restart(
        service: Service, creds: Creds, sqlite_url: str) -> None:
    ledger = Ledger()
    engine = engine_for(sqlite_url)
    for mode in ("immediate", "scheduled"):  # (pending ones: in the bursts below)
        with running(service, creds) as c:
            set_price(c, SYMBOL, 50)
            extra = {}
            if mode == "scheduled":
                extra = {"scheduledProcessAt": at_utc(datetime.now(UTC) + timedelta(hours=1)),
                         "timezone": "UTC"}
            body = signal_body(creds, mode, **extra)
            assert ledger.record(body, lambda c=c, body=body: c.post("/api/v1/signals",
                                                                      json=body))
            service.kill()  # the first thing after the 2xx
    with running(service, creds) as c:
        check_acknowledged(c, ledger)
        check_exactly_once(c, engine, creds, ledger)
        assert [s["status"] for s in all_signals(c)] == ["scheduled", "executed"]
    engine.dispose()


def burst(service: Service, creds: Creds, ledger: Ledger, *, kill_after: int,
          clients: int = 16, per_client: int = 6) -> None:
    """`clients` threads send signals (immediate and pending) back to back; the server is
    SIGKILLed as soon as the `kill_after`-th 2xx arrives, with the other requests in flight."""
    barrier = threading.Barrier(clients)
    acked = itertools.count(1)
    killed = threading.Event()

    def client(i: int) -> None:
        with httpx.Client(base_url=service.url, headers=creds.headers, timeout=15,
                          verify=TLS) as c:
            c.get("/healthz")
            barrier.wait(timeout=20)
            for j in range(per_client):
                body = signal_body(creds, "immediate" if (i + j) % 2 else "pending")
                if not ledger.record(body, lambda c=c, body=body: c.post("/api/v1/signals",
                                                                          json=body)):
                    return
                if next(acked) == kill_after and not killed.is_set():
                    killed.set()
                    service.kill()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert killed.is_set(), f"only {len(ledger.ok)} answers came before the end of the burst"


@pytest.mark.parametrize(("db_kind", "kill_after"), [
    ("sqlite", 40),
    pytest.param("postgres", 3, marks=pytest.mark.postgres),
])
def test_a_kill_during_a_concurrent_burst_loses_no_acknowledged_signal(
        db_kind: str, kill_after: int, tmp_path: Path, data_dir: Path, sqlite_url: str) -> None:
    with contextlib.ExitStack() as stack:
        url = sqlite_url if db_kind == "sqlite" else stack.enter_context(
            database_url("postgres", tmp_path))
        cli = Cli(clean_env(data_dir, url), tmp_path)
        service = Service(cli.env, tmp_path, tmp_path)
        stack.callback(service.kill)
        creds = bootstrap(cli, service)
        engine = engine_for(url)
        stack.callback(engine.dispose)
        ledger = Ledger()
        with running(service, creds) as c:
            set_price(c, SYMBOL, 50)
            burst(service, creds, ledger, kill_after=kill_after)
        assert len(ledger.ok) >= kill_after
        assert not ledger.refused, {k: r.text for k, r in ledger.refused.items()}
        with running(service, creds) as c:
            check_acknowledged(c, ledger)
            # The outbox is waited for on SQLite only: a wait of up to 10 s, the same code.
            check_exactly_once(c, engine, creds, ledger, outbox=db_kind == "sqlite")


def test_jobs_due_while_the_server_was_down_run_once_or_expire_with_the_reason(
        service: Service, creds: Creds, sqlite_url: str) -> None:
    """Guarantee 4: one crash before three jobs come due. After the restart, the one still
    valid runs exactly once; the ones whose validUntil passed while down expire, saying so."""
    engine = engine_for(sqlite_url)
    with running(service, creds) as c:
        set_price(c, SYMBOL, 50)
        now = datetime.now(UTC)
        # Time enough to kill the server before anything is due.
        due, valid_until = now + timedelta(seconds=3), now + timedelta(seconds=4)
        runs = c.post("/api/v1/signals", json=signal_body(
            creds, "scheduled", scheduledProcessAt=at_utc(due), timezone="UTC"))
        late = c.post("/api/v1/signals", json=signal_body(
            creds, "scheduled", scheduledProcessAt=at_utc(due), validUntil=at_utc(valid_until),
            timezone="UTC"))
        lapses = c.post("/api/v1/signals", json=signal_body(
            creds, "pending", validUntil=at_utc(valid_until), timezone="UTC"))
        assert runs.status_code == late.status_code == 202, (runs.text, late.text)
        assert lapses.status_code == 201, lapses.text
        service.kill()
    runs_id, late_id, lapses_id = (r.json()["signal"]["id"] for r in (runs, late, lapses))
    # Down when they came due: nothing ran.
    assert {r.status for r in table_rows(engine, "SELECT status FROM job")} == {"scheduled"}
    sleep_until(valid_until + timedelta(milliseconds=500))
    assert table_rows(engine, "SELECT id FROM trade_order") == []

    with running(service, creds) as c:
        wait_until("the overdue jobs to run", lambda: [
            detail(c, i)["status"] for i in (runs_id, late_id, lapses_id)] == [
            "executed", "expired", "expired"])
        # The valid one ran exactly once: one job run, one order, one fill.
        ran = detail(c, runs_id)
        [job] = ran["jobs"]
        assert job["status"] == "done" and job["attempts"] == 1
        [order] = ran["orders"]
        assert order["status"] == "filled"
        time.sleep(1.0)  # several more worker passes (it polls every 250 ms): no second run
        again = detail(c, runs_id)
        assert [o["id"] for o in again["orders"]] == [order["id"]]
        assert again["jobs"][0]["status"] == "done" and again["jobs"][0]["attempts"] == 1
        assert [o["id"] for o in c.get("/api/v1/orders").json()["orders"]] == [order["id"]]
        positions = c.get("/api/v1/positions").json()["positions"]
        assert [(p["symbol"], p["qty"]) for p in positions] == [(SYMBOL, "1")]

        # The scheduled one past its validUntil expired, and the job says why.
        expired = detail(c, late_id)
        [job] = expired["jobs"]
        assert job["status"] == "expired"
        assert "validUntil" in job["result"]
        assert "validUntil" in expired["statusReason"]
        assert expired["orders"] == []
        assert "SignalExpired" in [e["event"] for e in expired["timeline"]]

        # So did the pending one; approving it now is refused and sends nothing.
        lapsed = detail(c, lapses_id)
        assert "validUntil" in lapsed["statusReason"]
        assert lapsed["orders"] == []
        login = c.post("/api/v1/auth/login", json={"username": creds.admin_username,
                                                   "password": creds.admin_password})
        assert login.status_code == 200, login.text
        r = c.post(f"/api/v1/signals/{lapses_id}/process",
                   headers={"Authorization": f"Bearer {login.json()['token']}"})
        assert r.status_code == 400, r.text
        assert len(c.get("/api/v1/orders").json()["orders"]) == 1
    assert len(table_rows(engine, "SELECT broker_order_id FROM paper_order")) == 1
    engine.dispose()
