"""Instructions per signal through the whole application, counted by valgrind: a figure that
does not move with the machine's load, for comparing two versions of the code.

`python -m bench.instructions [pending|immediate|token] [--src DIR]` runs `python -m
bench.instructions drive MODE N` under `valgrind --tool=callgrind` twice, with N1 and N2
signals, and reports (Ir(N2) - Ir(N1)) / (N2 - N1): the instructions one more signal costs,
start-up, imports and the first statements' compilation left out. `--src` points the driven
process at another checkout's `src` (PYTHONPATH), to compare with it.

The driver builds a tradewire on a fresh SQLite file (the paper broker, a paper account with
a price for its symbol, an API key) and sends each signal as an HTTP request straight into
the ASGI application, one after another, no sockets: the middleware, the route, the writer
thread, the paper venue and the log line, as `tradewire serve` runs them. valgrind runs
threads one at a time and about 150 times slower, so the counts are small: a pair of runs
takes about 3 (pending) to 6 (immediate) minutes. Not part of `make bench` (its 10-minute
budget); docs/performance.md shows what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `token`: immediate orders on the access-token route, TradingView-shaped (the latency bench's).
COUNTS = {"pending": (50, 250), "immediate": (10, 40), "token": (10, 40)}
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def drive(mode: str, n: int) -> None:
    """Send `n` signals of `mode` through the ASGI app in this process, one after another."""
    from tradewire.adapters.clock import ManualClock
    from tradewire.bootstrap import build
    from tradewire.config import Settings
    from tradewire.entrypoints import logs
    from tradewire.entrypoints.api.app import create_app
    from tradewire.services import accounts, capabilities
    from tradewire.services.ports import Tick

    with open(os.devnull, "w") as sink, tempfile.TemporaryDirectory(prefix="tw-ir-") as tmp:
        logs.configure("json", stream=sink)
        c = build(Settings(data_dir=Path(tmp), secret_key="bench-ir-" + "x" * 40,
                           max_in_flight=256),
                  clock=ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC)))
        try:
            user = accounts.create_user("bench", "bench-password", is_admin=False, deps=c.deps,
                                        secrets=c.secrets)
            account = accounts.create_account(user.id, "paper", broker="paper",
                                              cash=Decimal(10**9), deps=c.deps)
            _, key = accounts.create_api_key(user.id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=c.deps, secrets=c.secrets)
            c.deps.prices.record([Tick(symbol="AAPL", price=Decimal(5), ts=c.deps.clock.now())])
            _, token = capabilities.create_access_token(account.id, c.deps, c.secrets)
            asyncio.run(_send_all(create_app(c), mode, n, account.id, key, token))
        finally:
            c.close()


async def _send_all(app: Any, mode: str, n: int, account_id: str, key: str,
                    token: str) -> None:
    for k in range(n):
        if mode == "token":
            body = json.dumps({"symbol": "AAPL", "side": "sell" if k % 2 else "buy",
                               "quantity": "1"}).encode()
            status = await _post(app, body, "/signal/execute-via-token/" + token,
                                 [(b"content-type", b"text/plain")])
        else:
            body = json.dumps({"symbol": "AAPL", "action": "closeLong" if k % 2 else "openLong",
                               "accountId": account_id, "quantity": 1, "executeMode": mode,
                               "sourceId": f"ir-{k}"}).encode()
            status = await _post(app, body, "/api/v1/signals",
                                 [(b"content-type", b"application/json"),
                                  (b"x-api-key", key.encode())])
        if status != 201:
            raise RuntimeError(f"signal {k} answered {status}")


async def _post(app: Any, body: bytes, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *headers,
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def count(mode: str, n: int, src: Path | None) -> int:
    """Instructions of one driven process (valgrind's callgrind total)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           sys.executable, "-m", "bench.instructions", "drive", mode, str(n)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
                          check=False)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def per_signal(mode: str, src: Path | None) -> dict[str, Any]:
    n1, n2 = COUNTS[mode]
    low, high = count(mode, n1, src), count(mode, n2, src)
    return {"mode": mode, "src": str(src or ROOT / "src"), "signals": [n1, n2],
            "instructions": [low, high], "per_signal": (high - low) / (n2 - n1)}


def main(argv: list[str]) -> None:
    if argv[:1] == ["drive"]:
        drive(argv[1], int(argv[2]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("mode", choices=sorted(COUNTS), nargs="?", default="pending")
    parser.add_argument("--src", type=Path, default=None,
                        help="another checkout's src directory, to measure it instead")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    result = per_signal(args.mode, args.src)
    print(json.dumps(result))
    print(f"{args.mode}: {result['per_signal'] / 1e6:.2f} million instructions per signal")


if __name__ == "__main__":
    main(sys.argv[1:])
