"""Notifications, the pure part: which events are heard as what, the words, the retry schedule,
the outbox cursor, subscription checks and the webhook signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from tradewire.domain.audit import AuditEvent
from tradewire.domain.notifications import (
    MAX_ATTEMPTS,
    Channel,
    EventKind,
    InvalidSubscription,
    NotificationSubscription,
    advance_cursor,
    check_subscription,
    kinds_of,
    next_attempt,
    once_key,
    render,
    retry_delay,
    signature,
    signed_headers,
    verify,
)

T0 = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
K = EventKind


def event(name: str, account: str | None = "acc-1", **data: object) -> AuditEvent:
    return AuditEvent(entity="order" if name.startswith("Order") else "signal", entity_id="e-1",
                      event=name, at=T0, account_id=account, signal_id="sig-1",
                      to_status="filled" if name == "OrderFilled" else None, data=dict(data))


@pytest.mark.parametrize(("ev", "kinds"), [
    (event("SignalRejected", code="RISK_MAX_POSITION"), (K.SIGNAL_REJECTED,)),
    (event("SignalRejected", code="RISK_DAILY_LOSS_LIMIT"), (K.DAILY_LOSS_HIT, K.SIGNAL_REJECTED)),
    (event("OrderFilled", qty="5", price="100"), (K.ORDER_FILLED,)),
    (event("OrderCreated", trigger="95", exit="stop_loss"), (K.STOP_HIT,)),
    (event("OrderCreated", trigger="95", exit="trailing_stop"), (K.STOP_HIT,)),
    (event("OrderCreated", trigger="120", exit="take_profit"), ()),
    (event("OrderCreated"), ()),
    (event("ReconciliationDifference", kind="position", key="AAPL"),
     (K.RECONCILIATION_DIFFERENCE,)),
    (event("ReconciliationResolved", kind="position", key="AAPL"), ()),
    (event("SignalQueued"), ()),
    (event("OrderFilled", account=None), ()),  # not about an account: nobody's to hear
])
def test_events_are_heard_as_their_kinds_most_specific_first(
        ev: AuditEvent, kinds: tuple[EventKind, ...]) -> None:
    assert kinds_of(ev) == kinds


def test_the_daily_loss_limit_is_heard_once_a_session_and_the_rest_per_event() -> None:
    ev = event("SignalRejected", code="RISK_DAILY_LOSS_LIMIT")
    assert once_key(K.DAILY_LOSS_HIT, ev, "2026-02-06") == "daily_loss_hit:acc-1:2026-02-06"
    assert once_key(K.SIGNAL_REJECTED, ev, "2026-02-06") is None


def test_the_words_of_a_fill() -> None:
    ev = event("OrderFilled", qty="5", price="101.5", fill_id="f-1")
    n = render(K.ORDER_FILLED, ev, {"account_name": "main", "symbol": "AAPL", "side": "buy"},
               "d-1")
    assert n.subject == "[tradewire] Order filled: AAPL"
    assert "buy 5 AAPL at 101.5 on account 'main' (order filled)" in n.text
    body = json.loads(n.body())
    assert body["id"] == "d-1" and body["type"] == "order_filled" and body["symbol"] == "AAPL"
    assert body["data"] == {"qty": "5", "price": "101.5", "fill_id": "f-1"}
    assert n.body() == n.body()  # the same bytes on every attempt


def test_the_words_of_a_rejection_and_of_a_difference() -> None:
    rejected = render(K.SIGNAL_REJECTED, event("SignalRejected", code="X", reason="too big"),
                      {"account_name": "main", "symbol": "MSFT", "action": "openLong"}, "d")
    assert "openLong MSFT on account 'main' was rejected: too big" in rejected.text
    diff = AuditEvent(entity="reconciliation", entity_id="acc-1:AAPL",
                      event="ReconciliationDifference", at=T0, account_id="acc-1",
                      data={"kind": "position", "key": "AAPL", "ours": {"qty": "0"},
                            "theirs": {"qty": "3"}})
    n = render(K.RECONCILIATION_DIFFERENCE, diff, {"account_name": "main"}, "d")
    assert "position AAPL on account 'main': tradewire has qty 0, the broker has qty 3" in n.text


def test_retries_back_off_doubling_up_to_an_hour_then_stop() -> None:
    assert [retry_delay(n).total_seconds() for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600]
    assert next_attempt(1, T0) == T0 + timedelta(seconds=30)
    assert next_attempt(MAX_ATTEMPTS - 1, T0) is not None
    assert next_attempt(MAX_ATTEMPTS, T0) is None


def test_the_cursor_moves_over_contiguous_events() -> None:
    assert advance_cursor(10, [11, 12, 13], None, T0) == (13, None)
    assert advance_cursor(10, [], None, T0) == (10, None)


def test_the_cursor_waits_at_a_gap_then_steps_over_it() -> None:
    # 12 is missing: a transaction that took it may still commit.
    assert advance_cursor(10, [11, 13], None, T0) == (11, T0)
    later = T0 + timedelta(seconds=30)
    assert advance_cursor(11, [13], T0, later) == (11, T0)  # still waiting
    assert advance_cursor(11, [12, 13], T0, later) == (13, None)  # it came
    much_later = T0 + timedelta(minutes=5)
    assert advance_cursor(11, [13, 14], T0, much_later) == (14, None)  # it never will
    assert advance_cursor(11, [13, 15], T0, much_later) == (13, much_later)  # a new gap


def test_a_subscription_hears_its_kinds_on_its_accounts_from_its_creation() -> None:
    sub = NotificationSubscription("s", "u", Channel.EMAIL, "a@example.com",
                                   frozenset({K.ORDER_FILLED}), frozenset({"acc-1"}), T0)
    assert sub.hears("acc-1", (K.ORDER_FILLED,), T0)
    assert not sub.hears("acc-2", (K.ORDER_FILLED,), T0)
    assert not sub.hears("acc-1", (K.SIGNAL_REJECTED,), T0)
    assert not sub.hears("acc-1", (K.ORDER_FILLED,), T0 - timedelta(seconds=1))


@pytest.mark.parametrize(("channel", "target", "events", "path"), [
    ("sms", "+15551234", ["order_filled"], "channel"),
    (None, "x", ["order_filled"], "channel"),
    ("webhook", "ftp://example.com/x", ["order_filled"], "target"),
    ("webhook", "https://user:pw@example.com/x", ["order_filled"], "target"),
    ("webhook", "https://example.com:99999/x", ["order_filled"], "target"),
    ("webhook", "https://exa mple.com/", ["order_filled"], "target"),
    ("webhook", "https://" + "a" * 600 + ".com", ["order_filled"], "target"),
    ("email", "not-an-address", ["order_filled"], "target"),
    ("email", "a@example.com\r\nBcc: x@evil.com", ["order_filled"], "target"),
    ("telegram", "some chat", ["order_filled"], "target"),
    ("webhook", "", ["order_filled"], "target"),
    ("webhook", 5, ["order_filled"], "target"),
    ("webhook", "https://example.com/x", [], "events"),
    ("webhook", "https://example.com/x", "order_filled", "events"),
    ("webhook", "https://example.com/x", ["order_filled", "everything"], "events"),
    ("webhook", "https://example.com/x", [7], "events"),
])
def test_bad_subscriptions_are_refused_by_field(channel: object, target: object, events: object,
                                                path: str) -> None:
    with pytest.raises(InvalidSubscription) as err:
        check_subscription(channel, target, events)
    assert err.value.path == path and err.value.code == "INVALID_SUBSCRIPTION"


def test_good_subscriptions_are_taken() -> None:
    assert check_subscription("webhook", " https://example.com/h?x=1 ", ["stop_hit"]) == (
        Channel.WEBHOOK, "https://example.com/h?x=1", frozenset({K.STOP_HIT}))
    assert check_subscription("email", "ops@example.com", ["order_filled"])[0] is Channel.EMAIL
    for chat in ("123456789", "-1001234567890", "@my_channel"):
        assert check_subscription("telegram", chat, ["daily_loss_hit"])[1] == chat


SECRET = "whsec_test"
BODY = b'{"id":"d-1","type":"order_filled"}'


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    ts = int(T0.timestamp())
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, ts, BODY) == f"v1={expected}"
    headers = signed_headers(SECRET, BODY, T0)
    assert headers == {"X-Tradewire-Timestamp": str(ts),
                       "X-Tradewire-Signature": f"v1={expected}"}


def test_verify_takes_a_fresh_signed_request() -> None:
    h = signed_headers(SECRET, BODY, T0)
    ts, sig = h["X-Tradewire-Timestamp"], h["X-Tradewire-Signature"]
    assert verify(SECRET, ts, BODY, sig, T0)
    assert verify(SECRET, ts, BODY.decode(), sig, T0 + timedelta(seconds=299))
    assert verify(SECRET, int(ts), BODY, f"v1=00ff, {sig}", T0.timestamp())  # rotation: any


@pytest.mark.parametrize("change", [
    "other secret", "tampered body", "other timestamp", "too old", "from the future",
    "no signature", "garbage timestamp", "signed timestamp not a number", "v0 scheme",
])
def test_verify_refuses_what_is_not_a_fresh_signed_request(change: str) -> None:
    h = signed_headers(SECRET, BODY, T0)
    secret, ts, body, sig, now = SECRET, h["X-Tradewire-Timestamp"], BODY, \
        h["X-Tradewire-Signature"], T0
    if change == "other secret":
        secret = "whsec_other"
    elif change == "tampered body":
        body = BODY.replace(b"d-1", b"d-2")
    elif change == "other timestamp":
        ts = str(int(ts) + 1)
    elif change == "too old":  # a replay, six minutes on
        now = T0 + timedelta(minutes=6)
    elif change == "from the future":
        now = T0 - timedelta(minutes=6)
    elif change == "no signature":
        sig = ""
    elif change == "garbage timestamp":
        ts = "1e9"
    elif change == "signed timestamp not a number":
        ts = " " + ts
    else:
        sig = sig.replace("v1=", "v0=")
    assert not verify(secret, ts, body, sig, now)
