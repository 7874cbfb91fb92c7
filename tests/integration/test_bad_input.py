"""Guarantee 7: bad input gets a clear 4xx in the dialect's error shape, never a 500, and
changes nothing. Every case goes through a real server and is checked against row counts.

The cases only read, so one server per database serves the whole module; each test gets a
fresh HTTP connection (a refused body may close the connection it came on).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.support import HOOKS, Caller, Server, database_url, login, make_caller, make_container, row_counts
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.security import SecretBox
from tradewire.bootstrap import Container
from tradewire.services import accounts

SIGNALS = "/api/v1/signals"
PRICES = "/api/v1/market/prices"
LOGIN = "/api/v1/auth/login"
TABLES = ("signal", "trade_order", "job", "audit_event", "paper_order", "market_price", "fill",
          "position", "app_user", "account", "api_key")
TWO_MB = 2 * 1024 * 1024


@dataclass
class World:
    container: Container
    server: Server
    alice: Caller
    bob: Caller
    mallory: Caller  # sends the hostile bodies: a wrongly stored one spoils no one's listings
    alice_jwt: dict[str, str]


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    with database_url(str(request.param), tmp) as url:
        c = make_container(url, tmp / "data", ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC)))
        try:
            alice, bob, mallory = make_caller(c), make_caller(c), make_caller(c)
            with Server(c) as server:
                with httpx.Client(base_url=server.url, timeout=30, event_hooks=HOOKS) as client:
                    alice_jwt = login(client, alice)
                yield World(c, server, alice, bob, mallory, alice_jwt)
        finally:
            c.close()


@pytest.fixture
def client(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.server.url, timeout=30, event_hooks=HOOKS) as c:
        yield c


def counts(c: Container) -> dict[str, int]:
    return row_counts(c, TABLES)


def signal(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 100, "executeMode": "pending"}
    body.update(fields)
    return body


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def assert_error_shape(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert body["code"] == code
    for d in body.get("details", []):
        assert set(d) == {"code", "message", "path"}, d
        assert isinstance(d["code"], str) and isinstance(d["message"], str) and d["message"]
        assert isinstance(d["path"], list)
    return body


def refused(world: World, send: Callable[[], httpx.Response], status: int,
            code: str) -> dict[str, Any]:
    """Send, expect the error in the dialect's shape, and prove that nothing was written."""
    before = counts(world.container)
    body = assert_error_shape(send(), status, code)
    assert counts(world.container) == before
    return body


def invalid(world: World, send: Callable[[], httpx.Response]) -> list[dict[str, Any]]:
    body = refused(world, send, 400, "VALIDATION_ERROR")
    assert body["error"] == "Validation failed"
    assert body["details"], body
    return list(body["details"])


def paths(details: list[dict[str, Any]]) -> list[list[Any]]:
    return [d["path"] for d in details]


