"""The ingest benchmark: POST /api/v1/signals under 64 concurrent clients, with baselines.

Every target is a fresh server subprocess on 127.0.0.1 with its own temporary data; the load
generator is another subprocess (`bench.loadgen`) so that it does not share a GIL with the
server, and it sends a fixed, seeded list of bodies with unique sourceIds.

On PostgreSQL (`bench.pg`: fresh schemas in database `test`, dropped afterwards) the bare
durable baseline runs again, and tradewire runs as 1, 2 and 4 `tradewire api` processes on
one database (the scaling curve: as many requests per point, each point with sourceIds of its
own, the load generator's connections spread round robin over the processes, the processes
started together). The three points share one schema and one `tradewire init`. `pending`
signals need no worker: they are stored and answered, and nothing is due until they are
executed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import pg
from bench.servers import ServerProcess, free_port, started

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEED = 20260207
CONNECTIONS = 64
WARMUP = 200
MEASURED = 3000
PG_MEASURED = 1500
RUN_DEADLINE_S = 45.0  # one target's load, warm-up included
BUDGET_S = 300.0  # all targets, servers' start and stop included
START_RESERVE_S = 25.0
REQUEST_TIMEOUT_S = 10.0
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD")
PRICE = 5  # 3,200 one-share buys at 5 cost 16,000 of the paper account's 100,000


@dataclass(frozen=True)
class Target:
    """One row of the table: which server, which executeMode the bodies ask for, how many."""

    name: str
    kind: str  # "tradewire", or an app of bench.baselines
    mode: str
    measured: int = MEASURED
    expect: str = "pending"  # the signal status every 2xx answer should carry
    database: str = "sqlite"  # or "postgresql"
    processes: int = 1  # `tradewire api` processes (else `serve`), sharing the load
    warmup: int = WARMUP  # unmeasured requests first
    # The SQLite pair (bare durable, tradewire pending) runs PAIRS times, spread over the
    # benchmark: this machine moves by up to 1.5x between runs minutes apart, so each pair's
    # ratio is taken within the pair and the median pair is the one reported.
    pair: int = 1
    # tradewire on SQLite stores waiting signals from a writer process of its own (the
    # default; entrypoints/api/writer_process.py); False: all in the API process, as before it.
    writer_process: bool = True


TARGETS = (
    Target("bare durable", "durable", "pending"),
    Target("ceiling", "ceiling", "pending"),
    Target("ceiling, sync def", "ceiling_sync", "pending"),
    Target("tradewire pending", "tradewire", "pending"),
    # Two `tradewire api` processes on one SQLite file, right after each pair's one-process
    # row (the bare durable endpoint of its pair is its baseline too).
    # Each `tradewire api` would start a writer process of its own: four processes on two
    # cores. Two API processes measure better writing themselves (TRADEWIRE_WRITER_PROCESS
    # off, docs/architecture.md).
    Target("tradewire pending, 2 API processes", "tradewire", "pending", processes=2,
           writer_process=False),
    # The writer process's share: the same server with every unit in its own process.
    Target("tradewire pending, no writer process", "tradewire", "pending", writer_process=False),
    # Fewer: at today's 15-90 requests/s, 3,000 would not fit in RUN_DEADLINE_S (nor 200
    # warm-up requests in the ingest budget).
    Target("tradewire immediate", "tradewire", "immediate", measured=400, expect="executed",
           warmup=50),
    Target("bare durable, PostgreSQL", "durable_pg", "pending", database="postgresql"),
    # The scaling curve: the same 1,500 requests per point (at today's 100-150/s on
    # PostgreSQL, 3,000 per point would take most of the ingest budget).
    Target("tradewire pending, PostgreSQL", "tradewire", "pending", measured=PG_MEASURED,
           database="postgresql"),
    Target("tradewire pending, PostgreSQL, 2 API processes", "tradewire", "pending",
           measured=PG_MEASURED, database="postgresql", processes=2),
    Target("tradewire pending, PostgreSQL, 4 API processes", "tradewire", "pending",
           measured=PG_MEASURED, database="postgresql", processes=4),
    Target("bare durable, pair 2", "durable", "pending", pair=2),
    Target("tradewire pending, pair 2", "tradewire", "pending", pair=2),
    Target("tradewire pending, 2 API processes, pair 2", "tradewire", "pending", processes=2,
           pair=2, writer_process=False),
    Target("bare durable, pair 3", "durable", "pending", pair=3),
    Target("tradewire pending, pair 3", "tradewire", "pending", pair=3),
    Target("tradewire pending, 2 API processes, pair 3", "tradewire", "pending", processes=2,
           pair=3, writer_process=False),
)
PAIRS = 3
SCALING = (1, 2, 4)  # the processes of the PostgreSQL tradewire rows, in order


def bodies(account_id: str, mode: str, count: int, seed: int = SEED) -> list[str]:
    """`count` signal bodies with unique sourceIds; the same list for the same arguments."""
    rng = random.Random(f"{seed}:{mode}")
    return [json.dumps({"symbol": rng.choice(SYMBOLS), "action": "openLong",
                        "accountId": account_id, "quantity": 1, "executeMode": mode,
                        "sourceId": f"bench-{seed}-{mode}-{i:05d}"}) for i in range(count)]


def run(targets: tuple[Target, ...] = TARGETS, budget_s: float = BUDGET_S) -> list[dict[str, Any]]:
    """Measure each target in turn within `budget_s`; a target without time left is skipped."""
    budget_end = time.monotonic() + budget_s
    no_pg = pg.available() if any(t.database == "postgresql" for t in targets) else None
    results = []
    with ExitStack() as shared:
        tw_pg = _SharedPg(shared)
        for target in targets:
            results.append(_one(target, budget_end, no_pg, tw_pg))
    return results


def _one(target: Target, budget_end: float, no_pg: str | None, tw_pg: _SharedPg) -> dict[str, Any]:
    """One target's row: measured, skipped (time budget, no PostgreSQL) or failed."""
    # Keep time for `tradewire init` and the servers' start and stop (10-30 s on a loaded
    # 2-core machine: their imports); with less than 10 s of load left a run says nothing.
    left = budget_end - time.monotonic() - START_RESERVE_S - 3 * target.processes
    head = {"name": target.name, "kind": target.kind, "database": target.database,
            "processes": target.processes, "pair": target.pair,
            "writer_process": target.writer_process}
    if left < 10 or (no_pg and target.database == "postgresql"):
        return {**head, "skipped": no_pg if target.database == "postgresql" and no_pg
                else "time budget"}
    row: dict[str, Any] = {**head, "mode": target.mode, "expect": target.expect,
                           "pair": target.pair}
    try:
        if target.kind == "tradewire" and target.database == "postgresql":
            row.update(_tradewire_pg(target, tw_pg, min(RUN_DEADLINE_S, left)))
        else:
            with tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
                row.update(_measure(target, Path(tmp), min(RUN_DEADLINE_S, left)))
    except (OSError, RuntimeError, ValueError, KeyError, subprocess.SubprocessError,
            psycopg.Error) as exc:
        # One broken server must not hide the others' figures.
        row.update(failed=f"{type(exc).__name__}: {exc}"[-1500:])
    return row


