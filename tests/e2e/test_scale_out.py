"""Scale-out on PostgreSQL: two `tradewire api` processes and three `tradewire worker`
processes share one database. A mixed load (scheduled signals, entries whose stops arm exits,
prices that cross the stops) runs while one worker is killed with SIGKILL; every job and every
armed exit must still run exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import COMMAND_TIMEOUT_S, Cli, clean_env, tradewire_command
from tests.support import database_url, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
# The dead worker's partitions move once their 10 s leases lapse; an order it was sending is
# looked up and finished once its 30 s submit lease lapses.
SETTLE_S = 75


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.p = subprocess.Popen([*tradewire_command(), *args], env=env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with database_url("postgres", tmp_path) as url:
        # The partitioned trigger engine is under test: a paper broker that rests no exits.
        env = {**clean_env(tmp_path / "data", url), "TRADEWIRE_WORKER_POLL_MS": "100",
               "TRADEWIRE_PAPER__NATIVE_EXITS": "false"}
        boot = Cli(env, tmp_path).json("init")
        account = Cli(env, tmp_path).json("accounts", "create", "--name", "crypto",
                                          "--market", "24/7")["id"]
        procs: list[Proc] = []
        apis = []
        try:
            for i in range(2):
                port = free_port()
                procs.append(Proc(["api", "--host", "127.0.0.1", "--port", str(port)], env,
                                  tmp_path / f"api-{i}.log"))
                apis.append(f"http://127.0.0.1:{port}")
            workers = [Proc(["worker"], env, tmp_path / f"worker-{i}.log") for i in range(3)]
            procs.extend(workers)
            for base in apis:
                _wait_ready(base)
            engine = create_engine(url)
            yield {"apis": apis, "workers": workers, "key": boot["api_key"],
                   "account": account, "engine": engine, "logs": tmp_path}
            engine.dispose()
        finally:
            for p in procs:
                p.stop()


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{base} did not start")


def _rows(engine: Any, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def test_every_job_and_exit_runs_once_with_a_worker_killed(cluster: dict[str, Any]) -> None:
    apis, key, account = cluster["apis"], cluster["key"], cluster["account"]
    clients = [httpx.Client(base_url=b, headers={"X-API-Key": key}, timeout=15) for b in apis]
    symbols = [f"SYM{i}" for i in range(10)]
    r = clients[0].post("/api/v1/market/prices",
                        json=[{"symbol": s, "price": 100} for s in [*symbols, "SCHED"]])
    assert r.status_code == 200, r.text
    entries = []
    for i, symbol in enumerate(symbols):
        r = clients[i % 2].post("/api/v1/signals", json={
            "symbol": symbol, "action": "openLong", "accountId": account, "quantity": 1,
            "executeMode": "immediate", "stopLoss": {"type": "stop", "stopPrice": 90}})
        assert r.status_code in (200, 201), r.text
        entries.append(r.json()["signal"]["id"])
    due = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduled = []
    for i in range(20):
        r = clients[i % 2].post("/api/v1/signals", json={
            "symbol": "SCHED", "action": "openLong", "accountId": account, "quantity": 1,
            "executeMode": "scheduled", "scheduledProcessAt": due, "timezone": "UTC",
            "sourceId": f"sched-{i}"})
        assert r.status_code == 202, r.text
        scheduled.append(r.json()["signal"]["id"])
    time.sleep(1.0)  # the workers hold their partitions and have read the armed stops
    cluster["workers"][0].kill()
    r = clients[1].post("/api/v1/market/prices", json=[{"symbol": s, "price": 85} for s in symbols])
    assert r.status_code == 200, r.text

    engine = cluster["engine"]
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        done = _rows(engine, "SELECT count(*) FROM job WHERE status = 'done'")[0][0]
        closed = _rows(engine, "SELECT count(*) FROM position WHERE qty = '0'")[0][0]
        sending = _rows(engine, "SELECT count(*) FROM trade_order "
                                "WHERE status IN ('new', 'submitting')")[0][0]
        if done >= 20 and closed >= len(symbols) and sending == 0:
            break
        time.sleep(0.5)
    logs = "\n".join(p.read_text(errors="replace")[-2000:]
                     for p in sorted(cluster["logs"].glob("worker-*.log")))
    jobs = _rows(engine, "SELECT status, count(*) FROM job GROUP BY status")
    assert dict((s, n) for s, n in jobs) == {"done": 20}, logs
    for signal_id in scheduled:
        orders = _rows(engine, "SELECT status FROM trade_order WHERE signal_id = :s", s=signal_id)
        assert [o[0] for o in orders] == ["filled"], (signal_id, orders)
    for signal_id in entries:
        orders = _rows(engine, "SELECT purpose, status FROM trade_order WHERE signal_id = :s "
                               "ORDER BY created_at", s=signal_id)
        assert [tuple(o) for o in orders] == [("entry", "filled"), ("exit", "filled")], logs
    positions = dict(_rows(engine, "SELECT symbol, qty FROM position"))
    assert all(positions[s] in ("0", 0) for s in symbols), positions
    assert str(positions["SCHED"]) == "20"
    paper = _rows(engine, "SELECT client_order_id, count(*) FROM paper_order "
                          "GROUP BY client_order_id HAVING count(*) > 1")
    assert paper == []
    leases = dict(_rows(engine, "SELECT partition, owner FROM trigger_lease"))
    dead = f"{cluster['workers'][0].p.pid}"
    assert not any(owner and owner.endswith(f":{dead}") for owner in leases.values()), leases
