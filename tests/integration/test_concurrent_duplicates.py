"""Guarantee 2 under contention: concurrent duplicates make one signal and one order.

Fifty clients, each with its own connection, are released together by a barrier and send the
same sourceId. The answers, the API listings and the tables themselves must all agree that
exactly one signal (and, for immediate, exactly one broker order) exists. Runs on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.support import Caller, Server, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container

CLIENTS = 50
JOIN_TIMEOUT_S = 60
# Loopback is plain HTTP, but httpx builds a TLS context per client (about 30 ms); share one.
TLS = ssl.create_default_context()


def signal(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 10, "executeMode": "immediate"}
    body.update(fields)
    return body


@pytest.fixture
def container(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Container]:
    """tests/conftest.py's container, with room for every client at once. Past
    `max_in_flight` signal requests get 503 before any work is done (load shedding, tested in
    test_shedding_and_redaction.py); here all of them must reach the dedup at the same time."""
    c = make_container(db_url, tmp_path / "data", clock, max_in_flight=4 * CLIENTS)
    yield c
    c.close()


def storm(url: str, caller: Caller, body: dict[str, Any], n: int = CLIENTS) -> list[httpx.Response]:
    """`n` threads, each with its own client, POST the same body at the same moment."""
    barrier = threading.Barrier(n)
    answers: list[httpx.Response | None] = [None] * n
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            with httpx.Client(base_url=url, headers=caller.headers, timeout=30, verify=TLS) as c:
                c.get("/healthz")  # connect before the barrier, so the POSTs really overlap
                barrier.wait(timeout=20)
                answers[i] = c.post("/api/v1/signals", json=body)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a client did not finish in time"
    assert not errors, errors
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def rows(container: Container, sql: str, **params: Any) -> list[Any]:
    engine = container.db.engine
    with engine.connect().execution_options(tw_write=False) as conn:
        return list(conn.execute(text(sql), params))


def count(container: Container, sql: str, **params: Any) -> int:
    return int(rows(container, sql, **params)[0][0])


def set_price(client: httpx.Client, caller: Caller, symbol: str, price: float) -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def api_signals(client: httpx.Client, caller: Caller) -> list[dict[str, Any]]:
    r = client.get("/api/v1/signals", params={"limit": 200}, headers=caller.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["signals"])


def api_orders(client: httpx.Client, caller: Caller) -> list[dict[str, Any]]:
    r = client.get("/api/v1/orders", params={"limit": 200}, headers=caller.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["orders"])


@pytest.mark.parametrize("mode", ["immediate", "pending"])
def test_concurrent_duplicates_make_exactly_one_signal_and_one_order(
        mode: str, server: Server, client: httpx.Client, alice: Caller,
        container: Container) -> None:
    set_price(client, alice, "AAPL", 190)
    body = signal(alice, executeMode=mode, sourceId=f"storm-{mode}")
    answers = storm(server.url, alice, body)

    codes = Counter(a.status_code for a in answers)
    assert set(codes) <= {200, 201, 409}, {a.status_code: a.text for a in answers}
    assert codes[201] == 1, codes
    created = next(a for a in answers if a.status_code == 201).json()["signal"]
    for a in answers:
        if a.status_code == 200:
            assert a.json()["success"] is True
            assert a.json()["signal"]["id"] == created["id"]
            assert a.json()["message"].startswith(f"Signal with sourceId 'storm-{mode}' already")
        elif a.status_code == 409:
            assert a.json()["success"] is False

    # Through the API.
    [stored] = api_signals(client, alice)
    assert stored["id"] == created["id"] and stored["sourceId"] == f"storm-{mode}"
    orders = api_orders(client, alice)
    if mode == "immediate":
        assert created["status"] == "executed"
        assert [o["id"] for o in orders] == [created["orderId"]]
        assert orders[0]["status"] == "filled" and orders[0]["signalId"] == created["id"]
        positions = client.get("/api/v1/positions", headers=alice.headers).json()["positions"]
        assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", "10")]
    else:
        assert created["status"] == "pending"
        assert orders == []

    # In the tables themselves.
    account = alice.account_id
    assert count(container, "SELECT count(*) FROM signal WHERE account_id = :a", a=account) == 1
    assert count(container, "SELECT count(*) FROM signal WHERE account_id = :a "
                            "AND dedup_key = :s", a=account, s=f"storm-{mode}") == 1
    expected_orders = 1 if mode == "immediate" else 0
    assert count(container, "SELECT count(*) FROM trade_order WHERE account_id = :a",
                 a=account) == expected_orders
    assert count(container, "SELECT count(*) FROM paper_order WHERE account_ref = :a",
                 a=account) == expected_orders
    assert count(container, "SELECT count(*) FROM fill WHERE account_id = :a",
                 a=account) == expected_orders
    received = count(container, "SELECT count(*) FROM audit_event WHERE account_id = :a "
                                "AND event = 'SignalReceived'", a=account)
    assert received == 1


def test_duplicates_of_one_account_do_not_block_the_same_source_id_of_another(
        server: Server, client: httpx.Client, alice: Caller, bob: Caller,
        container: Container) -> None:
    """Two storms at once, one per account, with the same sourceId: one signal each."""
    results: dict[str, list[httpx.Response]] = {}

    def run(caller: Caller) -> None:
        results[caller.account_id] = storm(server.url, caller, signal(
            caller, executeMode="pending", sourceId="shared"), n=20)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads)
    for caller in (alice, bob):
        answers = results[caller.account_id]
        assert Counter(a.status_code for a in answers)[201] == 1
        assert {a.status_code for a in answers} <= {200, 201, 409}
        [stored] = api_signals(client, caller)
        assert stored["accountId"] == caller.account_id
    assert count(container, "SELECT count(*) FROM signal WHERE source_id = 'shared'") == 2


def _replace_chain(container: Container, account: str, source_id: str) -> list[Any]:
    return rows(container, "SELECT id, status, replaced_by, dedup_key FROM signal "
                           "WHERE account_id = :a AND source_id = :s", a=account, s=source_id)


def _assert_one_live_signal_in_a_chain(signals: list[Any], first_id: str, live_status: str
                                       ) -> str:
    """Every signal but one is replaced, and the replacements form one chain, no forks."""
    live = [s for s in signals if s.status != "replaced"]
    assert len(live) == 1, [(s.id, s.status) for s in signals]
    [holder] = live
    assert holder.status == live_status
    assert [s.id for s in signals if s.dedup_key is not None] == [holder.id]
    by_id = {s.id: s for s in signals}
    successors = [s.replaced_by for s in signals if s.status == "replaced"]
    assert len(successors) == len(set(successors)), "one signal was replaced twice"
    seen, current = [], by_id[first_id]
    while current.status == "replaced":
        seen.append(current.id)
        current = by_id[current.replaced_by]
    assert current.id == holder.id
    assert len(seen) == len(signals) - 1, "a replaced signal is outside the chain"
    return str(holder.id)


@pytest.mark.parametrize("mode", ["pending", "scheduled"])
def test_concurrent_replace_existing_leaves_exactly_one_live_signal(
        mode: str, server: Server, client: httpx.Client, alice: Caller,
        container: Container) -> None:
    extra: dict[str, Any] = {"executeMode": mode, "sourceId": f"replace-{mode}"}
    if mode == "scheduled":
        extra.update(scheduledProcessAt="2026-02-09T10:00:00", timezone="America/New_York")
    first = client.post("/api/v1/signals", json=signal(alice, **extra), headers=alice.headers)
    assert first.status_code in (201, 202), first.text
    first_id = first.json()["signal"]["id"]

    answers = storm(server.url, alice, signal(alice, replaceExisting=True, **extra))

    codes = Counter(a.status_code for a in answers)
    ok = 202 if mode == "scheduled" else 201
    assert set(codes) <= {ok, 409}, {a.status_code: a.text for a in answers}
    assert codes[ok] >= 1
    created = {a.json()["signal"]["id"] for a in answers if a.status_code == ok}
    assert len(created) == codes[ok]

    signals = _replace_chain(container, alice.account_id, f"replace-{mode}")
    assert len(signals) == 1 + codes[ok]  # the first one plus one per success, nothing else
    live_id = _assert_one_live_signal_in_a_chain(signals, first_id, mode)
    assert live_id in created
    listed = api_signals(client, alice)
    assert [s["id"] for s in listed if s["status"] != "replaced"] == [live_id]
    assert len(listed) == len(signals)
    if mode == "scheduled":
        jobs = rows(container, "SELECT signal_id, status FROM job WHERE account_id = :a",
                    a=alice.account_id)
        assert [j.signal_id for j in jobs if j.status == "scheduled"] == [live_id]
    assert api_orders(client, alice) == []


def test_concurrent_immediate_replacements_send_only_one_order_to_the_broker(
        server: Server, client: httpx.Client, alice: Caller, container: Container) -> None:
    """replaceExisting supersedes only what has not reached the broker: whatever the race,
    exactly one signal of the sourceId is live, and exactly one order reached the broker."""
    set_price(client, alice, "AAPL", 190)
    first = client.post("/api/v1/signals", json=signal(alice, executeMode="pending",
                                                        sourceId="replace-now"),
                        headers=alice.headers)
    first_id = first.json()["signal"]["id"]

    answers = storm(server.url, alice, signal(alice, sourceId="replace-now",
                                              replaceExisting=True))

    codes = Counter(a.status_code for a in answers)
    assert set(codes) <= {201, 400, 409}, {a.status_code: a.text for a in answers}
    assert codes[201] >= 1
    for a in answers:
        if a.status_code == 400:
            assert a.json()["code"] == "SIGNAL_REJECTED"
            assert "cannot be replaced" in a.json()["error"]

    signals = _replace_chain(container, alice.account_id, "replace-now")
    assert len(signals) == 1 + codes[201]
    live_id = _assert_one_live_signal_in_a_chain(signals, first_id, "executed")

    # A signal superseded before its order was sent: the answer must not say the order is
    # on its way to the broker (it was withdrawn and never will be sent).
    for a in answers:
        if a.status_code == 201 and a.json()["signal"]["status"] == "replaced":
            assert "on its way to the broker" not in a.json()["message"], a.text
            assert "successfully" not in a.json()["message"], a.text

    sent = rows(container, "SELECT client_order_id FROM paper_order WHERE account_ref = :a",
                a=alice.account_id)
    assert len(sent) == 1
    orders = api_orders(client, alice)
    [reached] = [o for o in orders if o["status"] != "canceled"]
    assert reached["signalId"] == live_id and reached["status"] == "filled"
    assert reached["clientOrderId"] == sent[0].client_order_id
    positions = client.get("/api/v1/positions", headers=alice.headers).json()["positions"]
    assert [(p["symbol"], p["qty"]) for p in positions] == [("AAPL", "10")]
