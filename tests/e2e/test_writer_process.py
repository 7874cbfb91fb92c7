"""`tradewire serve`'s writer process on SQLite (entrypoints/api/writer_process.py), as real
processes: waiting signals are stored there and answered only once it has written them;
immediate signals stay in the API process; refusals come back as the API process would give
them; when it goes, the signal it held gets 503 and the API process writes the rest itself;
it does not outlive the API process, and `TRADEWIRE_WRITER_PROCESS=false` starts none.

The writer process is stopped (SIGSTOP) only between requests, never holding the database's
write lock: the API process's own writes go on meanwhile."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Cli, Service

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="finds the writer process through Linux's /proc")

WAIT_S = 30
HELD_S = 1.0  # long enough for an answer that did not wait for the writer process to come


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _writer_pid(service: Service) -> int | None:
    assert service.proc is not None
    for pid in _children(service.proc.pid):
        try:
            if b"writer_process" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except FileNotFoundError:
            continue
    return None


def _signal(account_id: str, mode: str = "pending", **extra: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": account_id, "quantity": 1,
            "executeMode": mode, **extra}


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


@pytest.fixture
def boot(cli: Cli) -> dict[str, Any]:
    return cli.json("init")


def test_waiting_signals_are_answered_only_once_the_writer_process_has_written_them(
        boot: dict[str, Any], service: Service) -> None:
    service.start()
    writer = _writer_pid(service)
    assert writer is not None, "serve on SQLite starts a writer process"
    key = {"X-API-Key": boot["api_key"]}
    with service.client(**key) as c, ThreadPoolExecutor(2) as pool:
        assert c.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 190}
                      ).status_code == 200
        os.kill(writer, signal.SIGSTOP)
        try:
            held = pool.submit(c.post, "/api/v1/signals",
                               json=_signal(boot["account_id"], sourceId="held"))
            # An immediate signal is stored and sent by the API process itself.
            now = c.post("/api/v1/signals", json=_signal(boot["account_id"], "immediate"))
            assert now.status_code == 201 and now.json()["signal"]["status"] == "executed", now.text
            time.sleep(HELD_S)
            assert not held.done(), "a pending signal was answered without the writer process"
        finally:
            os.kill(writer, signal.SIGCONT)
        r = held.result(timeout=WAIT_S)
        assert r.status_code == 201 and r.json()["signal"]["status"] == "pending", r.text
        # Stored: the same sourceId again answers as the original did.
        again = c.post("/api/v1/signals", json=_signal(boot["account_id"], sourceId="held"))
        assert again.status_code == 200 and again.json()["signal"]["id"] == r.json()["signal"]["id"]
        listed = c.get("/api/v1/signals", params={"status": "pending"}).json()["signals"]
        assert [s["id"] for s in listed] == [r.json()["signal"]["id"]]


def test_refusals_come_back_from_the_writer_process_as_the_api_process_gives_them(
        cli: Cli, boot: dict[str, Any], tmp_path: Path) -> None:
    # Three signals a minute for a credential: the writer process keeps the count.
    service = Service({**cli.env, "TRADEWIRE_RATE_LIMIT_PER_MINUTE": "3"}, tmp_path, tmp_path)
    other = cli.json("accounts", "create", "--name", "other")
    narrow = cli.json("keys", "create", "--scopes", "signals:read", "--account", other["id"])
    try:
        service.start()
        assert _writer_pid(service) is not None
        with service.client() as c:
            key = {"X-API-Key": boot["api_key"]}
            r = c.post("/api/v1/signals", json=_signal(other["id"]),
                       headers={"X-API-Key": narrow["key"]})
            assert (r.status_code, r.json()["code"]) == (403, "FORBIDDEN"), r.text
            r = c.post("/api/v1/signals", json=_signal(boot["account_id"]),
                       headers={"X-API-Key": "tw_not-a-key"})
            assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED"), r.text
            r = c.post("/api/v1/signals",
                       json=_signal("00000000-0000-4000-8000-000000000000"), headers=key)
            assert (r.status_code, r.json()["code"]) == (404, "ACCOUNT_NOT_FOUND"), r.text
            made = [c.post("/api/v1/signals", json=_signal(boot["account_id"]), headers=key)
                    for _ in range(2)]
            assert [m.status_code for m in made] == [201, 201]
            r = c.post("/api/v1/signals", json=_signal(boot["account_id"]), headers=key)
            assert (r.status_code, r.json()["code"]) == (429, "RATE_LIMITED"), r.text
            assert int(r.headers["retry-after"]) >= 1
            listed = c.get("/api/v1/signals", headers=key).json()["signals"]
            assert len(listed) == 2  # nothing of the refused ones stored
    finally:
        service.kill()


def test_when_the_writer_process_goes_its_signal_gets_503_and_the_api_process_writes_on(
        boot: dict[str, Any], service: Service) -> None:
    service.start()
    writer = _writer_pid(service)
    assert writer is not None
    key = {"X-API-Key": boot["api_key"]}
    with service.client(**key) as c, ThreadPoolExecutor(1) as pool:
        first = c.post("/api/v1/signals", json=_signal(boot["account_id"], sourceId="first"))
        assert first.status_code == 201, first.text
        os.kill(writer, signal.SIGSTOP)
        lost = pool.submit(c.post, "/api/v1/signals",
                           json=_signal(boot["account_id"], sourceId="lost"))
        time.sleep(HELD_S)
        os.kill(writer, signal.SIGKILL)
        r = lost.result(timeout=WAIT_S)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.json()["code"] == "SERVICE_OVERLOADED"
        # The retry the 503 asks for: stored now, by the API process.
        retried = c.post("/api/v1/signals", json=_signal(boot["account_id"], sourceId="lost"))
        assert retried.status_code in (200, 201), retried.text
        more = c.post("/api/v1/signals", json=_signal(boot["account_id"], sourceId="more"))
        assert more.status_code == 201, more.text
        again = c.post("/api/v1/signals", json=_signal(boot["account_id"], sourceId="first"))
        assert again.status_code == 200 and again.json()["signal"]["id"] == first.json()["signal"]["id"]
        assert c.get("/readyz").status_code == 200
        ids = {s["sourceId"] for s in c.get("/api/v1/signals").json()["signals"]}
        assert ids == {"first", "lost", "more"}


def test_the_writer_process_does_not_outlive_the_api_process(
        boot: dict[str, Any], service: Service) -> None:
    service.start()
    writer = _writer_pid(service)
    assert writer is not None
    service.kill()  # SIGKILL: no shutdown code runs in the API process
    deadline = time.monotonic() + WAIT_S
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer)


def test_serve_without_a_writer_process_when_set_off(
        cli: Cli, boot: dict[str, Any], tmp_path: Path) -> None:
    service = Service({**cli.env, "TRADEWIRE_WRITER_PROCESS": "false"}, tmp_path, tmp_path)
    try:
        service.start()
        assert _writer_pid(service) is None
        with httpx.Client(base_url=service.url, timeout=15,
                          headers={"X-API-Key": boot["api_key"]}) as c:
            r = c.post("/api/v1/signals", json=_signal(boot["account_id"]))
            assert r.status_code == 201, r.text
    finally:
        service.kill()
