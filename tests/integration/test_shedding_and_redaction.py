"""Overload answers 503 before any work; secrets in paths never reach a log line."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Server, make_caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.entrypoints.api.redaction import RedactSecrets, redact
from tradewire.entrypoints.api.shedding import Shed
from tradewire.services import capabilities


def test_requests_past_the_bound_get_503_with_retry_after_and_reach_nothing() -> None:
    release = asyncio.Event()
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    shed = Shed(app, max_in_flight=2)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def scenario() -> None:
        scope = {"type": "http", "method": "POST", "path": "/api/v1/signals"}
        first = [asyncio.create_task(shed(scope, receive, send)) for _ in range(2)]
        await asyncio.sleep(0.01)
        await shed(scope, receive, send)  # a third while two are in flight
        release.set()
        await asyncio.gather(*first)

    asyncio.run(scenario())
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert sorted(m["status"] for m in starts) == [201, 201, 503]
    busy = next(m for m in starts if m["status"] == 503)
    assert (b"retry-after", b"1") in busy["headers"]
    assert len(reached) == 2
    assert shed.in_flight == 0


@pytest.mark.parametrize("line", [
    'POST /signal/execute-via-token/twat_abcdefghijklmnop HTTP/1.1" 201',
    "POST /signal/post-execute-via-encoded-token?encoded_token=twet_secretsecret HTTP/1.1",
    "X-API-Key tw_1234abcd_zzzzzzzzzzzzzzzzzz used",
    # All three in one line: finding the first must not stop the others being masked.
    "GET /signal/execute-via-token/twat_abcdefghijklmnop?encoded_token=twet_secretsecret "
    "key=tw_1234abcd_zzzzzzzzzzzzzzzzzz",
])
def test_secrets_are_masked_in_log_text(line: str) -> None:
    masked = redact(line)
    assert "[REDACTED]" in masked
    assert "abcdefghijklmnop" not in masked and "secretsecret" not in masked
    assert "zzzzzzzzzzzzzzzzzz" not in masked


def test_the_access_log_of_a_real_server_never_shows_the_access_token(
        db_url: str, tmp_path: Path, clock: ManualClock) -> None:
    c = make_container(db_url, tmp_path / "data", clock)
    alice = make_caller(c)
    _, token = capabilities.create_access_token(alice.account_id, c.deps, c.secrets)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    handler = Keep()
    server = Server(c, access_log=True)  # uvicorn sets up its loggers here; listen after
    access.addHandler(handler)
    try:
        with server, httpx.Client(base_url=server.url) as client:
            r = client.post(f"/signal/execute-via-token/{token}",
                            json={"symbol": "AAPL", "side": "buy", "quantity": 1})
            assert r.status_code in (201, 400)
    finally:
        access.removeHandler(handler)
        c.close()
    assert any("execute-via-token" in line for line in records)
    assert not any(token in line for line in records)
    assert any(isinstance(f, RedactSecrets) for f in access.filters)
