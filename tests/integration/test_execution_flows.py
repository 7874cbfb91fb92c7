"""The execution flows of seed 000 over HTTP: triggers, encoded tokens, access tokens, partners."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx

from tests.support import Caller, login
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.services import capabilities


def order(caller: Caller | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "quantity": 10}
    if caller is not None:
        body["account_id"] = caller.account_id
    body.update(fields)
    return body


def set_price(client: httpx.Client, caller: Caller, value: float) -> None:
    assert client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": value},
                       headers=caller.headers).status_code == 200


def orders(client: httpx.Client, caller: Caller) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/orders", headers=caller.headers).json()["orders"])


def test_create_order_stores_without_executing(client: httpx.Client, alice: Caller) -> None:
    r = client.post("/signal/create-order", json=order(alice), headers=alice.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["trigger_id"] and body["encoded_token"].startswith("twet_")
    assert body["order"]["status"] == "pending" and body["used"] is False
    assert orders(client, alice) == []


def test_trigger_id_executes_for_its_owner_only(client: httpx.Client, alice: Caller,
                                                bob: Caller) -> None:
    set_price(client, alice, 190)
    trigger_id = client.post("/signal/create-order", json=order(alice),
                             headers=alice.headers).json()["trigger_id"]
    r = client.get("/signal/execute", params={"trigger_id": trigger_id}, headers=bob.headers)
    assert r.status_code == 404
    r = client.get("/signal/execute", params={"trigger_id": trigger_id})
    assert r.status_code == 401
    r = client.get("/signal/execute", params={"trigger_id": trigger_id},
                   headers=login(client, alice))
    assert r.status_code == 200, r.text
    assert r.json()["order"]["status"] == "executed"
    assert orders(client, alice)[0]["status"] == "filled"
    again = client.get("/signal/execute", params={"trigger_id": trigger_id}, headers=alice.headers)
    assert again.status_code == 409


def test_encoded_token_executes_once_without_other_authentication(client: httpx.Client,
                                                                  alice: Caller) -> None:
    set_price(client, alice, 190)
    token = client.post("/signal/create-order", json=order(alice),
                        headers=alice.headers).json()["encoded_token"]
    r = client.post("/signal/post-execute-via-encoded-token", params={"encoded_token": token})
    assert r.status_code == 200, r.text
    assert r.json()["order"]["status"] == "executed"
    again = client.post("/signal/post-execute-via-encoded-token", params={"encoded_token": token})
    assert again.status_code == 409
    assert len(orders(client, alice)) == 1


def test_a_get_never_executes_an_encoded_token(client: httpx.Client, alice: Caller) -> None:
    token = client.post("/signal/create-order", json=order(alice),
                        headers=alice.headers).json()["encoded_token"]
    r = client.get("/signal/post-execute-via-encoded-token", params={"encoded_token": token})
    assert r.status_code == 405
    assert orders(client, alice) == []


def test_fifty_concurrent_uses_of_one_token_execute_exactly_once(client: httpx.Client,
                                                                 server: Any,
                                                                 alice: Caller) -> None:
    set_price(client, alice, 190)
    token = client.post("/signal/create-order", json=order(alice),
                        headers=alice.headers).json()["encoded_token"]
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def use() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as own:
            barrier.wait()
            r = own.post("/signal/post-execute-via-encoded-token",
                         params={"encoded_token": token})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=use) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(set(statuses)) == [200, 409]
    assert statuses.count(200) == 1
    assert len(orders(client, alice)) == 1


def test_an_expired_token_is_refused(client: httpx.Client, alice: Caller,
                                     clock: ManualClock) -> None:
    token = client.post("/signal/create-order", json=order(alice, expires_in=600),
                        headers=alice.headers).json()["encoded_token"]
    clock.advance(timedelta(minutes=11))
    r = client.post("/signal/post-execute-via-encoded-token", params={"encoded_token": token})
    assert r.status_code == 409 and "expired" in r.json()["error"]
    assert orders(client, alice) == []


def test_a_revoked_token_is_refused(client: httpx.Client, alice: Caller) -> None:
    created = client.post("/signal/create-order", json=order(alice), headers=alice.headers).json()
    r = client.delete(f"/signal/trigger/{created['trigger_id']}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["revoked"] is True
    r = client.post("/signal/post-execute-via-encoded-token",
                    params={"encoded_token": created["encoded_token"]})
    assert r.status_code == 409 and "revoked" in r.json()["error"]


def test_a_forged_token_is_not_found(client: httpx.Client) -> None:
    r = client.post("/signal/post-execute-via-encoded-token",
                    params={"encoded_token": "twet_" + "A" * 43})
    assert r.status_code == 404


def test_access_token_accepts_a_text_plain_tradingview_body(client: httpx.Client, alice: Caller,
                                                            container: Container) -> None:
    set_price(client, alice, 190)
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    r = client.post(f"/signal/execute-via-token/{token}",
                    content=b'{"symbol": "AAPL", "side": "buy", "quantity": "10"}',
                    headers={"Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 201, r.text
    assert r.json()["order"]["status"] == "executed"
    assert orders(client, alice)[0]["qty"] == "10"


def test_access_token_runs_a_batch_in_order_with_a_result_each(client: httpx.Client,
                                                               alice: Caller,
                                                               container: Container) -> None:
    set_price(client, alice, 190)
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    batch = [order(quantity=10), order(side="sell", quantity=4), order(quantity=-1),
             order(side="sell", symbol="MSFT")]
    r = client.post(f"/signal/execute-via-token/{token}", json=batch)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 201, 400, 400]
    assert results[2]["details"][0]["path"] == [2, "quantity"]
    positions = client.get("/api/v1/positions", headers=alice.headers).json()["positions"]
    assert positions[0]["qty"] == "6"


def test_access_token_is_bound_to_its_account_and_revocable(client: httpx.Client, alice: Caller,
                                                            bob: Caller,
                                                            container: Container) -> None:
    token_row, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                        container.secrets)
    r = client.post(f"/signal/execute-via-token/{token}", json=order(bob))
    assert r.status_code == 400 and r.json()["details"][0]["path"] == ["account_id"]
    assert client.get("/api/v1/signals", headers={"X-API-Key": token}).status_code == 401
    capabilities.revoke_access_token(token_row.id, container.deps)
    r = client.post(f"/signal/execute-via-token/{token}", json=order())
    assert r.status_code == 401


def test_partner_quick_order_needs_a_grant(client: httpx.Client, alice: Caller, bob: Caller,
                                           container: Container) -> None:
    set_price(client, alice, 190)
    partner, bearer = capabilities.create_partner("desk", container.deps, container.secrets)
    capabilities.grant_partner(partner.id, alice.account_id, container.deps)
    headers = {"Authorization": f"Bearer {bearer}"}
    r = client.post("/partners/quick-order", json=order(alice), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["order"]["status"] == "executed"
    r = client.post("/partners/quick-order", json=order(bob), headers=headers)
    missing = "00000000-0000-4000-8000-000000000000"
    nowhere = client.post("/partners/quick-order", json={**order(), "account_id": missing},
                          headers=headers)
    assert r.status_code == nowhere.status_code == 404  # not granted looks like missing
    assert r.text.replace(bob.account_id, missing) == nowhere.text
    assert client.post("/partners/quick-order", json=order(alice),
                       headers=alice.headers).status_code == 403
    assert client.post("/partners/quick-order", json=order(alice),
                       headers=login(client, alice)).status_code == 403
    assert client.get("/api/v1/orders", headers=headers).status_code == 401


def test_signal_timeline_records_each_stage_time(client: httpx.Client, alice: Caller,
                                                 container: Container) -> None:
    set_price(client, alice, 190)
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    r = client.post(f"/signal/execute-via-token/{token}", json=order())
    signal_id = r.json()["order"]["signal_id"]
    with container.deps.uow(write=False) as uow:
        times = uow.timings.of_signal(signal_id)
    assert all(times[k] is not None for k in ("received_at", "decided_at", "submitted_at",
                                              "acked_at"))