class _SharedPg:
    """The PostgreSQL tradewire points share one schema and one `tradewire init` (10 s or more
    each on a loaded machine); each point sends its own sourceIds and counts its own rows.
    Made on first use; the schema is dropped and the data dir removed when `stack` closes."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.schema: str | None = None
        self.work = Path()
        self.env: dict[str, str] = {}
        self.creds: dict[str, Any] = {}

    def ready(self) -> _SharedPg:
        if self.schema is None:
            self.work = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="tw-bench-pg-")))
            schema = self.stack.enter_context(pg.schema("bench_tw"))
            self.env = {**_clean_env(), "TRADEWIRE_DATA_DIR": str(self.work / "data"),
                        "TRADEWIRE_DATABASE_URL": pg.sqlalchemy_url(schema),
                        "TRADEWIRE_MAX_IN_FLIGHT": "256", "TRADEWIRE_RATE_LIMIT_PER_MINUTE": "0"}
            self.creds = _init(self.env)
            self.schema = schema
        return self


def _measure(target: Target, work: Path, deadline_s: float) -> dict[str, Any]:
    if target.kind == "tradewire":
        return _tradewire(target, work, deadline_s)
    if target.database == "postgresql":
        with pg.schema("bench_bare") as schema:
            result = _baseline(target, {"BENCH_PG_URL": pg.libpq_url(schema)}, work, deadline_s)
            result.update(rows=pg.count(schema, "signals"), pg_settings=pg.settings())
            return result
    db = work / "baseline.db"
    result = _baseline(target, {"BENCH_DB": str(db)}, work, deadline_s)
    if target.kind == "durable":
        result.update(rows=_count(db, "SELECT count(*) FROM signals"))
    return result


def _baseline(target: Target, extra_env: dict[str, str], work: Path,
              deadline_s: float) -> dict[str, Any]:
    """One app of bench.baselines under uvicorn, measured."""
    env = {**_clean_env(), **extra_env}
    port = free_port()
    argv = [str(BIN / "python"), "-m", "uvicorn", f"bench.baselines:{target.kind}", "--host",
            "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    account = str(uuid.UUID(int=random.Random(SEED).getrandbits(128), version=4))
    with ServerProcess(argv, port, env, work / "server.log", ROOT) as server:
        return _load([server], {}, bodies(account, target.mode, target.warmup + target.measured),
                     target.warmup, deadline_s)


def _tradewire_pg(target: Target, shared: _SharedPg, deadline_s: float) -> dict[str, Any]:
    """`target.processes` `tradewire api` processes on the shared schema, started together."""
    db = shared.ready()
    assert db.schema is not None
    headers = {"X-API-Key": db.creds["api_key"]}
    ports = _free_ports(target.processes)
    logs = [db.work / f"server-{target.processes}-{i}.log" for i in range(len(ports))]
    before = pg.count(db.schema, "signal")
    payloads = bodies(db.creds["account_id"], target.mode, target.warmup + target.measured,
                      seed=SEED + target.processes)  # sourceIds of its own
    with started([ServerProcess(
            [str(BIN / "tradewire"), "api", "--host", "127.0.0.1", "--port", str(port)], port,
            db.env, log, ROOT) for port, log in zip(ports, logs, strict=True)]) as servers:
        result = _load(servers, headers, payloads, target.warmup, deadline_s)
    result.update(rows=pg.count(db.schema, "signal") - before, server_log_errors=_log_errors(*logs))
    return result


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _init(env: dict[str, str]) -> dict[str, Any]:
    """`tradewire init --json`: migrate, then an API key and a paper account."""
    init = subprocess.run([str(BIN / "tradewire"), "init", "--json"], env=env, cwd=ROOT,
                          capture_output=True, timeout=60, check=False)
    if init.returncode != 0:
        raise RuntimeError(f"tradewire init failed:\n{init.stderr.decode(errors='replace')}")
    creds: dict[str, Any] = json.loads(init.stdout)
    return creds


def _log_errors(*logs: Path) -> list[str]:
    lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()
             if "Error" in line or "Traceback" in line]
    return lines[:5]


def _tradewire(target: Target, work: Path, deadline_s: float) -> dict[str, Any]:
    data = work / "data"
    # Throughput at 64 clients, as DESIGN measures it: shedding (32 in flight by default, sized
    # for immediate signals' latency) would answer half of them 503 instead.
    env = {**_clean_env(), "TRADEWIRE_DATA_DIR": str(data), "TRADEWIRE_MAX_IN_FLIGHT": "256",
           "TRADEWIRE_RATE_LIMIT_PER_MINUTE": "0",  # throughput, not the per-key limit
           "TRADEWIRE_WRITER_PROCESS": "true" if target.writer_process else "false"}
    creds = _init(env)
    headers = {"X-API-Key": creds["api_key"]}
    account = creds["account_id"]
    if target.mode == "immediate":
        account = _always_open_account(env) or account
    payloads = bodies(account, target.mode, target.warmup + target.measured)
    if target.processes > 1:
        # Several `tradewire api` processes on the one SQLite file, taking turns to write it
        # (group_commit.WriteTurn); `pending` signals need no worker.
        ports = _free_ports(target.processes)
        logs = [work / f"server-{i}.log" for i in range(len(ports))]
        with started([ServerProcess(
                [str(BIN / "tradewire"), "api", "--host", "127.0.0.1", "--port", str(port)],
                port, env, log, ROOT) for port, log in zip(ports, logs, strict=True)]) as servers:
            result = _load(servers, headers, payloads, target.warmup, deadline_s)
    else:
        logs = [work / "server.log"]
        port = free_port()
        # `serve` (API and worker in one process) is what `make run` starts.
        argv = [str(BIN / "tradewire"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with ServerProcess(argv, port, env, logs[0], ROOT) as server:
            if target.mode == "immediate":
                _post_prices(server.url, headers)
            result = _load([server], headers, payloads, target.warmup, deadline_s)
    database = data / "tradewire.db"
    result.update(rows=_count(database, "SELECT count(*) FROM signal"),
                  orders=_orders_by_status(database), server_log_errors=_log_errors(*logs))
    return result


def _always_open_account(env: dict[str, str]) -> str | None:
    """A paper account on the `24/7` calendar, so market orders fill whatever the hour.

    None when this tradewire has no market calendars yet (no --market option): its accounts
    never close.
    """
    made = subprocess.run([str(BIN / "tradewire"), "accounts", "create", "--name", "bench",
                           "--market", "24/7", "--json"], env=env, cwd=ROOT,
                          capture_output=True, timeout=60, check=False)
    if made.returncode != 0:
        return None
    account: str = json.loads(made.stdout)["id"]
    return account


def _clean_env() -> dict[str, str]:
    """This environment without TRADEWIRE_* settings, so a developer's setup cannot leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}


