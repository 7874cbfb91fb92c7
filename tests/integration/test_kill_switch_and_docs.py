"""Guarantee 8 (the kill switch) and the documented surface: health, readiness, OpenAPI, /docs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import HOOKS, Caller, Server, database_url, login, make_caller, make_container, row_counts
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.formats import signal_api
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal, Scope
from tradewire.services.ingest import ingest_signal

SIGNALS = "/api/v1/signals"
TABLES = ("signal", "trade_order", "job", "audit_event", "paper_order", "fill", "position")
SEED_ACCOUNT = "550e8400-e29b-41d4-a716-446655440000"

# The six request examples of seed 004, as the seed writes them.
SEED_EXAMPLES: list[dict[str, Any]] = [
    {"symbol": "AAPL", "action": "openLong", "accountId": SEED_ACCOUNT, "quantity": 100,
     "executeMode": "immediate"},
    {"symbol": "AAPL", "action": "openLong", "accountId": SEED_ACCOUNT, "quantity": 100,
     "executeMode": "immediate", "exitTriggerType": "timed", "exitTriggerValue": 30,
     "exitOrderType": "market"},
    {"symbol": "MSFT", "action": "openLong", "accountId": SEED_ACCOUNT, "quantity": 75,
     "executeMode": "scheduled", "scheduledProcessAt": "2026-02-07T09:25:00",
     "timezone": "America/New_York", "sourceId": "my-strategy-signal-001"},
    {"symbol": "TSLA", "action": "openLong", "accountId": SEED_ACCOUNT, "quantity": 50,
     "executeMode": "pending", "orderType": "limit", "limitPrice": 250.0},
    {"symbol": "GOOGL", "action": "openShort", "accountId": SEED_ACCOUNT, "quantity": 25,
     "executeMode": "immediate", "orderType": "stopLimit", "stopPrice": 145.0,
     "limitPrice": 144.0, "sourceId": "my-ref-456", "replaceExisting": True},
    {"symbol": "SPY", "action": "openLong", "accountId": SEED_ACCOUNT, "quantity": 5000,
     "quantityType": "dollarAmount", "executeMode": "immediate"},
]
SEED_EXAMPLE_IDS = ["immediate", "timed-exit", "scheduled", "pending", "replace", "dollar-amount"]

ROUTES = [
    ("post", SIGNALS), ("get", SIGNALS), ("get", SIGNALS + "/{signal_id}"),
    ("delete", SIGNALS + "/{signal_id}"), ("post", SIGNALS + "/{signal_id}/process"),
    ("get", "/api/v1/orders"), ("get", "/api/v1/positions"), ("get", "/api/v1/accounts"),
    ("post", "/api/v1/market/prices"), ("post", "/api/v1/auth/login"),
    ("get", "/healthz"), ("get", "/readyz"),
]


def counts(c: Container) -> dict[str, int]:
    return row_counts(c, TABLES)


def as_account(example: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {**example, "accountId": caller.account_id}


def assert_disabled(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["success"] is False
    assert body["code"] == "SERVICE_DISABLED"
    assert isinstance(body["error"], str) and body["error"]


# ---- the kill switch ---------------------------------------------------------------------------

class Disabled:
    def __init__(self, container: Container, client: httpx.Client, alice: Caller) -> None:
        self.container, self.client, self.alice = container, client, alice


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def disabled_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[tuple[Container, Server]]:
    """A server whose container was built with signals_enabled=False, one per database."""
    tmp = tmp_path_factory.mktemp(f"disabled-{request.param}")
    with database_url(str(request.param), tmp) as url:
        c = make_container(url, tmp / "data", ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC)),
                           signals_enabled=False)
        try:
            with Server(c) as server:
                yield c, server
        finally:
            c.close()


@pytest.fixture
def disabled(disabled_server: tuple[Container, Server]) -> Iterator[Disabled]:
    """The switched-off server, a fresh caller (so listings are the test's own) and prices."""
    c, server = disabled_server
    alice = make_caller(c)
    with httpx.Client(base_url=server.url, timeout=30, event_hooks=HOOKS) as client:
        r = client.post("/api/v1/market/prices", json=[
            {"symbol": s, "price": p} for s, p in
            (("AAPL", 190), ("MSFT", 400), ("TSLA", 250), ("GOOGL", 150), ("SPY", 500))],
            headers=alice.headers)
        assert r.status_code == 200, r.text
        yield Disabled(c, client, alice)


def stored_pending(d: Disabled) -> str:
    """A pending signal stored through the use case itself (the route is switched off)."""
    principal = Principal(user_id=d.alice.user_id, is_admin=False,
                          scopes=frozenset({Scope.SIGNALS_WRITE, Scope.SIGNALS_READ}),
                          via="api_key")
    body = as_account(SEED_EXAMPLES[3], d.alice)
    parsed = signal_api.parse(body, now=d.container.deps.clock.now())
    return ingest_signal(parsed, principal, d.container.deps).signal.id


@pytest.mark.parametrize("example", SEED_EXAMPLES, ids=SEED_EXAMPLE_IDS)
def test_new_signals_answer_503_and_store_nothing(disabled: Disabled,
                                                  example: dict[str, Any]) -> None:
    d = disabled
    before = counts(d.container)
    for headers in (d.alice.headers, login(d.client, d.alice)):
        assert_disabled(d.client.post(SIGNALS, json=as_account(example, d.alice),
                                      headers=headers))
    assert counts(d.container) == before
    assert d.client.get(SIGNALS, headers=d.alice.headers).json()["signals"] == []
    assert d.client.get("/api/v1/orders", headers=d.alice.headers).json()["orders"] == []


def test_a_repeated_source_id_is_refused_too_and_nothing_is_stored(disabled: Disabled) -> None:
    d = disabled
    body = as_account(SEED_EXAMPLES[2], d.alice)
    before = counts(d.container)
    for _ in range(3):
        assert_disabled(d.client.post(SIGNALS, json=body, headers=d.alice.headers))
    assert counts(d.container) == before


def test_processing_a_pending_signal_answers_503_and_leaves_it_pending(
        disabled: Disabled) -> None:
    d = disabled
    pending = stored_pending(d)
    before = counts(d.container)
    assert_disabled(d.client.post(f"{SIGNALS}/{pending}/process",
                                  headers=login(d.client, d.alice)))
    assert counts(d.container) == before
    r = d.client.get(f"{SIGNALS}/{pending}", headers=d.alice.headers)
    assert r.status_code == 200 and r.json()["signal"]["status"] == "pending"
    assert r.json()["signal"]["orders"] == []


def test_reading_routes_still_work(disabled: Disabled) -> None:
    d = disabled
    pending = stored_pending(d)
    h = d.alice.headers
    r = d.client.get(SIGNALS, headers=h)
    assert r.status_code == 200 and [s["id"] for s in r.json()["signals"]] == [pending]
    r = d.client.get(f"{SIGNALS}/{pending}", headers=h)
    assert r.status_code == 200 and r.json()["signal"]["id"] == pending
    for url, key in (("/api/v1/orders", "orders"), ("/api/v1/positions", "positions")):
        r = d.client.get(url, headers=h)
        assert r.status_code == 200 and r.json()[key] == [], r.text
    r = d.client.get("/api/v1/accounts", headers=h)
    assert r.status_code == 200 and [a["id"] for a in r.json()["accounts"]] == [d.alice.account_id]
    assert d.client.get("/healthz").status_code == 200
    assert d.client.get("/readyz").status_code == 200


def test_cancelling_and_prices_still_work(disabled: Disabled) -> None:
    """The switch stops new signals; taking risk off and feeding prices to exits go on."""
    d = disabled
    pending = stored_pending(d)
    r = d.client.delete(f"{SIGNALS}/{pending}", headers=d.alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["signal"]["status"] == "cancelled"
    r = d.client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 191},
                      headers=d.alice.headers)
    assert r.status_code == 200, r.text


