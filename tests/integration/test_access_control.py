"""Guarantee 6: who sees what. Every credential against every route and against alice's objects.

alice owns two accounts (A1 with an executed, a pending and a scheduled signal; A2 with a pending
one), bob owns one, an admin sees all, and one of alice's keys is narrowed to A2. Denied calls
change nothing; another account's object answers 404 exactly like one that does not exist.

One world per database serves the module; tests that change state make their own signals, so
the listings below assert "includes what it may see, and nothing else" rather than exact sets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.support import HOOKS, Caller, Server, database_url, login, make_caller, make_container, row_counts
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.services import accounts

SIGNALS = "/api/v1/signals"
TABLES = ("signal", "trade_order", "job", "audit_event", "paper_order", "market_price")
SCOPES = sorted(accounts.DEFAULT_KEY_SCOPES)


@dataclass
class World:
    container: Container
    server: Server
    alice: Caller
    bob: Caller
    admin: Caller
    a2: str  # alice's second account
    creds: dict[str, dict[str, str]]
    lacking: dict[Scope, dict[str, str]]  # alice's keys with every default scope but one
    only: dict[Scope, dict[str, str]]  # alice's keys with one scope
    no_scope: dict[str, str]
    signals: dict[str, str] = field(default_factory=dict)  # name -> id
    order_id: str = ""
    bob_signals: list[str] = field(default_factory=list)
    bob_order_id: str = ""

    @property
    def alice_ids(self) -> list[str]:
        """Everything of alice's that no answer to bob may contain."""
        return [self.alice.account_id, self.a2, self.alice.user_id, self.alice.username,
                self.order_id, *self.signals.values()]


def _key(c: Container, caller: Caller, scopes: frozenset[Scope],
         account_ids: list[str] | None = None) -> dict[str, str]:
    _, plaintext = accounts.create_api_key(caller.user_id, scopes, account_ids, deps=c.deps,
                                           secrets=c.secrets)
    return {"X-API-Key": plaintext}


def _post(client: httpx.Client, headers: dict[str, str], body: dict[str, Any],
          status: int) -> dict[str, Any]:
    r = client.post(SIGNALS, json=body, headers=headers)
    assert r.status_code == status, r.text
    return dict(r.json()["signal"])


def signal(account_id: str, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": account_id, "quantity": 10,
            "executeMode": "pending"}
    body.update(fields)
    return body


def _populate(w: World, client: httpx.Client) -> None:
    alice, bob = w.alice.headers, w.bob.headers
    for symbol, price in (("AAPL", 190), ("MSFT", 400)):
        r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                        headers=alice)
        assert r.status_code == 200, r.text
    executed = _post(client, alice, signal(w.alice.account_id, executeMode="immediate"), 201)
    assert executed["status"] == "executed", executed
    w.order_id = executed["orderId"]
    w.signals = {
        "executed": executed["id"],
        "pending": _post(client, alice, signal(w.alice.account_id), 201)["id"],
        "scheduled": _post(client, alice, signal(
            w.alice.account_id, executeMode="scheduled", scheduledProcessAt="2026-02-07T09:25:00",
            timezone="America/New_York"), 202)["id"],
        "pending-a2": _post(client, w.creds["narrow-key"], signal(w.a2, symbol="TSLA"), 201)["id"],
    }
    bob_exec = _post(client, bob, signal(w.bob.account_id, symbol="MSFT",
                                         executeMode="immediate"), 201)
    w.bob_order_id = bob_exec["orderId"]
    w.bob_signals = [bob_exec["id"], _post(client, bob, signal(w.bob.account_id), 201)["id"]]


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"access-{request.param}")
    with database_url(str(request.param), tmp) as url:
        c = make_container(url, tmp / "data", ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC)))
        try:
            alice, bob = make_caller(c), make_caller(c)
            admin = make_caller(c, admin=True)
            a2 = accounts.create_account(alice.user_id, "second", broker="paper",
                                         cash=Decimal(50_000), deps=c.deps).id
            defaults = accounts.DEFAULT_KEY_SCOPES
            with Server(c) as server:
                with httpx.Client(base_url=server.url, timeout=30, event_hooks=HOOKS) as client:
                    creds = {"alice-key": alice.headers, "alice-jwt": login(client, alice),
                             "bob-key": bob.headers, "bob-jwt": login(client, bob),
                             "admin-key": admin.headers, "admin-jwt": login(client, admin),
                             "narrow-key": _key(c, alice, defaults, [a2])}
                    w = World(c, server, alice, bob, admin, a2, creds,
                              lacking={s: _key(c, alice, defaults - {s}) for s in SCOPES},
                              only={s: _key(c, alice, frozenset({s})) for s in SCOPES},
                              no_scope=_key(c, alice, frozenset()))
                    _populate(w, client)
                yield w
        finally:
            c.close()