def _post_prices(url: str, headers: dict[str, str]) -> None:
    prices = [{"symbol": s, "price": PRICE} for s in SYMBOLS]
    r = httpx.post(url + "/api/v1/market/prices", json=prices, headers=headers, timeout=10)
    r.raise_for_status()


def _load(servers: list[ServerProcess], headers: dict[str, str], payloads: list[str], warmup: int,
          deadline_s: float) -> dict[str, Any]:
    """Run the load generator against `servers` (connections round robin over them); add the
    servers' CPU time per request, all processes together."""
    spec = {"port": servers[0].port, "ports": [s.port for s in servers], "path": "/api/v1/signals",
            "headers": headers, "bodies": payloads, "warmup": warmup, "connections": CONNECTIONS,
            "deadline_s": deadline_s, "request_timeout_s": REQUEST_TIMEOUT_S}
    cpu0 = _cpu(servers)
    proc = subprocess.run([sys.executable, "-m", "bench.loadgen"], input=json.dumps(spec).encode(),
                          capture_output=True, cwd=ROOT, timeout=deadline_s + 30, check=False)
    cpu1 = _cpu(servers)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{proc.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(proc.stdout)
    sent = result["warmup_ok"] + result["warmup_errors"] + result["ok"] + result["errors"]
    if cpu0 is not None and cpu1 is not None and sent:
        result["server_cpu_us_per_req"] = (cpu1 - cpu0) / sent * 1e6
    return result


def _cpu(servers: list[ServerProcess]) -> float | None:
    seconds = [s.cpu() for s in servers]
    return None if any(c is None for c in seconds) else sum(c for c in seconds if c is not None)


def _count(database: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _orders_by_status(database: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        rows = conn.execute("SELECT status, count(*) FROM trade_order GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}
