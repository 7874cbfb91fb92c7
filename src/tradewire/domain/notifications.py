"""Notifications: which audit events a user hears about, in what words, when a failed send is
tried again, and how a webhook is signed. Pure: no I/O, no clock of its own.

The audit log is the outbox: every state change writes its audit event in the change's own
transaction, so an event a notifier reads has happened, and every change has one.

Webhook signature (scheme v1): the sender puts the unix time in `X-Tradewire-Timestamp` and
`v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` in `X-Tradewire-Signature`. A receiver
recomputes it over the raw body, compares in constant time, and refuses a timestamp outside its
replay window (`verify` below does all three).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import Rejected

# ---- what can be heard -------------------------------------------------------------------


class EventKind(StrEnum):
    SIGNAL_REJECTED = "signal_rejected"
    ORDER_FILLED = "order_filled"
    STOP_HIT = "stop_hit"
    DAILY_LOSS_HIT = "daily_loss_hit"
    RECONCILIATION_DIFFERENCE = "reconciliation_difference"


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    TELEGRAM = "telegram"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_at)
    SENDING = "sending"  # claimed by a dispatcher under a lease
    DELIVERED = "delivered"  # the receiver took it: never sent again
    FAILED = "failed"  # every attempt failed; last_error says why
    CANCELLED = "cancelled"  # its subscription was removed before it went out


DAILY_LOSS_CODE = "RISK_DAILY_LOSS_LIMIT"
STOP_EXITS = frozenset({"stop_loss", "trailing_stop"})  # exit kinds that are a stop hit


def kinds_of(event: AuditEvent) -> tuple[EventKind, ...]:
    """The kinds an audit event is, most specific first; empty when nobody hears of it.

    A refusal for the daily loss limit is a rejected signal too: a subscription hears it as
    the first kind it chose."""
    if event.account_id is None:
        return ()
    if event.event == "SignalRejected":
        if event.data.get("code") == DAILY_LOSS_CODE:
            return (EventKind.DAILY_LOSS_HIT, EventKind.SIGNAL_REJECTED)
        return (EventKind.SIGNAL_REJECTED,)
    if event.event == "OrderFilled":
        return (EventKind.ORDER_FILLED,)
    if event.event == "OrderCreated" and event.data.get("exit") in STOP_EXITS:
        return (EventKind.STOP_HIT,)  # the exit engine placing a stop-loss or trailing exit
    if event.event == "NativeExitFilled" and event.data.get("exit") in STOP_EXITS:
        return (EventKind.STOP_HIT,)  # a stop resting at the broker filled
    if event.event == "ReconciliationDifference":
        return (EventKind.RECONCILIATION_DIFFERENCE,)
    return ()


def once_key(kind: EventKind, event: AuditEvent, session: str | None) -> str | None:
    """What a subscription hears at most once besides each event: the daily loss limit once a
    session per account (every later refusal that session is only a rejected signal)."""
    if kind is EventKind.DAILY_LOSS_HIT and session:
        return f"{kind}:{event.account_id}:{session}"
    return None


# ---- what is said ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    kind: EventKind
    subject: str  # the mail subject, the first line anywhere
    text: str  # plain text: the mail body, the Telegram message
    payload: dict[str, Any]  # the webhook body, as JSON

    def body(self) -> str:
        """The webhook body, byte for byte the same on every attempt."""
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":"), default=str)


_TITLES = {
    EventKind.SIGNAL_REJECTED: "Signal rejected",
    EventKind.ORDER_FILLED: "Order filled",
    EventKind.STOP_HIT: "Stop hit",
    EventKind.DAILY_LOSS_HIT: "Daily loss limit hit",
    EventKind.RECONCILIATION_DIFFERENCE: "Reconciliation difference",
}


def render(kind: EventKind, event: AuditEvent, context: Mapping[str, Any],
           delivery_id: str) -> Notice:
    """The words for one event. `context` adds what the event itself does not carry: the
    account's name, and the symbol, side, quantity or action of its order or signal."""
    ctx = {k: v for k, v in context.items() if v is not None}
    account = f"account '{ctx['account_name']}'" if "account_name" in ctx else "your account"
    symbol = ctx.get("symbol", "")
    data = event.data
    if kind is EventKind.SIGNAL_REJECTED:
        what = " ".join(str(x) for x in (ctx.get("action"), symbol) if x) or "a signal"
        line = f"{what} on {account} was rejected: {data.get('reason') or data.get('code')}"
    elif kind is EventKind.DAILY_LOSS_HIT:
        line = (f"{account} reached its daily loss limit; new entries are refused until the next "
                f"session ({data.get('reason') or data.get('code')})")
    elif kind is EventKind.ORDER_FILLED:
        state = "filled" if event.to_status == "filled" else "partially filled"
        line = (f"{ctx.get('side', '')} {data.get('qty')} {symbol} at {data.get('price')} on "
                f"{account} (order {state})").strip()
    elif kind is EventKind.STOP_HIT:
        exit_kind = str(data.get("exit", "stop")).replace("_", " ")
        line = (f"{exit_kind} on {symbol} fired at {data.get('trigger')} on {account}: "
                f"{ctx.get('side', '')} {ctx.get('qty', '')} at market").replace("  ", " ")
    else:
        line = (f"{data.get('kind', 'difference')} {data.get('key', '')} on {account}: "
                f"tradewire has {_short(data.get('ours'))}, the broker has "
                f"{_short(data.get('theirs'))}")
    subject = f"[tradewire] {_TITLES[kind]}" + (f": {symbol}" if symbol else "")
    text = f"{_TITLES[kind]}: {line}\n\nEvent {event.event} at {_iso(event.at)}."
    payload = {
        "id": delivery_id, "type": str(kind), "event": event.event, "eventId": event.id,
        "at": _iso(event.at), "accountId": event.account_id,
        "accountName": ctx.get("account_name"), "signalId": event.signal_id,
        "entityId": event.entity_id, "symbol": symbol or None, "text": f"{_TITLES[kind]}: {line}",
        "data": _plain(data), "context": _plain({k: v for k, v in ctx.items()
                                                 if k != "account_name"}),
    }
    return Notice(kind, subject, text, payload)