@pytest.fixture
def client(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.server.url, timeout=30, event_hooks=HOOKS) as c:
        yield c


def counts(c: Container) -> dict[str, int]:
    return row_counts(c, TABLES)


def status_of(client: httpx.Client, w: World, signal_id: str) -> str:
    r = client.get(f"{SIGNALS}/{signal_id}", headers=w.creds["admin-jwt"])
    assert r.status_code == 200, r.text
    return str(r.json()["signal"]["status"])


def fresh_pending(client: httpx.Client, w: World, account_id: str | None = None) -> str:
    return _post(client, w.alice.headers, signal(account_id or w.alice.account_id), 201)["id"]


def scrub(body: str, *supplied: str) -> str:
    for value in supplied:
        body = body.replace(value, "<id>")
    return body


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert body["code"] == code


# ---- listings -----------------------------------------------------------------------------------

def _visible(w: World, cred: str) -> dict[str, Any]:
    """What each credential lists: (allowed account ids or None for all, must-include sets)."""
    alice_signals = set(w.signals.values())
    bob_accounts = {w.bob.account_id}
    return {
        "alice-key": ({w.alice.account_id, w.a2}, alice_signals, {w.order_id}, {"AAPL"}),
        "alice-jwt": ({w.alice.account_id, w.a2}, alice_signals, {w.order_id}, {"AAPL"}),
        "bob-key": (bob_accounts, set(w.bob_signals), {w.bob_order_id}, {"MSFT"}),
        "bob-jwt": (bob_accounts, set(w.bob_signals), {w.bob_order_id}, {"MSFT"}),
        "admin-key": (None, alice_signals | set(w.bob_signals), {w.order_id, w.bob_order_id},
                      {"AAPL", "MSFT"}),
        "admin-jwt": (None, alice_signals | set(w.bob_signals), {w.order_id, w.bob_order_id},
                      {"AAPL", "MSFT"}),
        "narrow-key": ({w.a2}, {w.signals["pending-a2"]}, set(), set()),
    }[cred]


CREDS = ["alice-key", "alice-jwt", "bob-key", "bob-jwt", "admin-key", "admin-jwt", "narrow-key"]


@pytest.mark.parametrize("cred", CREDS)
def test_signals_list_shows_what_the_caller_may_see_and_nothing_else(
        world: World, client: httpx.Client, cred: str) -> None:
    allowed, must, _, _ = _visible(world, cred)
    r = client.get(SIGNALS, params={"limit": 200}, headers=world.creds[cred])
    assert r.status_code == 200, r.text
    rows = r.json()["signals"]
    assert must <= {s["id"] for s in rows}
    if allowed is not None:
        assert {s["accountId"] for s in rows} <= allowed


@pytest.mark.parametrize("cred", CREDS)
def test_orders_list_shows_what_the_caller_may_see_and_nothing_else(
        world: World, client: httpx.Client, cred: str) -> None:
    allowed, _, must, _ = _visible(world, cred)
    r = client.get("/api/v1/orders", params={"limit": 200}, headers=world.creds[cred])
    assert r.status_code == 200, r.text
    rows = r.json()["orders"]
    assert must <= {o["id"] for o in rows}
    if allowed is not None:
        assert {o["accountId"] for o in rows} <= allowed


@pytest.mark.parametrize("cred", CREDS)
def test_positions_list_shows_what_the_caller_may_see_and_nothing_else(
        world: World, client: httpx.Client, cred: str) -> None:
    allowed, _, _, symbols = _visible(world, cred)
    r = client.get("/api/v1/positions", params={"limit": 200}, headers=world.creds[cred])
    assert r.status_code == 200, r.text
    rows = r.json()["positions"]
    assert symbols <= {p["symbol"] for p in rows}
    if allowed is not None:
        assert {p["accountId"] for p in rows} <= allowed


