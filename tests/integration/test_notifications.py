"""Notifications end to end, with real receivers on loopback: a webhook receiver that checks
the signature (and refuses a replay), an SMTP server (aiosmtpd) and a fake Telegram Bot API.
Events come from the real flows (a fill, a refusal, a reconciliation difference) through the
audit log; `collect` and `dispatch` are what the worker runs each pass."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import event, text

from tests.support import Caller, free_port, login
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.notify import NotificationSettings, build_senders
from tradewire.adapters.notify.smtp import SmtpSender
from tradewire.adapters.notify.telegram import TelegramSender
from tradewire.adapters.notify.webhook import WebhookSender
from tradewire.bootstrap import Container
from tradewire.domain.audit import AuditEvent
from tradewire.domain.notifications import MAX_ATTEMPTS, DeliveryStatus, retry_delay, verify
from tradewire.services import accounts, notifications, risk
from tradewire.services.notifications import SEND_LEASE, Outgoing, SendFailed, collect, dispatch
from tradewire.services.ports import Page
from tradewire.services.reconciliation import reconcile_all

SUBS = "/api/v1/notifications/subscriptions"
DELIVERIES = "/api/v1/notifications/deliveries"


# ---- receivers -----------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on loopback that records every request and answers with `respond`."""

    respond: Callable[[Request], tuple[int, dict[str, Any]]]
    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  body)
                receiver.requests.append(request)
                status, answer = receiver.respond(request)
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class WebhookReceiver(Receiver):
    """Takes a request only when its signature verifies under the path's secret, now."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(self._check)
        self.clock = clock
        self.secrets: dict[str, str] = {}
        self.down = False  # answers 503 while down
        self.accepted: list[Request] = []

    def _check(self, request: Request) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 503, {"error": "down for maintenance"}
        secret = self.secrets.get(request.path, "")
        if not verify(secret, request.headers.get("x-tradewire-timestamp"), request.body,
                      request.headers.get("x-tradewire-signature"), self.clock.now()):
            return 401, {"error": "bad signature"}
        self.accepted.append(request)
        return 200, {"ok": True}

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.accepted if path is None or r.path == path]


@pytest.fixture
def hooks(clock: ManualClock) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(clock).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def senders() -> dict[str, Any]:
    return {"webhook": WebhookSender(timeout=5, allow_private=True)}


# ---- helpers -------------------------------------------------------------------------------


def jwt(client: httpx.Client, caller: Caller) -> dict[str, str]:
    return login(client, caller)


def subscribe(client: httpx.Client, headers: dict[str, str], channel: str, target: str,
              events: list[str], **extra: Any) -> dict[str, Any]:
    r = client.post(SUBS, headers=headers, json={"channel": channel, "target": target,
                                                 "events": events, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def webhook(client: httpx.Client, caller: Caller, hooks: WebhookReceiver, path: str,
            events: list[str], **extra: Any) -> dict[str, Any]:
    made = subscribe(client, jwt(client, caller), "webhook", hooks.url + path, events, **extra)
    hooks.secrets[path] = made["secret"]
    return made


def set_price(client: httpx.Client, caller: Caller, symbol: str, price: float) -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def send_signal(client: httpx.Client, caller: Caller, account_id: str | None = None,
                **fields: Any) -> httpx.Response:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": account_id or caller.account_id,
            "quantity": 10, "executeMode": "immediate", **fields}
    return client.post("/api/v1/signals", json=body, headers=caller.headers)


def fill(client: httpx.Client, caller: Caller, account_id: str | None = None,
         symbol: str = "AAPL") -> None:
    set_price(client, caller, symbol, 190)
    r = send_signal(client, caller, account_id, symbol=symbol)
    assert r.status_code == 201, r.text


def reject(client: httpx.Client, caller: Caller) -> None:
    r = send_signal(client, caller, action="closeLong", symbol="NOPE")
    assert r.status_code == 400, r.text


def difference(container: Container, caller: Caller) -> None:
    """An order at the broker that tradewire never sent: reconciliation reports it."""
    from tradewire.domain.values import OrderType, Side, TimeInForce
    from tradewire.services.ports import OrderRequest

    container.paper.submit(OrderRequest(
        account_ref=caller.account_id, client_order_id=f"by-hand-{caller.account_id[:8]}",
        symbol="MSFT", side=Side.BUY, qty=Decimal(2), order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC, limit_price=Decimal(1)))
    reconcile_all(container.deps)


def deliveries(container: Container, caller: Caller) -> list[Any]:
    principal = accounts.principal_for_key(caller.key, container.deps, container.secrets)
    assert principal is not None
    return notifications.list_deliveries(principal, container.deps, Page(limit=200))


# ---- the bar: a signed webhook received and verified; a receiver down gets retries --------


def test_a_signed_webhook_is_received_and_verified(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any], clock: ManualClock) -> None:
    made = webhook(client, alice, hooks, "/hook", ["order_filled"])
    assert made["secret"].startswith("whsec_") and made["subscription"]["events"] == ["order_filled"]
    fill(client, alice)
    assert collect(container.deps) == 1
    assert dispatch(container.deps, senders) == 1
    (event,) = hooks.events()
    assert event["type"] == "order_filled" and event["event"] == "OrderFilled"
    assert event["accountId"] == alice.account_id and event["symbol"] == "AAPL"
    assert event["data"]["qty"] == "10" and event["data"]["price"] == "190"
    (request,) = hooks.requests
    assert request.headers["x-tradewire-delivery"] == event["id"]
    assert request.headers["x-tradewire-event"] == "order_filled"
    assert request.headers["x-tradewire-timestamp"] == str(int(clock.now().timestamp()))
    (d,) = deliveries(container, alice)
    assert (d.status, d.attempts, d.delivered_at) == (DeliveryStatus.DELIVERED, 1, clock.now())
    # The receiver refuses a tampered body, and the same request replayed later.
    tampered = request.body.replace(b'"qty":"10"', b'"qty":"99"')
    assert httpx.post(hooks.url + "/hook", content=tampered, headers=request.headers).status_code == 401
    clock.advance(timedelta(minutes=6))
    assert httpx.post(hooks.url + "/hook", content=request.body,
                      headers=request.headers).status_code == 401
    assert len(hooks.accepted) == 1
    assert dispatch(container.deps, senders) == 0 and collect(container.deps) == 0


def test_a_receiver_that_is_down_gets_retries_and_the_event_arrives_once_it_is_back(
        client: httpx.Client, container: Container, alice: Caller, clock: ManualClock,
        senders: dict[str, Any]) -> None:
    hooks = WebhookReceiver(clock)  # not listening yet: connections are refused
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice)
    assert collect(container.deps) == 1
    assert dispatch(container.deps, senders) == 1
    (d,) = deliveries(container, alice)
    assert (d.status, d.attempts) == (DeliveryStatus.PENDING, 1)
    assert "could not reach the receiver" in (d.last_error or "")
    assert d.next_at == clock.now() + retry_delay(1)
    assert dispatch(container.deps, senders) == 0  # not due before its backoff
    clock.advance(retry_delay(1))
    assert dispatch(container.deps, senders) == 1  # refused again
    hooks.down = True
    hooks.start()  # up, but answering 503
    try:
        clock.advance(retry_delay(2))
        assert dispatch(container.deps, senders) == 1
        (d,) = deliveries(container, alice)
        assert (d.status, d.attempts, d.last_error) == (
            DeliveryStatus.PENDING, 3, "the receiver answered HTTP 503")
        hooks.down = False
        clock.advance(retry_delay(3) - timedelta(seconds=1))
        assert dispatch(container.deps, senders) == 0
        clock.advance(timedelta(seconds=1))
        assert dispatch(container.deps, senders) == 1
        for _ in range(3):  # nothing more, however long one waits
            clock.advance(timedelta(hours=2))
            assert collect(container.deps) == 0 and dispatch(container.deps, senders) == 0
        assert len(hooks.accepted) == 1 and len(hooks.requests) == 2
        (d,) = deliveries(container, alice)
        assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.DELIVERED, 4, None)
        assert len({r.headers["x-tradewire-delivery"] for r in hooks.requests}) == 1
    finally:
        hooks.stop()


def test_a_receiver_that_never_takes_it_ends_failed_with_the_last_error(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        clock: ManualClock, senders: dict[str, Any]) -> None:
    hooks.down = True
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice)
    collect(container.deps)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert dispatch(container.deps, senders) == 1
        clock.advance(retry_delay(attempt))
    assert dispatch(container.deps, senders) == 0
    (d,) = deliveries(container, alice)
    assert (d.status, d.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert d.last_error == "the receiver answered HTTP 503"
    assert len(hooks.requests) == MAX_ATTEMPTS
    shown = client.get(DELIVERIES, headers=alice.headers, params={"status": "failed"})
    assert shown.status_code == 200
    assert [x["lastError"] for x in shown.json()["deliveries"]] == [d.last_error]


def test_concurrent_notifiers_make_and_send_each_delivery_once(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any]) -> None:
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    for symbol in ("AAPL", "MSFT", "NVDA"):
        fill(client, alice, symbol=symbol)
    made: list[int] = []
    sent: list[int] = []
    barrier = threading.Barrier(4)

    def run(work: Callable[[], int], into: list[int]) -> None:
        barrier.wait(timeout=10)
        into.append(work())

    threads = [threading.Thread(target=run, args=(lambda: collect(container.deps), made))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(made) == 3
    barrier = threading.Barrier(4)
    threads = [threading.Thread(target=run, args=(lambda: dispatch(container.deps, senders), sent))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(sent) == 3
    assert sorted(e["symbol"] for e in hooks.events()) == ["AAPL", "MSFT", "NVDA"]


def test_a_send_whose_sender_died_is_taken_over_after_its_lease(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any], clock: ManualClock) -> None:
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice)
    collect(container.deps)
    (d,) = deliveries(container, alice)
    now = clock.now()
    with container.deps.uow() as uow:  # a dispatcher claims it, then dies before sending
        dead = uow.notifications.claim(d.id, "dead-worker", now, now + SEND_LEASE)
        uow.commit()
    assert dead is not None
    assert dispatch(container.deps, senders) == 0  # its lease still holds
    clock.advance(SEND_LEASE + timedelta(seconds=1))
    assert dispatch(container.deps, senders) == 1
    with container.deps.uow() as uow:  # the dead one's late word changes nothing
        assert not uow.notifications.finish(dead, "dead-worker", DeliveryStatus.FAILED,
                                            clock.now(), error="late")
        uow.commit()
    (d,) = deliveries(container, alice)
    assert (d.status, d.attempts, d.last_error) == (DeliveryStatus.DELIVERED, 2, None)
    assert len(hooks.accepted) == 1


# ---- what is heard, and by whom ------------------------------------------------------------


def test_each_subscription_gets_the_events_it_chose_and_no_others(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any]) -> None:
    webhook(client, alice, hooks, "/fills", ["order_filled"])
    webhook(client, alice, hooks, "/trouble", ["signal_rejected", "reconciliation_difference"])
    webhook(client, alice, hooks, "/stops", ["stop_hit"])
    fill(client, alice)
    reject(client, alice)
    difference(container, alice)
    collect(container.deps)
    dispatch(container.deps, senders)
    assert [e["type"] for e in hooks.events("/fills")] == ["order_filled"]
    trouble = sorted((e["type"], e["event"]) for e in hooks.events("/trouble"))
    assert trouble == [("reconciliation_difference", "ReconciliationDifference"),
                       ("signal_rejected", "SignalRejected")]
    (diff,) = [e for e in hooks.events("/trouble") if e["type"] == "reconciliation_difference"]
    assert diff["data"]["kind"] == "unknown_order"
    assert diff["data"]["key"] == f"by-hand-{alice.account_id[:8]}"
    rejected = next(e for e in hooks.events("/trouble") if e["type"] == "signal_rejected")
    assert rejected["data"]["code"] == "NO_POSITION" and "no long position" in rejected["text"]
    assert hooks.events("/stops") == []
    reconcile_all(container.deps)  # a standing difference is not recorded (or sent) again
    assert collect(container.deps) == 0


def test_a_stop_hit_is_heard_as_one(client: httpx.Client, container: Container, alice: Caller,
                                    hooks: WebhookReceiver, senders: dict[str, Any]) -> None:
    """The exit engine's OrderCreated names the exit kind that fired (data `exit`)."""
    webhook(client, alice, hooks, "/stops", ["stop_hit"])
    fill(client, alice)
    with container.deps.uow() as uow:
        (order,) = uow.orders.list([alice.account_id], Page(limit=5))
        for kind in ("stop_loss", "take_profit"):
            uow.audit.add(AuditEvent(entity="order", entity_id=order.id, event="OrderCreated",
                                     at=container.deps.clock.now(), account_id=alice.account_id,
                                     signal_id=order.signal_id, to_status="new",
                                     data={"trigger": "171.5", "exit": kind}))
        uow.commit()
    collect(container.deps)
    dispatch(container.deps, senders)
    (event,) = hooks.events("/stops")
    assert event["type"] == "stop_hit" and event["data"]["exit"] == "stop_loss"
    assert "stop loss on AAPL fired at 171.5" in event["text"]


