"""POST /api/v1/signals with an X-API-Key reads the key inside the unit that stores the signal.

That saves the request a read transaction of its own (a quarter of a pending signal's CPU,
docs/performance.md) and changes nothing a caller can see: a key revoked a moment ago by
another process is refused on its next signal, a key without `signals:write` gets 403, a
stranger's malformed body gets 401 rather than a 400 that would describe it, and a refused
signal leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from tests.support import Caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.services import accounts


def _body(caller: Caller, source: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": source, **extra}


def _signals(container: Container) -> int:
    with container.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM signal")).scalar_one())


@pytest.fixture
def other_process(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Container]:
    """A second tradewire on the same database, as a second `tradewire api` process is."""
    c = make_container(db_url, tmp_path / "other", clock)
    yield c
    c.close()


def test_the_key_is_read_once_and_inside_the_write_unit(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    lookups: list[bool] = []

    def seen(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_key" in statement:
            lookups.append(bool(conn.get_execution_options().get("tw_write", True)))

    event.listen(container.db.engine, "before_cursor_execute", seen)
    try:
        r = client.post("/api/v1/signals", headers=alice.headers, json=_body(alice, "in-unit"))
    finally:
        event.remove(container.db.engine, "before_cursor_execute", seen)
    assert r.status_code == 201, r.text
    assert lookups == [True]  # one statement, on the writing connection


def test_a_key_revoked_by_another_process_is_refused_on_its_next_signal(
        client: httpx.Client, alice: Caller, container: Container,
        other_process: Container) -> None:
    key, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=other_process.deps,
                                             secrets=other_process.secrets)
    headers = {"X-API-Key": plaintext}
    first = client.post("/api/v1/signals", headers=headers, json=_body(alice, "before-revoke"))
    assert first.status_code == 201, first.text
    assert accounts.revoke_api_key(key.id, other_process.deps)

    before = _signals(container)
    r = client.post("/api/v1/signals", headers=headers, json=_body(alice, "after-revoke"))
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "UNAUTHORIZED"
    assert _signals(container) == before


def test_a_key_without_the_write_scope_gets_403_and_stores_nothing(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    _, plaintext = accounts.create_api_key(alice.user_id, {Scope.SIGNALS_READ}, None,
                                           deps=container.deps, secrets=container.secrets)
    before = _signals(container)
    r = client.post("/api/v1/signals", headers={"X-API-Key": plaintext},
                    json=_body(alice, "read-only"))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "FORBIDDEN"
    assert _signals(container) == before


@pytest.mark.parametrize("body", [b"{not json", b'{"symbol": "AAPL"}', b"[]"])
def test_a_stranger_learns_nothing_from_a_malformed_body(
        client: httpx.Client, container: Container, body: bytes) -> None:
    r = client.post("/api/v1/signals", headers={"X-API-Key": "tw_" + "x" * 40,
                                                "Content-Type": "application/json"},
                    content=body)
    assert r.status_code == 401, r.text
    assert "details" not in r.json() or not r.json()["details"]


def test_a_key_narrowed_to_another_account_stores_nothing(
        client: httpx.Client, alice: Caller, bob: Caller, container: Container) -> None:
    _, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES,
                                           [alice.account_id], deps=container.deps,
                                           secrets=container.secrets)
    before = _signals(container)
    r = client.post("/api/v1/signals", headers={"X-API-Key": plaintext},
                    json=_body(bob, "not-mine"))
    assert r.status_code == 404, r.text
    assert _signals(container) == before