@pytest.mark.parametrize("cred", CREDS)
def test_accounts_list_shows_exactly_the_callers_accounts(world: World, client: httpx.Client,
                                                          cred: str) -> None:
    allowed, _, _, _ = _visible(world, cred)
    r = client.get("/api/v1/accounts", params={"limit": 200}, headers=world.creds[cred])
    assert r.status_code == 200, r.text
    ids = {a["id"] for a in r.json()["accounts"]}
    if allowed is None:
        assert {world.alice.account_id, world.a2, world.bob.account_id,
                world.admin.account_id} <= ids
    else:
        assert ids == allowed


@pytest.mark.parametrize("cred", ["bob-key", "bob-jwt", "narrow-key"])
@pytest.mark.parametrize("url", [SIGNALS, "/api/v1/orders", "/api/v1/positions"])
def test_filtering_by_an_unseen_account_is_a_404_like_a_random_one(
        world: World, client: httpx.Client, cred: str, url: str) -> None:
    theirs = world.alice.account_id
    random_id = str(uuid4())
    r = client.get(url, params={"accountId": theirs}, headers=world.creds[cred])
    nobody = client.get(url, params={"accountId": random_id}, headers=world.creds[cred])
    assert_error(r, 404, "ACCOUNT_NOT_FOUND")
    assert scrub(r.text, theirs) == scrub(nobody.text, random_id)


# ---- alice's objects in other hands -------------------------------------------------------------

OBJECTS = ["executed", "pending", "scheduled"]


@pytest.mark.parametrize("name", OBJECTS)
@pytest.mark.parametrize("cred", ["bob-key", "bob-jwt", "narrow-key"])
def test_looking_at_alices_signal_is_a_404_like_a_random_id(world: World, client: httpx.Client,
                                                            cred: str, name: str) -> None:
    theirs = world.signals[name]
    random_id = str(uuid4())
    r = client.get(f"{SIGNALS}/{theirs}", headers=world.creds[cred])
    nobody = client.get(f"{SIGNALS}/{random_id}", headers=world.creds[cred])
    assert_error(r, 404, "SIGNAL_NOT_FOUND")
    assert scrub(r.text, theirs) == scrub(nobody.text, random_id)
    assert dict(r.headers).keys() == dict(nobody.headers).keys()


@pytest.mark.parametrize("name", OBJECTS)
@pytest.mark.parametrize("cred", ["bob-key", "bob-jwt", "narrow-key"])
def test_cancelling_alices_signal_is_a_404_and_changes_nothing(
        world: World, client: httpx.Client, cred: str, name: str) -> None:
    theirs = world.signals[name]
    random_id = str(uuid4())
    status = status_of(client, world, theirs)
    before = counts(world.container)
    r = client.delete(f"{SIGNALS}/{theirs}", headers=world.creds[cred])
    nobody = client.delete(f"{SIGNALS}/{random_id}", headers=world.creds[cred])
    assert_error(r, 404, "SIGNAL_NOT_FOUND")
    assert scrub(r.text, theirs) == scrub(nobody.text, random_id)
    assert counts(world.container) == before
    assert status_of(client, world, theirs) == status


@pytest.mark.parametrize("name", OBJECTS)
def test_bob_cannot_process_alices_signal(world: World, client: httpx.Client, name: str) -> None:
    theirs = world.signals[name]
    random_id = str(uuid4())
    status = status_of(client, world, theirs)
    before = counts(world.container)
    r = client.post(f"{SIGNALS}/{theirs}/process", headers=world.creds["bob-jwt"])
    nobody = client.post(f"{SIGNALS}/{random_id}/process", headers=world.creds["bob-jwt"])
    assert_error(r, 404, "SIGNAL_NOT_FOUND")
    assert scrub(r.text, theirs) == scrub(nobody.text, random_id)
    assert counts(world.container) == before
    assert status_of(client, world, theirs) == status