def test_a_real_stop_loss_firing_is_heard_as_a_stop_hit(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any]) -> None:
    """The whole way: an entry with a stop, a price through it, the exit engine fires."""
    webhook(client, alice, hooks, "/real-stops", ["stop_hit"])
    set_price(client, alice, "AAPL", 190)
    r = send_signal(client, alice, stopLoss={"type": "stop", "stopPrice": 180})
    assert r.status_code == 201, r.text
    set_price(client, alice, "AAPL", 175)  # through the stop: the exit engine sells
    with container.deps.uow(write=False) as uow:
        assert uow.positions.get(alice.account_id, "AAPL").qty == 0
    collect(container.deps)
    dispatch(container.deps, senders)
    (event,) = hooks.events("/real-stops")
    assert event["type"] == "stop_hit" and event["data"]["exit"] == "stop_loss"


def test_the_daily_loss_limit_is_heard_once_a_session_and_each_refusal_as_a_rejection(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any]) -> None:
    webhook(client, alice, hooks, "/both", ["daily_loss_hit", "signal_rejected"])
    webhook(client, alice, hooks, "/loss", ["daily_loss_hit"])
    risk.set_limits(alice.account_id, {"daily_loss_limit": 100}, container.deps)
    set_price(client, alice, "AAPL", 190)
    assert send_signal(client, alice).status_code == 201
    set_price(client, alice, "AAPL", 170)
    assert send_signal(client, alice, action="closeLong").status_code == 201  # lost 200
    for _ in range(2):
        r = send_signal(client, alice)
        assert r.status_code == 400 and r.json()["details"][0]["code"] == "RISK_DAILY_LOSS_LIMIT"
    collect(container.deps)
    dispatch(container.deps, senders)
    assert sorted(e["type"] for e in hooks.events("/both")) == ["daily_loss_hit", "signal_rejected"]
    (loss,) = hooks.events("/loss")
    assert loss["type"] == "daily_loss_hit" and "daily loss limit" in loss["text"]