def test_an_enabled_server_takes_the_same_signal(client: httpx.Client, alice: Caller) -> None:
    r = client.post(SIGNALS, json=as_account(SEED_EXAMPLES[3], alice), headers=alice.headers)
    assert r.status_code == 201, r.text


# ---- health and readiness ----------------------------------------------------------------------

def test_healthz_and_readyz_answer_200(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_readyz_answers_503_when_the_database_is_gone(tmp_path: Path, clock: ManualClock) -> None:
    c = make_container(f"sqlite:///{tmp_path / 'tw.db'}", tmp_path / "data", clock)
    try:
        with Server(c) as server, \
                httpx.Client(base_url=server.url, timeout=30, event_hooks=HOOKS) as client:
            assert client.get("/readyz").status_code == 200
            c.db.engine.dispose()
            (tmp_path / "tw.db").unlink()
            (tmp_path / "tw.db").mkdir()  # a directory where the file was: no database answers
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            assert client.get("/healthz").status_code == 200
    finally:
        c.close()


# ---- OpenAPI and /docs --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def docs_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The documents do not depend on the database: one SQLite server serves these tests."""
    tmp = tmp_path_factory.mktemp("docs")
    c = make_container(f"sqlite:///{tmp / 'tw.db'}", tmp / "data")
    try:
        with Server(c) as server, \
                httpx.Client(base_url=server.url, timeout=30, event_hooks=HOOKS) as client:
            yield client
    finally:
        c.close()


@pytest.fixture(scope="module")
def openapi(docs_client: httpx.Client) -> dict[str, Any]:
    r = docs_client.get("/openapi.json")
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_openapi_lists_every_route(openapi: dict[str, Any], method: str, path: str) -> None:
    assert method in openapi["paths"].get(path, {}), sorted(openapi["paths"])


def _create(openapi: dict[str, Any]) -> dict[str, Any]:
    return dict(openapi["paths"][SIGNALS]["post"])


def test_create_signal_carries_the_six_seed_examples(openapi: dict[str, Any]) -> None:
    content = _create(openapi)["requestBody"]["content"]["application/json"]
    values = [e["value"] for e in content["examples"].values()]
    for example in SEED_EXAMPLES:
        assert example in values, example
    assert len(values) >= 6


def test_the_seed_examples_all_parse_as_signals() -> None:
    now = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
    for example in SEED_EXAMPLES:
        assert signal_api.parse(example, now=now).account_id == SEED_ACCOUNT


def test_create_signal_has_a_request_schema_with_the_required_fields(
        openapi: dict[str, Any]) -> None:
    body = _create(openapi)["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"symbol", "action", "accountId", "quantity", "executeMode"}


@pytest.mark.parametrize("status", ["200", "201", "202", "400", "401", "404", "503"])
def test_create_signal_documents_its_responses(openapi: dict[str, Any], status: str) -> None:
    response = _create(openapi)["responses"][status]
    assert response["description"]


def test_the_documented_validation_error_is_the_seeds(openapi: dict[str, Any]) -> None:
    example = _create(openapi)["responses"]["400"]["content"]["application/json"]["example"]
    assert example == {"success": False, "error": "Validation failed", "code": "VALIDATION_ERROR",
                       "details": [{"code": "custom", "message": "scheduledProcessAt is required "
                                    "for scheduled execute mode", "path": ["scheduledProcessAt"]}]}


def test_docs_answer_html(docs_client: httpx.Client) -> None:
    r = docs_client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text
    assert "swagger" in r.text.lower()


def test_docs_need_no_credential_and_reveal_no_secret(client: httpx.Client, alice: Caller,
                                                      container: Container) -> None:
    jwt = login(client, alice)["Authorization"][7:]
    for url in ("/docs", "/openapi.json"):
        r = client.get(url)
        assert r.status_code == 200
        for secret in (alice.key, alice.password, jwt,
                       container.settings.resolved_secret_key().decode()):
            assert secret not in r.text
