"""The dashboard's HTTP surface without a browser, on SQLite and PostgreSQL: every form post
needs a session, the session's CSRF token and a form body, and answers bad input with a 4xx
page (never a 500); one person's objects answer 404 to another; approvals go stale."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.support import HOOKS, Caller, Server, database_url, make_caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.entrypoints.web import live, pages_auth, pages_setup, pages_trading

NOW = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)  # New York is open
PAGES = ["/ui", "/ui/signals", "/ui/approvals", "/ui/orders", "/ui/positions", "/ui/strategies",
         "/ui/backtests", "/ui/credentials", "/ui/channels", "/ui/kill-switch",
         "/ui/panels/overview", "/ui/panels/approvals", "/ui/panels/positions"]


@dataclass
class World:
    container: Container
    server: Server
    clock: ManualClock
    alice: Caller
    bob: Caller


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"forms-{request.param}")
    clock = ManualClock(NOW)
    with database_url(str(request.param), tmp) as url:
        c = make_container(url, tmp / "data", clock)
        try:
            with Server(c) as server:
                yield World(c, server, clock, make_caller(c), make_caller(c))
        finally:
            c.close()


def signed_in(w: World, caller: Caller) -> tuple[httpx.Client, str]:
    """A client holding the caller's session cookie, and the session's CSRF token."""
    client = httpx.Client(base_url=w.server.url, timeout=30, event_hooks=HOOKS)
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post("/ui/login", data={"csrf": token.group(1), "username": caller.username,
                                       "password": caller.password, "next": "/ui/approvals"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/approvals", r.text
    return client, csrf_of(client.get("/ui/credentials").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.fixture
def alice(world: World) -> Iterator[tuple[httpx.Client, str]]:
    client, csrf = signed_in(world, world.alice)
    try:
        yield client, csrf
    finally:
        client.close()


def form_posts(w: World) -> list[str]:
    """Every POST of the dashboard, with `x` for each path parameter."""
    routes = [r for m in (pages_trading, pages_setup, live, pages_auth) for r in m.router.routes]
    paths = [r.path for r in routes if isinstance(r, APIRoute) and "POST" in r.methods
             and r.path not in ("/ui/{rest:path}", "/ui/login")]
    assert len(paths) >= 15, paths
    return [re.sub(r"\{[^}]+\}", "x", p) for p in paths]


def is_page(r: httpx.Response, low: int, high: int) -> None:
    assert low <= r.status_code <= high, (r.request.url, r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html"), r.headers
    assert "Traceback" not in r.text


def pending(w: World, caller: Caller, symbol: str, price: float) -> str:
    headers = caller.headers
    with httpx.Client(base_url=w.server.url, timeout=30, event_hooks=HOOKS) as api:
        assert api.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                        headers=headers).status_code == 200
        r = api.post("/api/v1/signals", headers=headers, json={
            "symbol": symbol, "action": "openLong", "accountId": caller.account_id,
            "quantity": 3, "executeMode": "pending"})
    assert r.status_code == 201, r.text
    return str(r.json()["signal"]["id"])


def status(w: World, caller: Caller, signal_id: str) -> str:
    with httpx.Client(base_url=w.server.url, timeout=30) as api:
        r = api.get(f"/api/v1/signals/{signal_id}", headers=caller.headers)
    return str(r.json()["signal"]["status"])


def test_every_page_answers_html_with_its_security_headers(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, _ = alice
    for path in PAGES:
        r = client.get(path)
        is_page(r, 200, 200)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
    is_page(client.get("/ui/no-such-page"), 404, 404)
    is_page(client.get("/ui/signals?status=nonsense"), 400, 400)
    is_page(client.get("/ui/signals/not-a-signal"), 404, 404)


def test_signed_out_pages_lead_to_sign_in_and_posts_answer_401(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30, event_hooks=HOOKS) as client:
        r = client.get("/ui/positions")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2Fpositions"
        assert client.get("/").headers["location"] == "/ui"
        for path in form_posts(world):
            is_page(client.post(path, data={"csrf": "x"}), 401, 401)
        assert client.get("/ui/events").status_code == 401
        assert client.get("/ui/panels/overview").status_code == 401


def test_every_post_without_the_session_csrf_token_is_refused(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, csrf = alice
    for path in form_posts(world):
        for data in ({}, {"csrf": "0" * 64}, {"csrf": csrf[:-1]}):
            r = client.post(path, data={**data, "confirmed": "yes"})
            is_page(r, 403, 403)
            assert "security token" in r.text
        r = client.post(path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
        is_page(r, 403, 403)


def test_every_post_with_bad_input_answers_a_4xx_page_and_never_a_500(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, csrf = alice
    junk = [{}, {"account": "x" * 500, "symbol": "\u202e", "allocation": "lots", "state": "maybe",
                 "seen_at": "yesterday", "seen_price": "NaN", "definition": "{", "scopes": "root",
                 "signals": "sideways", "trading": "paused", "allocation_type": "all",
                 "switch": "self_destruct", "name": "", "partner": "nope", "channel": "nope"}]
    for path in form_posts(world):
        for fields in junk:
            r = client.post(path, data={"csrf": csrf, "confirmed": "yes", **fields})
            if path == "/ui/logout":
                assert r.status_code == 303
                client, csrf = signed_in(world, world.alice)
                continue
            is_page(r, 400, 499)
        as_json = client.post(path, json={"csrf": csrf})
        is_page(as_json, 415, 415)
        too_big = client.post(path, data={"csrf": csrf, "definition": "x" * 70_000})
        is_page(too_big, 413, 413)
    client.close()


def test_a_post_where_money_moves_asks_for_a_confirmation_first(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, csrf = alice
    signal_id = pending(world, world.alice, "CONF", 10)
    r = client.post(f"/ui/signals/{signal_id}/approve",
                    data={"csrf": csrf, "seen_price": "10", "seen_at": NOW.isoformat()})
    is_page(r, 200, 200)
    assert "Please confirm" in r.text and 'name="confirmed" value="yes"' in r.text
    assert status(world, world.alice, signal_id) == "pending"


def test_another_persons_signal_order_and_key_answer_404(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    _, _ = alice
    signal_id = pending(world, world.alice, "MINE", 20)
    bob, bob_csrf = signed_in(world, world.bob)
    try:
        is_page(bob.get(f"/ui/signals/{signal_id}"), 404, 404)
        assert signal_id not in bob.get("/ui/approvals").text
        for action in ("approve", "reject"):
            r = bob.post(f"/ui/signals/{signal_id}/approve" if action == "approve" else
                         f"/ui/signals/{signal_id}/reject",
                         data={"csrf": bob_csrf, "confirmed": "yes", "seen_price": "20",
                               "seen_at": NOW.isoformat()})
            is_page(r, 404, 404)
        r = bob.post("/ui/positions/close", data={"csrf": bob_csrf, "confirmed": "yes",
                                                  "account_id": world.alice.account_id,
                                                  "symbol": "MINE"})
        is_page(r, 404, 404)
        r = bob.post("/ui/credentials/tokens", data={"csrf": bob_csrf,
                                                     "account": world.alice.account_id})
        is_page(r, 404, 404)
    finally:
        bob.close()
    assert status(world, world.alice, signal_id) == "pending"


def test_an_approval_shown_too_long_ago_or_before_the_price_moved_is_refused(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, csrf = alice
    signal_id = pending(world, world.alice, "STAL", 100)
    url = f"/ui/signals/{signal_id}/approve"
    old = (NOW - timedelta(minutes=11)).isoformat()
    r = client.post(url, data={"csrf": csrf, "confirmed": "yes", "seen_price": "100",
                               "seen_at": old})
    is_page(r, 409, 409)
    assert "more than 10 minutes ago" in r.text
    r = client.post(url, data={"csrf": csrf, "confirmed": "yes", "seen_price": "90",
                               "seen_at": NOW.isoformat()})
    is_page(r, 409, 409)
    assert "moved from 90 to 100" in r.text
    assert status(world, world.alice, signal_id) == "pending"
    r = client.post(url, data={"csrf": csrf, "confirmed": "yes", "seen_price": "100",
                               "seen_at": NOW.isoformat()})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/signals/{signal_id}", r.text
    assert status(world, world.alice, signal_id) == "executed"
    r = client.post(url, data={"csrf": csrf, "confirmed": "yes", "seen_price": "100",
                               "seen_at": NOW.isoformat()})
    is_page(r, 409, 409)
    assert "not pending" in r.text


def test_sign_in_refuses_a_stale_form_and_never_redirects_off_site(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30, event_hooks=HOOKS) as client:
        token = csrf_of(client.get("/ui/login").text)
        r = client.post("/ui/login", data={"csrf": "stale", "username": world.alice.username,
                                           "password": world.alice.password})
        is_page(r, 403, 403)
        r = client.post("/ui/login", data={"csrf": token, "username": world.alice.username,
                                           "password": "wrong"})
        is_page(r, 401, 401)
        assert "Wrong username or password." in r.text
        r = client.post("/ui/login", data={"csrf": token, "username": world.alice.username,
                                           "password": world.alice.password,
                                           "next": "//evil.example/ui"})
        assert r.status_code == 303 and r.headers["location"] == "/ui"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


def test_live_updates_start_with_ready_and_report_a_new_signal(
        world: World, alice: tuple[httpx.Client, str]) -> None:
    client, _ = alice
    seen: list[str] = []
    with client.stream("GET", "/ui/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            seen.append(line)
            if line == "event: ready":
                pending(world, world.alice, "LIVE", 5)
            if line == "event: signal":
                break
    assert "event: ready" in seen and "event: signal" in seen


def test_the_dashboard_is_not_in_the_api_schema(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p == "/" or p.startswith("/ui")]
