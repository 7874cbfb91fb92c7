"""Rate limits per credential: a clear 429 with Retry-After, the TradingView-style token route
answering 503 instead (TradingView resends only after a 5xx), and nothing done for a refused
request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.support import Server, login, make_caller, make_container
from tradewire.bootstrap import Container
from tradewire.services import capabilities

LIMIT = 3


@pytest.fixture
def limited(db_url: str, tmp_path: Path) -> Iterator[tuple[Container, httpx.Client]]:
    c = make_container(db_url, tmp_path / "data", rate_limit_per_minute=LIMIT)
    with Server(c) as server, httpx.Client(base_url=server.url, timeout=15) as http:
        yield c, http
    c.close()


def test_each_api_key_has_its_own_limit_and_hears_429_with_retry_after(
        limited: tuple[Container, httpx.Client]) -> None:
    c, http = limited
    alice, bob = make_caller(c), make_caller(c)
    for _ in range(LIMIT):
        assert http.get("/api/v1/orders", headers=alice.headers).status_code == 200
    refused = http.get("/api/v1/orders", headers=alice.headers)
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    assert http.get("/api/v1/orders", headers=bob.headers).status_code == 200  # bob's own bucket
    session = login(http, bob)  # a signed-in session is another credential
    assert http.get("/api/v1/orders", headers=session).status_code == 200


def test_a_signal_refused_by_the_limit_stores_nothing(
        limited: tuple[Container, httpx.Client]) -> None:
    c, http = limited
    alice = make_caller(c)
    body = {"symbol": "AAPL", "action": "openLong", "accountId": alice.account_id,
            "quantity": 1, "executeMode": "pending"}
    answers = [http.post("/api/v1/signals", json={**body, "sourceId": f"s-{i}"},
                         headers=alice.headers) for i in range(LIMIT + 2)]
    assert [a.status_code for a in answers].count(429) == 2
    assert [a.status_code for a in answers[:LIMIT]] == [201] * LIMIT  # pending: stored, held
    with c.db.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(
            text("SELECT source_id FROM signal WHERE account_id = :a"), {"a": alice.account_id})}
    assert stored == {f"s-{i}" for i in range(LIMIT)}


def test_the_token_webhook_answers_503_past_its_limit(
        limited: tuple[Container, httpx.Client]) -> None:
    c, http = limited
    alice = make_caller(c)
    _, token = capabilities.create_access_token(alice.account_id, c.deps, c.secrets)
    order = {"symbol": "AAPL", "side": "buy", "quantity": "1"}
    codes = [http.post(f"/signal/execute-via-token/{token}", json=order).status_code
             for _ in range(LIMIT + 1)]
    assert codes[-1] == 503 and 503 not in codes[:-1]
    last = http.post(f"/signal/execute-via-token/{token}", json=order)
    assert last.status_code == 503 and int(last.headers["retry-after"]) >= 1
    assert last.json()["code"] == "SERVICE_OVERLOADED"
