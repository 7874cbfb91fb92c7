"""Bulk evaluation as DESIGN.md measures it: `evaluate/bulk` of 10,000 stored strategies, the
bars in the database, through a real server.

A fresh `tradewire serve` subprocess on 127.0.0.1 (SQLite, its own temporary data dir). The
bars of `bench.strategies` (50 (asset, timeframe) pairs of 500 bars) go in through `POST /api/v1/market/bars`,
its 10,000 seeded strategies through `POST /api/v1/strategies` (the load generator, a closed
loop of a few connections). Then `POST /api/v1/execution/evaluate/bulk` with all 10,000 ids,
`persist` as the route's default (true): each strategy read, its bars read from the database
once per pair and shared, the rules decided with one shared indicator cache, every new state
written back in one transaction, the answer for all 10,000 encoded. Timed at the client, from
the request sent to the whole answer read; RUNS times (the first evaluates every strategy on
its latest bar; later ones find each already evaluated on that bar and change nothing, which
is what a second call on the same bar costs). The server's own figure for the evaluation
(`total_execution_time_seconds`) is kept beside it.

The baseline is the same run's in-process bulk `decide` of the same strategies over the same
bars (`bench.strategies.bulk`): what the database, the HTTP layers and the answer add to the
evaluator's own work.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import BIN, ROOT, _clean_env
from bench.servers import ServerProcess, free_port
from tradewire.strategies.bars import Bars

RUNS = 3
CONNECTIONS = 4  # clients storing the strategies
ROUTE = "/api/v1/execution/evaluate/bulk"
REQUEST_TIMEOUT_S = 60.0
TARGET_S = 1.0  # DESIGN.md, "strategy evaluation": < 1 s in all
MIN_BUDGET_S = 30.0  # storing 10,000 strategies takes about 10 s, a server's start a few


def run(data: dict[str, dict[str, Bars]], definitions: list[dict[str, Any]], budget_s: float,
        report: Any = print) -> dict[str, Any]:
    """Store `data` and `definitions` in a fresh server, then time the bulk route RUNS times."""
    if budget_s < MIN_BUDGET_S:
        report(f"evaluate/bulk through the route: skipped ({budget_s:.0f} s left of the budget)")
        return {"skipped": "time budget", "target_s": TARGET_S}
    end = time.monotonic() + budget_s
    with tempfile.TemporaryDirectory(prefix="tradewire-bench-eval-") as tmp:
        work = Path(tmp)
        env = {**_clean_env(), "TRADEWIRE_DATA_DIR": str(work / "data"),
               "TRADEWIRE_RATE_LIMIT_PER_MINUTE": "0"}
        api_key = _init(env)
        headers = {"X-API-Key": api_key}
        port = free_port()
        argv = [str(BIN / "tradewire"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        with ServerProcess(argv, port, env, work / "server.log", ROOT) as server:
            t0 = time.monotonic()
            for asset, frames in data.items():
                for tf, bars in frames.items():
                    _upload(server.url, headers, asset, tf, bars)
            stored = _store(server.port, headers, definitions, end)
            ids = _ids(work / "data" / "tradewire.db")
            report(f"evaluate/bulk through the route: {len(data)} assets' bars and "
                   f"{len(ids):,} strategies stored in {time.monotonic() - t0:.1f} s")
            runs = []
            with httpx.Client(base_url=server.url, headers=headers,
                              timeout=REQUEST_TIMEOUT_S) as client:
                body = json.dumps({"strategy_ids": ids}).encode()
                for i in range(RUNS):
                    if time.monotonic() + 3 * (runs[-1]["seconds"] if runs else 2.0) > end:
                        break
                    runs.append(_bulk(client, body, len(ids)))
                    r = runs[-1]
                    report(f"evaluate/bulk, run {i + 1}: {r['seconds']:.3f} s at the client "
                           f"(server's evaluation {r['server_seconds']:.3f} s), "
                           f"{r['results']:,} results, {r['new_orders']:,} new orders, "
                           f"{r['data_fetches']} bar sets read")
    return {"strategies": len(ids), "stored": stored, "runs": runs,
            "first_s": runs[0]["seconds"] if runs else None,
            "best_s": min(r["seconds"] for r in runs) if runs else None,
            "target_s": TARGET_S}


def _init(env: dict[str, str]) -> str:
    proc = subprocess.run([str(BIN / "tradewire"), "init", "--json"], env=env, cwd=ROOT,
                          capture_output=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError("tradewire init failed:\n"
                           + (proc.stdout + proc.stderr).decode(errors="replace")[-1500:])
    key: str = json.loads(proc.stdout)["api_key"]
    return key


def _upload(url: str, headers: dict[str, str], asset: str, tf: str, bars: Bars) -> None:
    rows = [{"timestamp": int(ts), "open": float(o), "high": float(h), "low": float(lo),
             "close": float(c), "volume": float(v)}
            for ts, o, h, lo, c, v in zip(bars.ts, bars.open, bars.high, bars.low, bars.close,
                                          bars.volume, strict=True)]
    r = httpx.post(url + "/api/v1/market/bars", json={"symbol": asset, "timeframe": tf, "bars": rows},
                   headers=headers, timeout=30)
    if r.status_code != 200 or r.json().get("imported") != len(rows):
        raise RuntimeError(f"uploading {asset} {tf} failed: {r.status_code} {r.text[:300]}")


def _store(port: int, headers: dict[str, str], definitions: list[dict[str, Any]],
           end: float) -> dict[str, Any]:
    """Every definition POSTed once by the load generator (closed loop, CONNECTIONS clients)."""
    spec = {"port": port, "path": "/api/v1/strategies", "headers": headers,
            "bodies": [json.dumps(d) for d in definitions], "warmup": 0,
            "connections": CONNECTIONS, "deadline_s": max(10.0, end - time.monotonic() - 20),
            "request_timeout_s": 30.0}
    proc = subprocess.run([sys.executable, "-m", "bench.loadgen"], input=json.dumps(spec).encode(),
                          capture_output=True, cwd=ROOT, timeout=spec["deadline_s"] + 30,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{proc.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(proc.stdout)
    if result["errors"] or result["ok"] != len(definitions):
        raise RuntimeError(f"storing the strategies failed: {result['ok']} stored, "
                           f"{result['errors']} errors, e.g. {result['error_samples'][:2]}")
    return {"count": result["ok"], "rps": result["rps"]}


def _ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM strategy ORDER BY created_at, id")]


def _bulk(client: httpx.Client, body: bytes, expected: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = client.post(ROUTE, content=body, headers={"Content-Type": "application/json"})
    seconds = time.perf_counter() - t0
    answer = r.json()
    if r.status_code != 200 or len(answer.get("results", [])) != expected:
        raise RuntimeError(f"evaluate/bulk failed: {r.status_code} {r.text[:300]}")
    failed = [x for x in answer["results"] if not x["success"]]
    if failed:
        raise RuntimeError(f"{len(failed)} strategies failed, e.g. {failed[0]}")
    return {"seconds": round(seconds, 3),
            "server_seconds": answer["total_execution_time_seconds"],
            "results": len(answer["results"]),
            "new_orders": sum(len(x["new_orders"]) for x in answer["results"]),
            "data_fetches": answer["data_fetches"], "answer_bytes": len(r.content)}
