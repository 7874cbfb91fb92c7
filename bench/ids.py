"""Random against time-ordered row ids in tradewire's SQLite schema, as the signal table grows.

`python -m bench.ids [ROWS ...]` (not part of `make bench`): migrates a fresh database with
`tradewire init`, then writes ROWS signals (default 3,200 and 100,000) the way a `pending`
signal's unit writes them (the signal, its audit event, its stage times; 32 signals per
durable commit, `synchronous=FULL`, foreign keys on), once with random ids (UUID4, what
tradewire used before item 31 of docs/performance.md) and once with time-ordered ones (UUID7,
`tradewire.domain.values.new_id` since), each on a copy of the fresh database. It prints
the wall, user and system time per signal of each: how much the indexes' random inserts cost
as history grows (docs/performance.md). Only the database's work is measured: plain
`sqlite3`, no tradewire code on the path but the id.

`python -m bench.ids --savepoints [ROWS]` (default 9,600) writes the same rows with UUID7s
three ways: without savepoints; in a savepoint per signal, each nested in the last as the
group commit's units are, with SQLite's default temporary storage (the savepoints' journal
in a temporary file); and the same with `temp_store=MEMORY`, what the group commit's
connection uses since item 33 of docs/performance.md.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradewire.domain.values import new_id

BIN = Path(sys.executable).parent
BATCH = 32
NOW = "2026-12-03T22:00:00.000000+00:00"


def uuid4() -> str:
    return str(uuid.uuid4())


def fresh_schema(work: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env["TRADEWIRE_DATA_DIR"] = str(work)
    subprocess.run([str(BIN / "tradewire"), "init", "--json"], env=env, check=True,
                   capture_output=True, timeout=120)
    return work / "tradewire.db"


def write(db: Path, rows: int, make_id: Callable[[], str], *, savepoints: bool = False,
          temp_store: str | None = None) -> dict[str, float]:
    """Write `rows` signals, 32 to a commit; with `savepoints`, each in a SAVEPOINT nested in
    the one before (never released, as the group commit's units)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        if temp_store is not None:
            conn.execute(f"PRAGMA temp_store={temp_store}")
        account = conn.execute("SELECT id FROM account LIMIT 1").fetchone()[0]
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for b in range(rows // BATCH):
            conn.execute("BEGIN IMMEDIATE")
            for i in range(BATCH):
                if savepoints:
                    conn.execute("SAVEPOINT tw_unit")
                sid, source = make_id(), f"s-{b}-{i}"
                conn.execute(
                    "INSERT INTO signal (id, account_id, source_id, dedup_key, route, symbol,"
                    " action, execute_mode, quantity, quantity_type, order_type, time_in_force,"
                    " extended_hours, status, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (sid, account, source, source, "api.v1.signals", "AAPL", "openLong",
                     "pending", "1", "fixed", "market", "day", 0, "pending", NOW, NOW))
                conn.execute(
                    "INSERT INTO audit_event (id, entity, entity_id, event, account_id,"
                    " signal_id, to_status, data, at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (make_id(), "signal", sid, "SignalReceived", account, sid, "pending",
                     '{"route": "api.v1.signals"}', NOW))
                conn.execute("INSERT INTO signal_timing (signal_id, received_at, decided_at)"
                             " VALUES (?,?,?)", (sid, NOW, NOW))
            conn.execute("COMMIT")
        after, end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    finally:
        conn.close()
    n = rows // BATCH * BATCH
    return {"wall_us": (end - start) / n * 1e6,
            "user_us": (after.ru_utime - before.ru_utime) / n * 1e6,
            "sys_us": (after.ru_stime - before.ru_stime) / n * 1e6}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--savepoints"]:
        savepoints(int(argv[1]) if len(argv) > 1 else 9_600)
        return
    sizes = [int(a) for a in argv] or [3_200, 100_000]
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tw-ids-") as tmp:
        template = fresh_schema(Path(tmp) / "template")
        for rows in sizes:
            for kind, make_id in (("uuid4", uuid4), ("uuid7", new_id)):
                db = Path(tmp) / f"{kind}-{rows}.db"
                shutil.copy(template, db)
                result = {"rows": rows, "ids": kind, **write(db, rows, make_id)}
                out.append(result)
                print(f"{rows:>9,} rows, {kind}: wall {result['wall_us']:.0f} us, user "
                      f"{result['user_us']:.0f} us, system {result['sys_us']:.0f} us per signal")
    print(json.dumps(out))


def savepoints(rows: int) -> None:
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tw-sp-") as tmp:
        template = fresh_schema(Path(tmp) / "template")
        for name, nested, temp_store in (("no savepoints", False, None),
                                         ("nested savepoints, journal in a file", True, None),
                                         ("nested savepoints, journal in memory", True,
                                          "MEMORY")):
            db = Path(tmp) / f"{len(out)}.db"
            shutil.copy(template, db)
            result = {"rows": rows, "how": name,
                      **write(db, rows, new_id, savepoints=nested, temp_store=temp_store)}
            out.append(result)
            print(f"{name}: wall {result['wall_us']:.0f} us, user {result['user_us']:.0f} us, "
                  f"system {result['sys_us']:.0f} us per signal")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
