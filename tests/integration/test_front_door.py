"""POST /api/v1/signals is served by a plain route ahead of FastAPI's (entrypoints/api/app.py):
no dependency solving per request, and nothing else about the path changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import routing

from tests.support import Caller


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