def test_another_users_events_never_reach_you(
        client: httpx.Client, container: Container, alice: Caller, bob: Caller,
        hooks: WebhookReceiver, senders: dict[str, Any]) -> None:
    everything = ["signal_rejected", "order_filled", "stop_hit", "daily_loss_hit",
                  "reconciliation_difference"]
    webhook(client, bob, hooks, "/bob", everything)
    second = accounts.create_account(alice.user_id, "second", broker="paper",
                                     cash=Decimal(50_000), deps=container.deps)
    webhook(client, alice, hooks, "/alice-second", ["order_filled"], accountIds=[second.id])
    r = client.post(SUBS, headers=jwt(client, alice), json={
        "channel": "webhook", "target": hooks.url + "/x", "events": ["order_filled"],
        "accountIds": [bob.account_id]})
    assert r.status_code == 404 and r.json()["code"] == "ACCOUNT_NOT_FOUND"
    fill(client, alice)
    reject(client, alice)
    difference(container, alice)
    fill(client, alice, account_id=second.id, symbol="MSFT")
    collect(container.deps)
    dispatch(container.deps, senders)
    assert hooks.events("/bob") == []
    assert deliveries(container, bob) == []
    assert client.get(DELIVERIES, headers=bob.headers).json()["deliveries"] == []
    (only,) = hooks.events("/alice-second")
    assert only["accountId"] == second.id and only["symbol"] == "MSFT"


