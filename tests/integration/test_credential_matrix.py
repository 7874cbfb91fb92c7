"""The credentials that are not API keys or sessions, against every route of the API: bob's
access token, bob's partner key, bob's channel key pair and an encoded token of bob's, each
sent every way a client could send it (X-API-Key, Bearer, the channel headers), aimed at
alice's account and objects. No answer may carry alice's data, none may be a 5xx, and alice's
books must be exactly as they were."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.services import capabilities, channels
from tradewire.services.ports import Page

# Routes a credential of this kind is made for, acting on its own account (bob's): a 2xx there
# is right, and is checked not to touch alice's.
OWN = {"/signal/execute-via-token/{access_token}", "/signal/post-execute-via-encoded-token",
       "/partners/quick-order", "/v1/signal", "/v2/signal"}
PUBLIC = {"/healthz", "/readyz", "/api/v1/auth/login"}


def _routes(client: httpx.Client) -> list[tuple[str, str]]:
    """Every documented operation, from the served spec."""
    spec = client.get("/openapi.json").json()
    return [(method.upper(), path) for path, operations in spec["paths"].items()
            for method in operations if method in ("get", "post", "put", "patch", "delete")]


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture
def aimed(client: httpx.Client, alice: Caller, bob: Caller,
          container: Container) -> dict[str, Any]:
    """alice's objects, and bob's credentials of every kind."""
    client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 100},
                headers=alice.headers)
    signal = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": alice.account_id, "quantity": 1,
        "executeMode": "pending"}).json()["signal"]["id"]
    deps, secrets = container.deps, container.secrets
    _, access = capabilities.create_access_token(bob.account_id, deps, secrets)
    partner, partner_key = capabilities.create_partner("bob-desk", deps, secrets)
    capabilities.grant_partner(partner.id, bob.account_id, deps)
    channel, channel_secret = channels.create_channel(partner.id, "bob-channel", deps, secrets)
    made = client.post("/signal/create-order", headers=bob.headers, json={
        "account_id": bob.account_id, "symbol": "AAPL", "side": "buy", "quantity": "1"})
    assert made.status_code in (200, 201), made.text
    encoded = made.json()["encoded_token"]
    ids = {"signal_id": signal, "accountId": alice.account_id, "account_id": alice.account_id,
           "id": signal, "strategy_id": signal, "parent_signal_id": signal, "trigger_id": signal,
           "access_token": access}
    return {"ids": ids, "credentials": {
        "access token as X-API-Key": {"X-API-Key": access},
        "access token as Bearer": {"Authorization": f"Bearer {access}"},
        "partner key as Bearer": {"Authorization": f"Bearer {partner_key}"},
        "partner key as X-API-Key": {"X-API-Key": partner_key},
        "channel key pair": {"anny-api-key": channel.api_key, "anny-api-secret": channel_secret},
        "encoded token as Bearer": {"Authorization": f"Bearer {encoded}"},
        "encoded token as X-API-Key": {"X-API-Key": encoded},
    }}


def test_no_credential_of_bobs_reaches_alices_objects_on_any_route(
        client: httpx.Client, container: Container, alice: Caller,
        aimed: dict[str, Any]) -> None:
    ids = aimed["ids"]
    body = json.dumps({"accountId": alice.account_id, "account_id": alice.account_id,
                       "symbol": "AAPL", "side": "buy", "quantity": "1", "action": "openLong",
                       "executeMode": "immediate", "signal_id": ids["signal_id"]})
    leaks, errors, tried = [], [], 0
    for method, path in _routes(client):
        if path in PUBLIC:
            continue
        url = _fill(path, ids)
        for name, headers in aimed["credentials"].items():
            r = client.request(method, url, content=body,
                               headers={**headers, "Content-Type": "application/json"})
            tried += 1
            if r.status_code >= 500:
                errors.append((name, method, path, r.status_code, r.text[:200]))
            elif r.status_code < 300 and path not in OWN and (
                    alice.account_id in r.text or ids["signal_id"] in r.text):
                leaks.append((name, method, path, r.status_code))
    assert tried > 300, tried
    assert errors == []
    assert leaks == []
    # bob's own routes may add bob's things; alice's pending signal stays as it was.
    r = client.get(f"/api/v1/signals/{ids['signal_id']}", headers=alice.headers)
    assert r.json()["signal"]["status"] == "pending"
    with container.deps.uow(write=False) as uow:
        assert uow.positions.get(alice.account_id, "AAPL").qty == Decimal(0)
        assert uow.orders.list([alice.account_id], Page(limit=10)) == []