def post_json(client: httpx.Client, url: str, content: bytes | str,
              headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(url, content=content,
                       headers={"Content-Type": "application/json", **(headers or {})})


def nested(depth: int) -> str:
    return '{"a":' * depth + "{}" + "}" * depth


# ---- POST /api/v1/signals: bodies that are not a signal ---------------------------------------

NOT_JSON = [
    pytest.param(b'{"symbol": "AAPL",', id="truncated"),
    pytest.param(b"{'symbol': 'AAPL'}", id="single-quotes"),
    pytest.param(b'{"symbol": "AAPL",}', id="trailing-comma"),
    pytest.param(b'{"quantity": NaN}', id="nan-literal"),
    pytest.param(b'{"quantity": Infinity}', id="infinity-literal"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"symbol=AAPL&action=openLong", id="form-encoded"),
    pytest.param(b"<signal/>", id="xml"),
    pytest.param(b"[" * 5000 + b"]" * 5000, id="too-deep-array"),
]


@pytest.mark.parametrize("content", NOT_JSON)
def test_malformed_json_is_a_400(world: World, client: httpx.Client, content: bytes) -> None:
    details = invalid(world, lambda: post_json(client, SIGNALS, content, world.mallory.headers))
    assert details[0]["code"] == "invalid_json"


@pytest.mark.parametrize("content", [b"", b"   ", b"\n\t"], ids=["empty", "spaces", "blank"])
def test_an_empty_body_is_a_400(world: World, client: httpx.Client, content: bytes) -> None:
    details = invalid(world, lambda: post_json(client, SIGNALS, content, world.mallory.headers))
    assert "required" in details[0]["message"].lower()


@pytest.mark.parametrize("content", [
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'[{"symbol": "AAPL"}]', id="array"),
    pytest.param(b'"openLong AAPL"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"-1.5e3", id="float"),
    pytest.param(b"true", id="boolean"),
    pytest.param(b"null", id="null"),
])
def test_a_body_that_is_not_an_object_is_a_400(world: World, client: httpx.Client,
                                               content: bytes) -> None:
    details = invalid(world, lambda: post_json(client, SIGNALS, content, world.mallory.headers))
    assert details[0]["path"] == []
    assert "object" in details[0]["message"].lower()


def test_an_array_holding_a_valid_signal_is_still_a_400(world: World,
                                                        client: httpx.Client) -> None:
    invalid(world, lambda: post_json(client, SIGNALS, raw([signal(world.mallory)]),
                                     world.mallory.headers))


def test_an_empty_object_lists_all_five_required_fields(world: World,
                                                        client: httpx.Client) -> None:
    details = invalid(world, lambda: post_json(client, SIGNALS, b"{}", world.mallory.headers))
    assert sorted(p[0] for p in paths(details)) == sorted(
        ["symbol", "action", "accountId", "quantity", "executeMode"])
    assert {d["message"] for d in details} == {"Required"}
    assert {d["code"] for d in details} == {"invalid_type"}


# ---- one field wrong at a time -----------------------------------------------------------------

WRONG_FIELDS: list[Any] = [
    # (field, value, expected detail code or None for "any code")
    ("symbol", 123, None), ("symbol", None, None), ("symbol", [], None), ("symbol", {}, None),
    ("symbol", True, None), ("symbol", "", "too_small"), ("symbol", "A" * 21, "too_big"),
    ("symbol", "AA PL", "invalid_string"), ("symbol", "AAPL;DROP", "invalid_string"),
    ("symbol", "AAPL\u0000", "invalid_string"),
    ("action", 1, None), ("action", None, None), ("action", "buy", "invalid_enum_value"),
    ("action", "OPENLONG", "invalid_enum_value"), ("action", "", "invalid_enum_value"),
    ("accountId", 123, None), ("accountId", "not-a-uuid", "invalid_string"),
    ("accountId", "", "invalid_string"), ("accountId", None, None), ("accountId", [], None),
    ("quantity", "abc", None), ("quantity", None, None), ("quantity", [], None),
    ("quantity", {}, None), ("quantity", True, None), ("quantity", False, None),
    ("quantity", -1, "too_small"), ("quantity", -0.5, "too_small"), ("quantity", 0, "too_small"),
    ("quantity", "0", "too_small"), ("quantity", "-0", "too_small"), ("quantity", 0.0, "too_small"),
    ("quantity", "NaN", None), ("quantity", "nan", None), ("quantity", "sNaN", None),
    ("quantity", "Infinity", None), ("quantity", "-Infinity", None), ("quantity", "inf", None),
    ("quantity", "1e999", "too_big"), ("quantity", 1e12, "too_big"),
    ("quantity", "1e-999999999", None), ("quantity", "", None), ("quantity", "10 shares", None),
    ("executeMode", "later", "invalid_enum_value"), ("executeMode", "IMMEDIATE", "invalid_enum_value"),
    ("executeMode", 1, None), ("executeMode", None, None),
    ("scheduledProcessAt", "tomorrow", None), ("scheduledProcessAt", True, None),
    ("scheduledProcessAt", {}, None), ("scheduledProcessAt", "2026-13-45T99:00:00", None),
    ("timezone", 5, None), ("timezone", "Mars/Olympus_Mons", "custom"),
    ("timezone", "America/New_Yrok", "custom"), ("timezone", "", "custom"),
    ("timezone", "../../etc/passwd", "custom"),
    ("strategyId", "x", "invalid_string"), ("strategyId", 5, None),
    ("quantityType", "shares", "invalid_enum_value"), ("quantityType", 1, None),
    ("orderType", "trailingStop", "invalid_enum_value"), ("orderType", "MARKET", "invalid_enum_value"),
    ("limitPrice", "abc", None), ("limitPrice", -1, "too_small"), ("limitPrice", 0, "too_small"),
    ("limitPrice", "NaN", None), ("limitPrice", True, None), ("limitPrice", "1e-999999999", None),
    ("stopPrice", "Infinity", None), ("stopPrice", -5, "too_small"),
    ("timeInForce", "forever", "invalid_enum_value"), ("timeInForce", "GTC", "invalid_enum_value"),
    ("timeInForce", 3, None),
    ("extendedHours", "yes", None), ("extendedHours", "true", None), ("extendedHours", 1, None),
    ("validUntil", "soon", None), ("validUntil", [], None),
    ("sourceId", 5, None), ("sourceId", "", "too_small"), ("sourceId", "x" * 256, "too_big"),
    ("sourceId", ["a"], None), ("sourceId", "a\u0000b", None),
    ("replaceExisting", "true", None), ("replaceExisting", 1, None),
    ("metadata", [1, 2], None), ("metadata", "x", None), ("metadata", 5, None),
    ("metadata", {"blob": "x" * 10_000}, "custom"),
    ("exitTriggerType", "never", "invalid_literal"), ("exitTriggerType", 1, None),
    ("exitTriggerValue", "ten", None), ("exitTriggerValue", 0, "too_small"),
    ("exitTriggerValue", -5, "too_small"), ("exitTriggerValue", 1.5, None),
    ("exitTriggerValue", 10**12, "too_big"),
    ("exitOrderType", "stop", "invalid_literal"),
    ("exitLimitPrice", "abc", None), ("exitLimitPrice", -1, "too_small"),
]


def _case_id(field: str, value: Any) -> str:
    shown = json.dumps(value)
    return f"{field}={shown[:24]}" + ("..." if len(shown) > 24 else "")


@pytest.mark.parametrize(("field", "value", "code"),
                         [pytest.param(f, v, c, id=_case_id(f, v)) for f, v, c in WRONG_FIELDS])
def test_a_wrong_field_is_a_400_naming_that_field(world: World, client: httpx.Client, field: str,
                                                  value: Any, code: str | None) -> None:
    body = signal(world.mallory, **{field: value})
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    mine = [d for d in details if d["path"][:1] == [field]]
    assert mine, details
    if code is not None:
        assert code in {d["code"] for d in mine}, mine


@pytest.mark.parametrize(("field", "allowed"), [
    ("action", ["openLong", "closeLong", "openShort", "closeShort"]),
    ("executeMode", ["immediate", "scheduled", "pending"]),
    ("orderType", ["market", "limit", "stop", "stopLimit"]),
    ("timeInForce", ["day", "gtc", "opg", "cls", "ioc", "fok"]),
    ("quantityType", ["fixed", "percentEquity", "dollarAmount"]),
])
def test_an_unknown_enum_value_names_the_allowed_ones(world: World, client: httpx.Client,
                                                      field: str, allowed: list[str]) -> None:
    body = signal(world.mallory, **{field: "bogus"})
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert details == [{"code": "invalid_enum_value", "message": details[0]["message"],
                        "path": [field]}]
    assert all(f"'{value}'" in details[0]["message"] for value in allowed), details


@pytest.mark.parametrize(("field", "value"), [
    pytest.param("scheduledProcessAt", "9999-12-31T23:59:59-12:00", id="scheduled-after-9999"),
    pytest.param("scheduledProcessAt", "0001-01-01T00:00:00+14:00", id="scheduled-before-0001"),
    pytest.param("validUntil", "9999-12-31T23:59:59-12:00", id="validUntil-after-9999"),
])
def test_a_time_that_leaves_the_calendar_in_utc_is_a_400(world: World, client: httpx.Client,
                                                         field: str, value: str) -> None:
    body = signal(world.mallory, executeMode="scheduled", timezone="UTC",
                  scheduledProcessAt="2026-02-07T09:25:00")
    body[field] = value
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert [field] in paths(details), details


# ---- rules across fields ------------------------------------------------------------------------

CROSS = [
    pytest.param({"executeMode": "scheduled"}, "scheduledProcessAt", id="scheduled-without-time"),
    pytest.param({"orderType": "limit"}, "limitPrice", id="limit-without-limitPrice"),
    pytest.param({"orderType": "stop"}, "stopPrice", id="stop-without-stopPrice"),
    pytest.param({"orderType": "market", "limitPrice": 10}, "limitPrice", id="market-with-price"),
    pytest.param({"executeMode": "scheduled", "scheduledProcessAt": "2026-02-07T09:25:00"},
                 "timezone", id="scheduled-without-timezone"),
    pytest.param({"validUntil": "2026-02-07T09:25:00"}, "timezone", id="validUntil-no-timezone"),
    pytest.param({"validUntil": "2026-02-06T09:00:00", "timezone": "America/New_York"},
                 "validUntil", id="validUntil-in-the-past"),
    pytest.param({"scheduledProcessAt": "2026-02-07T09:25:00", "timezone": "UTC"},
                 "scheduledProcessAt", id="scheduledProcessAt-when-pending"),
    pytest.param({"exitTriggerType": "timed"}, "exitTriggerValue", id="timed-exit-no-minutes"),
    pytest.param({"exitTriggerValue": 30}, "exitTriggerType", id="exit-fields-no-trigger"),
    pytest.param({"exitTriggerType": "timed", "exitTriggerValue": 30, "exitOrderType": "limit"},
                 "exitLimitPrice", id="limit-exit-no-price"),
    pytest.param({"action": "closeLong", "exitTriggerType": "timed", "exitTriggerValue": 30},
                 "exitTriggerType", id="timed-exit-on-a-close"),
    pytest.param({"extendedHours": True}, "extendedHours", id="extendedHours-market"),
]


@pytest.mark.parametrize(("fields", "field"), CROSS)
def test_a_broken_rule_between_fields_is_a_400_naming_the_field(
        world: World, client: httpx.Client, fields: dict[str, Any], field: str) -> None:
    body = signal(world.mallory, **fields)
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert [d for d in details if d["path"] == [field] and d["code"] == "custom"], details


def test_scheduled_without_a_time_answers_exactly_as_the_seed_shows(
        world: World, client: httpx.Client) -> None:
    body = signal(world.mallory, executeMode="scheduled")
    r = post_json(client, SIGNALS, raw(body), world.mallory.headers)
    assert r.status_code == 400
    assert r.json() == {"success": False, "error": "Validation failed", "code": "VALIDATION_ERROR",
                        "details": [{"code": "custom", "message": "scheduledProcessAt is required "
                                     "for scheduled execute mode", "path": ["scheduledProcessAt"]}]}


def test_every_field_problem_is_listed_at_once(world: World, client: httpx.Client) -> None:
    body = signal(world.mallory, symbol="A" * 21, action="buy", quantity=-5)
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert len(details) == 3, details
    assert sorted(paths(details)) == [["action"], ["quantity"], ["symbol"]]


def test_every_rule_problem_is_listed_at_once(world: World, client: httpx.Client) -> None:
    body = signal(world.mallory, executeMode="scheduled", orderType="stopLimit")
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert len(details) == 3, details
    assert sorted(paths(details)) == [["limitPrice"], ["scheduledProcessAt"], ["stopPrice"]]


def test_many_problems_are_all_listed(world: World, client: httpx.Client) -> None:
    body = {"symbol": "", "action": "hold", "accountId": "nope", "quantity": "NaN",
            "executeMode": "eventually", "timeInForce": "never", "extendedHours": "maybe"}
    details = invalid(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers))
    assert sorted(p[0] for p in paths(details)) == sorted(body)