def _short(value: Any) -> str:
    if not value:
        return "nothing"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
    return str(value)


def _plain(value: Any) -> Any:
    """JSON-ready: mappings and sequences kept, everything else as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---- retries -----------------------------------------------------------------------------

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 30 s, doubling, at most an hour."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def next_attempt(attempts: int, failed_at: datetime) -> datetime | None:
    """When to try again after a failure, or None once every attempt is used."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return failed_at + retry_delay(attempts)


# ---- reading the outbox ------------------------------------------------------------------

GAP_GRACE = timedelta(minutes=2)


def advance_cursor(cursor: int, seqs: Iterable[int], stuck_since: datetime | None,
                   now: datetime, grace: timedelta = GAP_GRACE) -> tuple[int, datetime | None]:
    """Move the outbox cursor over the events just read: up to the first missing seq.

    On PostgreSQL a seq is taken when a row is inserted, not when it commits, so a later seq
    can be visible before an earlier one; a rolled-back insert leaves a seq that never comes.
    The cursor waits at a gap for `grace` (the events after it are read again meanwhile, and
    their deliveries are not made twice), then steps over it. Returns the new cursor and since
    when it has been waiting (None: no gap)."""
    moved = False
    for seq in sorted(set(seqs)):
        if seq <= cursor:
            continue
        if seq == cursor + 1:
            cursor, moved = seq, True
            continue
        if moved or stuck_since is None:
            return cursor, now  # a new gap: start waiting for it
        if now - stuck_since < grace:
            return cursor, stuck_since
        cursor, moved = seq, True  # waited long enough: the missing ones are not coming
    return cursor, None


# ---- subscriptions -----------------------------------------------------------------------