# ---- e-mail and Telegram -------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, _class=EmailMessage, policy=policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 OK"


SMTP_USER, SMTP_PASSWORD = "tradewire", "smtp-pw-do-not-leak-4242"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False, ready_timeout=10)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def test_mail_arrives_over_smtp_with_the_text(
        client: httpx.Client, container: Container, alice: Caller,
        smtp_server: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="mail.log")  # the test server's own chatter
    box, port = smtp_server
    made = subscribe(client, jwt(client, alice), "email", "alice@example.com",
                     ["order_filled", "signal_rejected"])
    assert "secret" not in made
    senders = build_senders(NotificationSettings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_user=SMTP_USER, smtp_password=SMTP_PASSWORD,
        smtp_from="alerts@tradewire.test", smtp_starttls=False))
    fill(client, alice)
    reject(client, alice)
    assert collect(container.deps) == 2
    assert dispatch(container.deps, senders) == 2
    assert len(box.messages) == 2
    for mail_from, rcpts, _ in box.messages:
        assert (mail_from, rcpts) == ("alerts@tradewire.test", ["alice@example.com"])
    mails = {str(m[2]["Subject"]): m[2] for m in box.messages}
    assert sorted(mails) == ["[tradewire] Order filled: AAPL", "[tradewire] Signal rejected: NOPE"]
    filled = mails["[tradewire] Order filled: AAPL"].get_content()
    assert filled.startswith("Order filled: buy 10 AAPL at 190 on account 'paper'")
    rejected = mails["[tradewire] Signal rejected: NOPE"].get_content()
    assert "closeLong NOPE on account 'paper' was rejected: no long position in NOPE" in rejected
    assert all(d.status is DeliveryStatus.DELIVERED for d in deliveries(container, alice))
    # A wrong password is a failure naming the SMTP code, never the password.
    wrong = SmtpSender("127.0.0.1", port, user=SMTP_USER, password="not-it-9", starttls=False)
    with pytest.raises(SendFailed) as err:
        wrong.send("alice@example.com", Outgoing("d", "order_filled", "s", "t", "{}",  # type: ignore[arg-type]
                                                 container.deps.clock.now()))
    assert "SMTP 535" in err.value.reason and "not-it-9" not in err.value.reason
    assert SMTP_PASSWORD not in caplog.text and SMTP_PASSWORD not in repr(senders)