# ---- deep and large ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [300, 1000, 5000])
def test_deeply_nested_metadata_is_a_4xx(world: World, client: httpx.Client, depth: int) -> None:
    head = raw(signal(world.mallory))[:-1]
    content = head + b', "metadata": ' + nested(depth).encode() + b"}"
    before = counts(world.container)
    r = post_json(client, SIGNALS, content, world.mallory.headers)
    assert 400 <= r.status_code < 500, r.text
    assert_error_shape(r, r.status_code, r.json().get("code", ""))
    assert counts(world.container) == before


def test_a_2mb_body_is_a_413(world: World, client: httpx.Client) -> None:
    body = signal(world.mallory, metadata={"blob": "x" * TWO_MB})
    refused(world, lambda: post_json(client, SIGNALS, raw(body), world.mallory.headers),
            413, "PAYLOAD_TOO_LARGE")


def test_a_2mb_chunked_body_without_content_length_is_a_413(world: World,
                                                            client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield raw(signal(world.mallory))[:-1] + b', "metadata": {"blob": "'
        for _ in range(32):
            yield b"x" * 65_536
        yield b'"}}'

    def send() -> httpx.Response:
        r = client.post(SIGNALS, content=chunks(),
                        headers={"Content-Type": "application/json", **world.mallory.headers})
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        return r

    refused(world, send, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("url", [PRICES, LOGIN])
def test_other_routes_refuse_a_2mb_body_with_a_413(world: World, client: httpx.Client,
                                                   url: str) -> None:
    content = b'{"symbol": "' + b"x" * TWO_MB + b'"}'
    refused(world, lambda: post_json(client, url, content, world.mallory.headers),
            413, "PAYLOAD_TOO_LARGE")


# ---- who is asking ------------------------------------------------------------------------------

def _token(c: Container, user_id: str, ttl: timedelta, secret: bytes | None = None) -> str:
    box = SecretBox(secret or c.settings.resolved_secret_key(), token_ttl=ttl)
    return box.issue_token(user_id)[0]


def _unsigned(user_id: str) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    exp = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': user_id, 'exp': exp, 'typ': 'session'})}."


def _revoked(w: World) -> dict[str, str]:
    key, plaintext = accounts.create_api_key(w.alice.user_id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=w.container.deps, secrets=w.container.secrets)
    assert accounts.revoke_api_key(key.id, w.container.deps)
    return {"X-API-Key": plaintext}


BAD_CREDENTIALS: dict[str, Callable[[World], dict[str, str]]] = {
    "no-credential": lambda w: {},
    "empty-api-key": lambda w: {"X-API-Key": ""},
    "garbage-api-key": lambda w: {"X-API-Key": "tw_garbage"},
    "api-key-one-char-off": lambda w: {"X-API-Key": w.alice.key[:-1] + ("A" if w.alice.key[-1] != "A"
                                                                         else "B")},
    "api-key-with-a-space": lambda w: {"X-API-Key": f"{w.alice.key[:8]} {w.alice.key[8:]}"},
    "revoked-api-key": _revoked,
    "api-key-as-bearer": lambda w: {"Authorization": f"Bearer {w.alice.key}"},
    "garbage-bearer": lambda w: {"Authorization": "Bearer garbage.garbage.garbage"},
    "bearer-without-token": lambda w: {"Authorization": "Bearer"},
    "bearer-without-scheme-space": lambda w: {"Authorization": "Bearer" + w.alice_jwt[
        "Authorization"][7:]},
    "basic-auth": lambda w: {"Authorization": "Basic " + base64.b64encode(
        f"{w.alice.username}:{w.alice.password}".encode()).decode()},
    "expired-jwt": lambda w: {"Authorization": "Bearer " + _token(
        w.container, w.alice.user_id, timedelta(minutes=-5))},
    "jwt-signed-elsewhere": lambda w: {"Authorization": "Bearer " + _token(
        w.container, w.alice.user_id, timedelta(hours=1), b"another-server-secret")},
    "jwt-of-unknown-user": lambda w: {"Authorization": "Bearer " + _token(
        w.container, str(uuid4()), timedelta(hours=1))},
    "unsigned-jwt": lambda w: {"Authorization": f"Bearer {_unsigned(w.alice.user_id)}"},
    "jwt-in-api-key-header": lambda w: {"X-API-Key": w.alice_jwt["Authorization"][7:]},
}


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
def test_a_missing_or_invalid_credential_is_a_401(world: World, client: httpx.Client,
                                                  credential: str) -> None:
    headers = BAD_CREDENTIALS[credential](world)
    body = signal(world.alice, executeMode="immediate")

    def send() -> httpx.Response:
        r = post_json(client, SIGNALS, raw(body), headers)
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
        return r

    refused(world, send, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("credential", ["no-credential", "garbage-api-key", "revoked-api-key",
                                        "expired-jwt", "garbage-bearer"])
@pytest.mark.parametrize("request_", [
    pytest.param(("GET", SIGNALS), id="list-signals"),
    pytest.param(("GET", "/api/v1/orders"), id="orders"),
    pytest.param(("GET", "/api/v1/positions"), id="positions"),
    pytest.param(("GET", "/api/v1/accounts"), id="accounts"),
    pytest.param(("POST", PRICES), id="prices"),
])
def test_other_routes_answer_401_to_the_same_credentials(world: World, client: httpx.Client,
                                                         credential: str,
                                                         request_: tuple[str, str]) -> None:
    method, url = request_
    headers = BAD_CREDENTIALS[credential](world)
    content = raw({"symbol": "AAPL", "price": 190}) if method == "POST" else None
    refused(world, lambda: client.request(method, url, content=content, headers=headers),
            401, "UNAUTHORIZED")


@pytest.mark.parametrize("header", [
    pytest.param({"X-API-Key": b"\xff\xfe\xfd"}, id="api-key-not-utf8"),
    pytest.param({"Authorization": b"Bearer \xff\xfe\xfd"}, id="bearer-not-utf8"),
])
def test_credentials_that_are_not_text_are_a_401(world: World, client: httpx.Client,
                                                 header: dict[str, bytes]) -> None:
    body = signal(world.alice)
    refused(world, lambda: client.post(SIGNALS, content=raw(body), headers=header),
            401, "UNAUTHORIZED")


def test_another_users_account_is_a_404(world: World, client: httpx.Client) -> None:
    body = signal(world.alice, executeMode="immediate")
    r = refused(world, lambda: post_json(client, SIGNALS, raw(body), world.bob.headers),
                404, "ACCOUNT_NOT_FOUND")
    assert "signal" not in r


def test_a_random_account_is_a_404(world: World, client: httpx.Client) -> None:
    body = signal(world.alice, accountId=str(uuid4()), executeMode="immediate")
    refused(world, lambda: post_json(client, SIGNALS, raw(body), world.alice.headers),
            404, "ACCOUNT_NOT_FOUND")


def test_another_users_account_answers_like_a_random_one(world: World,
                                                         client: httpx.Client) -> None:
    random_id = str(uuid4())
    theirs = post_json(client, SIGNALS, raw(signal(world.alice)), world.bob.headers)
    nobodys = post_json(client, SIGNALS, raw(signal(world.alice, accountId=random_id)),
                        world.bob.headers)
    assert theirs.status_code == nobodys.status_code == 404
    assert (theirs.text.replace(world.alice.account_id, "<id>")
            == nobodys.text.replace(random_id, "<id>"))


# ---- POST /api/v1/market/prices -----------------------------------------------------------------

PRICE_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"symbol": "AAPL", "price": ', id="truncated"),
    pytest.param(b'{"symbol": "AAPL", "price": NaN}', id="nan-literal"),
    pytest.param(b'"AAPL 190"', id="string"),
    pytest.param(b"190", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"[]", id="empty-batch"),
    pytest.param(b"[190]", id="batch-of-numbers"),
    pytest.param(b"[[]]", id="batch-of-arrays"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"symbol": "AAPL"}', id="no-price"),
    pytest.param(b'{"price": 190}', id="no-symbol"),
    pytest.param(b'{"symbol": "AAPL", "price": -1}', id="negative"),
    pytest.param(b'{"symbol": "AAPL", "price": 0}', id="zero"),
    pytest.param(b'{"symbol": "AAPL", "price": "NaN"}', id="nan-string"),
    pytest.param(b'{"symbol": "AAPL", "price": "Infinity"}', id="infinity-string"),
    pytest.param(b'{"symbol": "AAPL", "price": "1e999"}', id="huge"),
    pytest.param(b'{"symbol": "AAPL", "price": "1e-999999999"}', id="tiny-exponent"),
    pytest.param(b'{"symbol": "AAPL", "price": true}', id="boolean"),
    pytest.param(b'{"symbol": "AAPL", "price": "abc"}', id="price-text"),
    pytest.param(b'{"symbol": "AAPLAAPLAAPLAAPLAAPLA", "price": 1}', id="symbol-21"),
    pytest.param(b'{"symbol": "A A", "price": 1}', id="symbol-space"),
    pytest.param(b'{"symbol": 5, "price": 1}', id="symbol-number"),
    pytest.param(b'{"symbol": "AAPL", "price": 1, "volume": 5}', id="unknown-field"),
    pytest.param(b'{"symbol": "AAPL", "price": 1, "ts": "yesterday"}', id="ts-text"),
    pytest.param(b'{"symbol": "AAPL", "price": 1, "ts": "0001-01-01T00:00:00+14:00"}',
                 id="ts-before-year-1"),
    pytest.param(b'{"symbol": "AAPL", "price": 1, "ts": "9999-12-31T23:59:59-12:00"}',
                 id="ts-after-9999"),
    pytest.param(b'[{"symbol": "AAPL", "price": 1}, {"symbol": "MSFT", "price": -1}]',
                 id="batch-with-one-bad"),
    pytest.param(b"[" + b",".join([b'{"symbol": "A", "price": 1}'] * 10_001) + b"]",
                 id="batch-of-10001"),
]


@pytest.mark.parametrize("content", PRICE_BODIES)
def test_bad_prices_are_a_400_and_record_nothing(world: World, client: httpx.Client,
                                                 content: bytes) -> None:
    invalid(world, lambda: post_json(client, PRICES, content, world.alice.headers))


def test_a_batch_lists_each_bad_price_with_its_index(world: World, client: httpx.Client) -> None:
    content = raw([{"symbol": "AAPL", "price": 1}, {"symbol": "MSFT", "price": -1},
                   {"symbol": "", "price": 1}])
    details = invalid(world, lambda: post_json(client, PRICES, content, world.alice.headers))
    assert sorted(paths(details)) == [[1, "price"], [2, "symbol"]]


# ---- POST /api/v1/auth/login --------------------------------------------------------------------

LOGIN_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b'{"username": "admin", ', id="truncated"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"admin:secret"', id="string"),
    pytest.param(b"7", id="number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b'{"username": "admin"}', id="no-password"),
    pytest.param(b'{"username": 5, "password": []}', id="wrong-types"),
    pytest.param(b'{"username": "", "password": ""}', id="empty-strings"),
    pytest.param(b'{"username": "a", "password": "' + b"p" * 201 + b'"}', id="password-201"),
    pytest.param(b'{"username": "' + b"u" * 101 + b'", "password": "p"}', id="username-101"),
    pytest.param(b'{"username": "admin", "password": null}', id="null-password"),
]


@pytest.mark.parametrize("content", LOGIN_BODIES)
def test_a_bad_login_body_is_a_400(world: World, client: httpx.Client, content: bytes) -> None:
    invalid(world, lambda: post_json(client, LOGIN, content))


@pytest.mark.parametrize("who", ["unknown-user", "wrong-password", "nul-in-username",
                                 "nul-in-password", "case-changed-username"])
def test_wrong_credentials_on_login_are_a_401(world: World, client: httpx.Client,
                                              who: str) -> None:
    a = world.alice
    body = {"unknown-user": {"username": "nobody-" + a.username, "password": a.password},
            "wrong-password": {"username": a.username, "password": a.password + "x"},
            "nul-in-username": {"username": a.username + "\u0000", "password": a.password},
            "nul-in-password": {"username": a.username, "password": a.password + "\u0000"},
            "case-changed-username": {"username": a.username.upper(), "password": a.password},
            }[who]
    before = counts(world.container)
    r = post_json(client, LOGIN, raw(body))
    assert 400 <= r.status_code < 500, r.text
    assert_error_shape(r, r.status_code, r.json()["code"])
    assert "token" not in r.json()
    assert counts(world.container) == before


def test_the_login_error_does_not_say_which_half_was_wrong(world: World,
                                                           client: httpx.Client) -> None:
    a = world.alice
    unknown = post_json(client, LOGIN, raw({"username": "nobody", "password": a.password}))
    wrong = post_json(client, LOGIN, raw({"username": a.username, "password": "nope"}))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


# ---- query parameters and path ids --------------------------------------------------------------

QUERIES = ["limit=0", "limit=10000", "limit=-1", "limit=abc", "limit=1.5", "limit=",
           "offset=-1", "offset=abc", "offset=1000001", "offset=1e3"]


PAGING = ([(SIGNALS, q) for q in QUERIES]
          + [(url, q) for url in ("/api/v1/orders", "/api/v1/positions", "/api/v1/accounts")
             for q in ("limit=0", "limit=10000", "offset=-1", "limit=abc")])


@pytest.mark.parametrize(("url", "query"), PAGING)
def test_bad_paging_is_a_400(world: World, client: httpx.Client, url: str, query: str) -> None:
    details = invalid(world, lambda: client.get(f"{url}?{query}", headers=world.alice.headers))
    assert details[0]["path"] == [query.split("=")[0]]


@pytest.mark.parametrize(("url", "query"), [
    (SIGNALS, "status=bogus"), (SIGNALS, "status="), (SIGNALS, "status=PENDING"),
    ("/api/v1/orders", "status=bogus"),
])
def test_an_unknown_status_filter_is_a_400(world: World, client: httpx.Client, url: str,
                                           query: str) -> None:
    details = invalid(world, lambda: client.get(f"{url}?{query}", headers=world.alice.headers))
    assert details[0]["path"] == ["status"]


@pytest.mark.parametrize("url", [SIGNALS, "/api/v1/orders", "/api/v1/positions"])
@pytest.mark.parametrize("query", ["accountId=%00", "accountId=not-a-uuid",
                                   "accountId=" + "x" * 500, "symbol=%00", "symbol=" + "A" * 500,
                                   "symbol=%F0%9F%92%A9"])
def test_odd_filters_are_never_a_5xx(world: World, client: httpx.Client, url: str,
                                     query: str) -> None:
    before = counts(world.container)
    r = client.get(f"{url}?{query}", headers=world.alice.headers)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert_error_shape(r, r.status_code, r.json()["code"])
    assert counts(world.container) == before


@pytest.mark.parametrize(("signal_id", "status"), [
    ("%00", 400),  # NUL is refused before routing, as invalid input
    ("x" * 300, 404), ("not-a-uuid", 404), (str(uuid4()), 404), ("%F0%9F%92%A9", 404),
    ("..%2F..%2Fetc", 404)])
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST-process"])
def test_odd_signal_ids_are_refused(world: World, client: httpx.Client, signal_id: str,
                                    status: int, method: str) -> None:
    url = f"{SIGNALS}/{signal_id}"
    headers = world.alice.headers
    if method == "POST-process":
        method, url, headers = "POST", url + "/process", world.alice_jwt
    before = counts(world.container)
    r = client.request(method, url, headers=headers)
    assert r.status_code == status, r.text
    assert_error_shape(r, status, r.json()["code"])
    assert counts(world.container) == before
