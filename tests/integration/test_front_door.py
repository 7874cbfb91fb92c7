"""POST /api/v1/signals and POST /signal/execute-via-token/{token} are answered ahead of
FastAPI's stack (entrypoints/api/app.py): no dependency solving, middleware layers or routing
per request, the same error handlers, and nothing else about the paths changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import routing
from starlette.middleware.exceptions import ExceptionMiddleware

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.entrypoints.api import handover
from tradewire.services import capabilities


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths FastAPI solved an endpoint's dependencies for (the real function still runs)."""
    paths: list[str] = []
    real = routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        paths.append(kwargs["request"].url.path)
        return await real(*args, **kwargs)

    monkeypatch.setattr(routing, "solve_dependencies", counting)
    yield paths


def body(caller: Caller, source_id: str) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": source_id}


def test_a_signal_is_created_without_fastapi_solving_dependencies(
        client: httpx.Client, alice: Caller, solved: list[str]) -> None:
    r = client.post("/api/v1/signals", json=body(alice, "plain-1"), headers=alice.headers)
    assert r.status_code == 201, r.text
    listed = client.get("/api/v1/signals", headers=alice.headers)  # a declared route: solved
    assert listed.status_code == 200, listed.text
    assert solved == ["/api/v1/signals"]  # the GET only


def test_the_path_keeps_its_errors_other_methods_and_description(
        client: httpx.Client, alice: Caller) -> None:
    bad = client.post("/api/v1/signals", content=b"{", headers={**alice.headers,
                                                                "content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["success"] is False, bad.text
    stranger = client.post("/api/v1/signals", json=body(alice, "plain-2"))
    assert stranger.status_code == 401 and stranger.json()["success"] is False
    wrong = client.delete("/api/v1/signals", headers=alice.headers)
    assert wrong.status_code == 405 and wrong.json()["success"] is False, wrong.text
    spec = client.get("/openapi.json").json()
    assert "post" in spec["paths"]["/api/v1/signals"]
    assert "get" in spec["paths"]["/api/v1/signals"]


@pytest.fixture
def layered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths that went through Starlette's exception middleware (inside FastAPI's stack,
    around its router)."""
    paths: list[str] = []
    real = ExceptionMiddleware.__call__

    async def counting(self: ExceptionMiddleware, scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(ExceptionMiddleware, "__call__", counting)
    yield paths


def test_a_signal_is_answered_ahead_of_fastapis_middleware_and_router(
        client: httpx.Client, alice: Caller, layered: list[str]) -> None:
    r = client.post("/api/v1/signals", json=body(alice, "plain-3"), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"]  # inside the guards all the same
    listed = client.get("/api/v1/signals", headers=alice.headers)
    assert listed.status_code == 200, listed.text
    assert layered == ["/api/v1/signals"]  # the GET only


def test_an_unexpected_error_at_the_front_door_is_a_500_in_the_apis_shape(
        client: httpx.Client, alice: Caller, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(handover, "stored", broken)
    r = client.post("/api/v1/signals", json=body(alice, "plain-4"), headers=alice.headers)
    assert r.status_code == 500
    assert r.json() == {"success": False, "error": "Internal error", "code": "INTERNAL_ERROR"}


@pytest.fixture
def hook(container: Container, alice: Caller) -> str:
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    return f"/signal/execute-via-token/{token}"


def test_an_access_token_order_is_answered_ahead_of_fastapis_stack(
        client: httpx.Client, hook: str, layered: list[str], solved: list[str]) -> None:
    order = {"symbol": "AAPL", "side": "buy", "quantity": "1", "order_type": "limit",
             "limit_price": "1"}
    r = client.post(hook, content=json.dumps(order), headers={"Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    assert r.json()["success"] is True and r.headers["x-request-id"]
    assert layered == [] and solved == []
    wrong = client.get(hook)  # the other methods: FastAPI's way, as before
    assert wrong.status_code == 405
    assert layered == [hook]


def test_an_access_token_path_keeps_its_refusals(client: httpx.Client, hook: str,
                                                 layered: list[str]) -> None:
    order = json.dumps({"symbol": "AAPL", "side": "buy", "quantity": "1"})
    forged = client.post("/signal/execute-via-token/forged", content=order)
    assert forged.status_code == 401 and forged.json()["success"] is False, forged.text
    bad = client.post(hook, content=b"{")
    assert bad.status_code == 400 and bad.json()["success"] is False, bad.text
    assert layered == []  # both at the front door
    too_long = client.post("/signal/execute-via-token/" + "x" * 201, content=order)
    assert too_long.status_code in (400, 422) and too_long.json()["success"] is False
    assert layered == ["/signal/execute-via-token/" + "x" * 201]  # FastAPI's way, as declared