class InvalidSubscription(Rejected):
    """A subscription that cannot be stored; `path` names the field."""

    code = "INVALID_SUBSCRIPTION"

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, slots=True)
class NotificationSubscription:
    id: str
    user_id: str
    channel: Channel
    target: str  # a URL, a mail address or a Telegram chat id
    events: frozenset[EventKind]
    account_ids: frozenset[str] | None  # None: every account of the user
    created_at: datetime
    deleted_at: datetime | None = None

    def hears(self, account_id: str, kinds: Sequence[EventKind], at: datetime) -> bool:
        """Whether an event of these kinds on this account (one of the user's) reaches it."""
        if self.deleted_at is not None or at < self.created_at:
            return False
        if self.account_ids is not None and account_id not in self.account_ids:
            return False
        return any(k in self.events for k in kinds)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    subscription_id: str
    user_id: str
    account_id: str | None
    event_id: str
    event_seq: int
    kind: EventKind
    channel: Channel
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    subject: str
    text: str
    body: str
    created_at: datetime
    updated_at: datetime
    last_error: str | None = None
    delivered_at: datetime | None = None


MAX_TARGET = 500
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_CHAT = re.compile(r"^(?:-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")


def check_subscription(channel: Any, target: Any, events: Any
                       ) -> tuple[Channel, str, frozenset[EventKind]]:
    """The channel, target and events of a new subscription, or InvalidSubscription."""
    if not isinstance(channel, str) or channel not in {c.value for c in Channel}:
        raise InvalidSubscription("channel must be one of webhook, email, telegram", "channel")
    kind = Channel(channel)
    if not isinstance(target, str) or not target.strip():
        raise InvalidSubscription("target is required", "target")
    target = target.strip()
    if len(target) > MAX_TARGET or any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        raise InvalidSubscription(f"target must be at most {MAX_TARGET} characters with no "
                                  "spaces or control characters", "target")
    if kind is Channel.WEBHOOK:
        _check_url(target)
    elif kind is Channel.EMAIL and not _EMAIL.match(target):
        raise InvalidSubscription("target must be an e-mail address", "target")
    elif kind is Channel.TELEGRAM and not _CHAT.match(target):
        raise InvalidSubscription("target must be a Telegram chat id (a number) or @channel",
                                  "target")
    if not isinstance(events, list) or not events:
        raise InvalidSubscription("events must be a non-empty list of: "
                                  + ", ".join(k.value for k in EventKind), "events")
    known = {k.value for k in EventKind}
    for e in events:
        if not isinstance(e, str) or e not in known:
            raise InvalidSubscription(f"unknown event {str(e)[:40]!r}; events are: "
                                      + ", ".join(sorted(known)), "events")
    return kind, target, frozenset(EventKind(e) for e in events)


def _check_url(target: str) -> None:
    try:
        parts = urlsplit(target)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise InvalidSubscription("target must be an http(s) URL", "target") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSubscription("target must be an http(s) URL", "target")
    if parts.username is not None or parts.password is not None:
        raise InvalidSubscription("target must not carry a user or password", "target")
    if port == 0:
        raise InvalidSubscription("target has an invalid port", "target")


# ---- webhook signatures ------------------------------------------------------------------

TIMESTAMP_HEADER = "X-Tradewire-Timestamp"
SIGNATURE_HEADER = "X-Tradewire-Signature"
DELIVERY_HEADER = "X-Tradewire-Delivery"  # the same on every attempt: receivers dedupe on it
EVENT_HEADER = "X-Tradewire-Event"
REPLAY_WINDOW_S = 300


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """`v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    mac = hmac.new(secret.encode(), str(int(timestamp)).encode() + b"." + _bytes(body),
                   hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes | str, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, timestamp: str | int | None, body: bytes | str,
           signature_header: str | None, now: datetime | float,
           window: int = REPLAY_WINDOW_S) -> bool:
    """A receiver's check: the signature matches the raw body and timestamp, and the timestamp
    is within `window` seconds of `now` (either way), so a captured request cannot be replayed
    later. The header may hold several comma-separated `v1=` values (during a secret change)."""
    if isinstance(timestamp, str):
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        timestamp = int(timestamp)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not signature_header:
        return False
    current = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(current - timestamp) > window:
        return False
    expected = signature(secret, timestamp, body).encode()
    matched = False
    for candidate in signature_header.split(","):
        # every candidate is compared (no early exit), each in constant time
        matched |= hmac.compare_digest(expected, candidate.strip().encode())
    return matched