TOKEN = "123456:tg-token-do-not-leak-ABCDEF"


class FakeTelegram(Receiver):
    def __init__(self) -> None:
        super().__init__(self._answer)
        self.messages: list[dict[str, Any]] = []

    def _answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.path != f"/bot{TOKEN}/sendMessage":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        message = json.loads(request.body)
        self.messages.append(message)
        return 200, {"ok": True, "result": {"message_id": len(self.messages),
                                            "chat": {"id": message["chat_id"]},
                                            "text": message["text"]}}


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    fake.start()
    yield fake
    fake.stop()


def test_a_telegram_message_arrives(
        client: httpx.Client, container: Container, alice: Caller, telegram: FakeTelegram,
        caplog: pytest.LogCaptureFixture, clock: ManualClock) -> None:
    caplog.set_level(logging.DEBUG)
    subscribe(client, jwt(client, alice), "telegram", "-1001234567890", ["order_filled"])
    senders = build_senders(NotificationSettings(telegram_bot_token=TOKEN,
                                                 telegram_base_url=telegram.url))
    fill(client, alice)
    assert collect(container.deps) == 1
    assert dispatch(container.deps, senders) == 1
    (message,) = telegram.messages
    assert message["chat_id"] == "-1001234567890"
    assert message["text"].startswith("Order filled: buy 10 AAPL at 190")
    # A bot token the API refuses: retried, the refusal recorded, the token nowhere.
    subscribe(client, jwt(client, alice), "telegram", "@ops_channel", ["signal_rejected"])
    wrong = {"telegram": TelegramSender("999:wrong-token-do-not-leak", base_url=telegram.url)}
    reject(client, alice)
    collect(container.deps)
    assert dispatch(container.deps, wrong) == 1
    failed = next(d for d in deliveries(container, alice) if d.status is DeliveryStatus.PENDING)
    assert failed.last_error == "Telegram refused it (HTTP 401: Unauthorized)"
    assert len(telegram.messages) == 1
    assert "/bot[REDACTED]/sendMessage" in caplog.text  # httpx logs each request, masked
    for token in (TOKEN, "wrong-token-do-not-leak"):
        assert token not in caplog.text and token not in repr(senders) + repr(wrong)