@pytest.mark.parametrize("cred", ["bob-key", "bob-jwt", "narrow-key"])
def test_posting_into_an_unseen_account_is_a_404_like_a_random_one(
        world: World, client: httpx.Client, cred: str) -> None:
    theirs = world.alice.account_id
    random_id = str(uuid4())
    before = counts(world.container)
    r = client.post(SIGNALS, json=signal(theirs, executeMode="immediate"),
                    headers=world.creds[cred])
    nobody = client.post(SIGNALS, json=signal(random_id, executeMode="immediate"),
                         headers=world.creds[cred])
    assert_error(r, 404, "ACCOUNT_NOT_FOUND")
    assert scrub(r.text, theirs) == scrub(nobody.text, random_id)
    assert counts(world.container) == before


@pytest.mark.parametrize("cred", ["alice-key", "alice-jwt", "admin-key", "admin-jwt"])
@pytest.mark.parametrize("name", [*OBJECTS, "pending-a2"])
def test_the_owner_and_the_admin_see_alices_signal(world: World, client: httpx.Client,
                                                   cred: str, name: str) -> None:
    r = client.get(f"{SIGNALS}/{world.signals[name]}", headers=world.creds[cred])
    assert r.status_code == 200, r.text
    body = r.json()["signal"]
    assert body["id"] == world.signals[name]
    assert body["accountId"] == (world.a2 if name == "pending-a2" else world.alice.account_id)


# ---- the narrowed key ---------------------------------------------------------------------------