# ---- secrets, bad input, ownership ---------------------------------------------------------


def test_the_webhook_secret_is_shown_once_sealed_at_rest_and_never_logged(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    made = webhook(client, alice, hooks, "/hook", ["order_filled"])
    secret = made["secret"]
    fill(client, alice)
    collect(container.deps)
    dispatch(container.deps, senders)
    hooks.down = True
    fill(client, alice, symbol="MSFT")
    collect(container.deps)
    dispatch(container.deps, senders)  # a failure: logged, with no secret
    assert "failed: the receiver answered HTTP 503" in caplog.text
    headers = jwt(client, alice)
    for path in (SUBS, DELIVERIES):
        for auth in (headers, alice.headers):
            r = client.get(path, headers=auth)
            assert r.status_code == 200, r.text
            assert secret not in r.text
    listed = client.get(SUBS, headers=alice.headers).json()["subscriptions"]
    assert [s["id"] for s in listed] == [made["subscription"]["id"]] and "secret" not in listed[0]
    with container.db.engine.connect() as conn:
        stored = json.dumps([[str(v) for v in row] for table in
                             ("notification_subscription", "notification_delivery", "audit_event")
                             for row in conn.execute(text(f"SELECT * FROM {table}")).all()])
    assert secret not in stored
    assert secret not in caplog.text and secret[6:] not in caplog.text


def test_bad_input_is_refused_with_400_and_changes_nothing(
        client: httpx.Client, container: Container, alice: Caller) -> None:
    headers = jwt(client, alice)
    cases: list[tuple[Any, str]] = [
        ({"channel": "pigeon", "target": "x", "events": ["order_filled"]}, "channel"),
        ({"channel": "webhook", "target": "javascript:alert(1)", "events": ["order_filled"]},
         "target"),
        ({"channel": "email", "target": "nobody", "events": ["order_filled"]}, "target"),
        ({"channel": "telegram", "target": "x y", "events": ["order_filled"]}, "target"),
        ({"channel": "webhook", "target": "https://example.com", "events": []}, "events"),
        ({"channel": "webhook", "target": "https://example.com", "events": ["all"]}, "events"),
        ({"channel": "webhook", "target": "https://example.com", "events": ["order_filled"],
          "accountIds": "mine"}, "accountIds"),
        ({"channel": "webhook", "target": "https://example.com", "events": ["order_filled"],
          "secret": "mine"}, "secret"),
    ]
    for body, path in cases:
        r = client.post(SUBS, headers=headers, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == "VALIDATION_ERROR" and r.json()["details"][0]["path"] == [path]
    for raw in (b"", b"{", b"[1, 2]", b'"text"'):
        r = client.post(SUBS, headers={**headers, "Content-Type": "application/json"},
                        content=raw)
        assert r.status_code == 400 and r.json()["success"] is False, raw
    r = client.get(DELIVERIES, headers=alice.headers, params={"status": "lost", "limit": 0})
    assert r.status_code == 400
    assert client.get(SUBS, headers=alice.headers).json()["subscriptions"] == []
    # Making or removing one takes a signed-in user: an API key is not enough.
    r = client.post(SUBS, headers=alice.headers, json={
        "channel": "webhook", "target": "https://example.com", "events": ["order_filled"]})
    assert r.status_code == 401
    assert client.get(SUBS).status_code == 401


def test_another_users_subscription_is_not_found_and_yours_can_be_removed(
        client: httpx.Client, container: Container, alice: Caller, bob: Caller,
        hooks: WebhookReceiver, senders: dict[str, Any]) -> None:
    made = webhook(client, alice, hooks, "/hook", ["order_filled"])
    sub_id = made["subscription"]["id"]
    assert client.get(SUBS, headers=bob.headers).json()["subscriptions"] == []
    r = client.delete(f"{SUBS}/{sub_id}", headers=jwt(client, bob))
    assert r.status_code == 404 and r.json()["code"] == "SUBSCRIPTION_NOT_FOUND"
    fill(client, alice)
    collect(container.deps)  # made, not yet sent
    r = client.delete(f"{SUBS}/{sub_id}", headers=jwt(client, alice))
    assert r.status_code == 200 and r.json()["deleted"] == sub_id
    assert client.delete(f"{SUBS}/{sub_id}", headers=jwt(client, alice)).status_code == 404
    assert dispatch(container.deps, senders) == 0
    (d,) = deliveries(container, alice)
    assert d.status is DeliveryStatus.CANCELLED
    fill(client, alice, symbol="MSFT")
    assert collect(container.deps) == 0  # a removed subscription hears nothing more
    assert hooks.requests == []
    assert client.get(SUBS, headers=alice.headers).json()["subscriptions"] == []


def test_a_webhook_to_this_host_is_refused_unless_allowed(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver
        ) -> None:
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice)
    collect(container.deps)
    assert dispatch(container.deps, build_senders(NotificationSettings())) == 1
    (d,) = deliveries(container, alice)
    assert d.status is DeliveryStatus.PENDING
    assert d.last_error == "the receiver's address is internal; not allowed on this server"
    assert hooks.requests == []


def test_with_nobody_subscribed_the_cursor_steps_over_events_without_reading_them(
        client: httpx.Client, container: Container, alice: Caller, hooks: WebhookReceiver,
        senders: dict[str, Any]) -> None:
    # Every pass of a busy service's notifier read its 500 next events whole, to tell no one.
    fill(client, alice)
    fill(client, alice, symbol="MSFT")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(container.db.engine, "before_cursor_execute", seen)
    try:
        assert collect(container.deps) == 0
    finally:
        event.remove(container.db.engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "audit_event.data" in s], statements
    with container.db.engine.connect() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one()
        cursor = conn.execute(text("SELECT seq FROM notification_cursor")).scalar_one()
    assert cursor == last > 0
    # A subscription hears what happens from its creation on.
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice)
    assert collect(container.deps) == 1
    assert dispatch(container.deps, senders) == 1
    assert [e["symbol"] for e in hooks.events()] == ["AAPL"]


def test_with_nobody_subscribed_the_worker_moves_the_cursor_now_and_then_not_every_pass(
        client: httpx.Client, container: Container, alice: Caller,
        hooks: WebhookReceiver, clock: ManualClock) -> None:
    # Its write transaction every half second held a busy service's write turn (item 40).
    from tradewire.entrypoints.worker import Worker

    def cursor_and_newest() -> tuple[int, int]:
        with container.db.engine.connect() as conn:
            return (conn.execute(text("SELECT seq FROM notification_cursor")).scalar_one(),
                    conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one())

    worker = Worker(container)
    worker._senders = {"webhook": WebhookSender(timeout=5, allow_private=True)}
    fill(client, alice)
    worker.notify_once()  # the first pass moves it
    moved, newest = cursor_and_newest()
    assert moved == newest
    fill(client, alice, symbol="MSFT")
    writes: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    event.listen(container.db.engine, "before_cursor_execute", seen)
    try:
        assert worker.notify_once() == 0
    finally:
        event.remove(container.db.engine, "before_cursor_execute", seen)
    assert not [w for w in writes if "notification_cursor" in w], writes
    cursor, newest = cursor_and_newest()
    assert cursor == moved < newest  # not moved for nobody
    # Someone subscribes: the next pass reads on from the cursor, and they hear only what
    # happened after they subscribed.
    clock.advance(timedelta(seconds=1))
    webhook(client, alice, hooks, "/hook", ["order_filled"])
    fill(client, alice, symbol="NVDA")
    assert worker.notify_once() == 2  # one delivery made, one sent
    assert [e["symbol"] for e in hooks.events()] == ["NVDA"]
    assert cursor_and_newest()[0] > moved