def test_the_narrowed_key_works_in_its_own_account(world: World, client: httpx.Client) -> None:
    key = world.creds["narrow-key"]
    own = _post(client, key, signal(world.a2, symbol="NVDA"), 201)["id"]
    assert client.get(f"{SIGNALS}/{own}", headers=key).status_code == 200
    r = client.get(SIGNALS, params={"accountId": world.a2}, headers=key)
    assert r.status_code == 200
    assert own in {s["id"] for s in r.json()["signals"]}
    r = client.delete(f"{SIGNALS}/{own}", headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["signal"]["status"] == "cancelled"


def test_the_narrowed_key_cannot_process_even_its_own_signal(world: World,
                                                             client: httpx.Client) -> None:
    own = fresh_pending(client, world, world.a2)
    r = client.post(f"{SIGNALS}/{own}/process", headers=world.creds["narrow-key"])
    assert_error(r, 401, "UNAUTHORIZED")
    assert status_of(client, world, own) == "pending"


# ---- scopes --------------------------------------------------------------------------------------

ROUTES: dict[str, Scope] = {
    "POST /signals": Scope.SIGNALS_WRITE,
    "GET /signals": Scope.SIGNALS_READ,
    "GET /signals/:id": Scope.SIGNALS_READ,
    "DELETE /signals/:id": Scope.SIGNALS_WRITE,
    "GET /orders": Scope.SIGNALS_READ,
    "GET /positions": Scope.ACCOUNTS_READ,
    "GET /accounts": Scope.ACCOUNTS_READ,
    "POST /market/prices": Scope.MARKET_WRITE,
}


def call(client: httpx.Client, w: World, route: str, headers: dict[str, str]
         ) -> tuple[httpx.Response, str | None]:
    """Call a route as alice's key would; returns the answer and the signal it acted on."""
    method, path = route.split(" ")
    target = None
    body: Any = None
    if route == "POST /signals":
        body = signal(w.alice.account_id)
    elif route == "POST /market/prices":
        body = {"symbol": "AAPL", "price": 190}
    elif route == "DELETE /signals/:id":
        target = fresh_pending(client, w)
    elif route == "GET /signals/:id":
        target = w.signals["pending"]
    url = "/api/v1" + path.replace(":id", target or "")
    r = client.request(method, url, headers=headers,
                       content=json.dumps(body) if body is not None else None)
    return r, target


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("missing", SCOPES)
def test_a_key_lacking_one_scope_is_refused_exactly_where_that_scope_is_needed(
        world: World, client: httpx.Client, route: str, missing: Scope) -> None:
    before = counts(world.container)
    r, target = call(client, world, route, world.lacking[missing])
    if ROUTES[route] is not missing:
        assert 200 <= r.status_code < 300, r.text
        return
    assert_error(r, 403, "FORBIDDEN")
    assert str(missing) in r.json()["error"]
    if route == "DELETE /signals/:id":
        assert target is not None
        assert status_of(client, world, target) == "pending"
        return  # the fresh signal itself was written before the refused call
    assert counts(world.container) == before


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_key_with_only_the_needed_scope_is_enough(world: World, client: httpx.Client,
                                                    route: str) -> None:
    r, _ = call(client, world, route, world.only[ROUTES[route]])
    assert 200 <= r.status_code < 300, r.text


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_key_with_no_scopes_is_refused_everywhere(world: World, client: httpx.Client,
                                                    route: str) -> None:
    r, target = call(client, world, route, world.no_scope)
    assert_error(r, 403, "FORBIDDEN")
    if target is not None and route.startswith("DELETE"):
        assert status_of(client, world, target) == "pending"


@pytest.mark.parametrize("cred", ["alice-key", "admin-key", "narrow-key", "no-scope",
                                  "only-signals:write"])
def test_processing_takes_a_jwt_and_refuses_every_api_key(world: World, client: httpx.Client,
                                                          cred: str) -> None:
    headers = {"no-scope": world.no_scope,
               "only-signals:write": world.only[Scope.SIGNALS_WRITE]}.get(cred) or world.creds[cred]
    pending = fresh_pending(client, world)
    before = counts(world.container)
    r = client.post(f"{SIGNALS}/{pending}/process", headers=headers)
    assert_error(r, 401, "UNAUTHORIZED")
    assert counts(world.container) == before
    assert status_of(client, world, pending) == "pending"
    r = client.post(f"{SIGNALS}/{pending}/process", headers=world.creds["alice-jwt"])
    assert r.status_code == 200, r.text
    assert r.json()["signal"]["status"] == "executed"


def test_a_403_names_the_missing_scope_and_nothing_else(world: World,
                                                        client: httpx.Client) -> None:
    r = client.get(f"{SIGNALS}/{world.signals['pending']}",
                   headers=world.lacking[Scope.SIGNALS_READ])
    assert_error(r, 403, "FORBIDDEN")
    assert world.signals["pending"] not in r.text
    assert world.alice.account_id not in r.text


# ---- nothing of alice's in any answer to bob ---------------------------------------------------

def _bob_requests(w: World) -> list[tuple[str, str, Any, list[str]]]:
    """(method, url, json body, ids of alice's that bob himself put in the request)."""
    a1, a2 = w.alice.account_id, w.a2
    out: list[tuple[str, str, Any, list[str]]] = [
        ("GET", SIGNALS, None, []),
        ("GET", f"{SIGNALS}?symbol=AAPL", None, []),
        ("GET", f"{SIGNALS}?status=pending&limit=200", None, []),
        ("GET", "/api/v1/orders?symbol=AAPL", None, []),
        ("GET", "/api/v1/orders?status=filled", None, []),
        ("GET", "/api/v1/positions", None, []),
        ("GET", "/api/v1/accounts", None, []),
        ("POST", "/api/v1/market/prices", {"symbol": "AAPL", "price": 190}, []),
        ("POST", SIGNALS, signal(w.bob.account_id, executeMode="pending"), []),
        ("POST", SIGNALS, {"symbol": "AAPL"}, []),
    ]
    for account in (a1, a2):
        out += [("GET", f"{SIGNALS}?accountId={account}", None, [account]),
                ("GET", f"/api/v1/orders?accountId={account}", None, [account]),
                ("GET", f"/api/v1/positions?accountId={account}", None, [account]),
                ("POST", SIGNALS, signal(account), [account])]
    for sid in w.signals.values():
        out += [("GET", f"{SIGNALS}/{sid}", None, [sid]),
                ("DELETE", f"{SIGNALS}/{sid}", None, [sid]),
                ("POST", f"{SIGNALS}/{sid}/process", None, [sid])]
    return out


@pytest.mark.parametrize("cred", ["bob-key", "bob-jwt"])
def test_no_answer_to_bob_contains_anything_of_alices(world: World, client: httpx.Client,
                                                      cred: str) -> None:
    """Echoing back an id bob sent is not a leak; anything else of alice's is."""
    leaks = []
    for method, url, body, supplied in _bob_requests(world):
        r = client.request(method, url, headers=world.creds[cred],
                           content=json.dumps(body) if body is not None else None)
        assert r.status_code < 500, (method, url, r.text)
        seen = scrub(r.text, *supplied)
        leaks += [(method, url, secret) for secret in world.alice_ids if secret in seen]
    assert leaks == []
