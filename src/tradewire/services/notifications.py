"""Use cases of notifications: a user's subscriptions, the audit log read as an outbox into
deliveries, and the deliveries sent.

`collect` reads the audit events after the stored cursor and makes one delivery per event and
subscription that hears it, in one transaction with the cursor's advance: a delivery is made
exactly once. `dispatch` sends due deliveries outside any transaction, one claimed at a time
under a lease; a failure is tried again after a growing wait, a bounded number of times. A
delivery recorded as delivered is never sent again. (A crash between a receiver taking a
message and the record of it sends it again once the lease lapses: receivers dedupe on the
delivery id, which is the same on every attempt.)

Only the events of a subscriber's own accounts reach the subscriber. The webhook signing
secret is sealed at rest and shown once, when the subscription is made; secrets never reach a
log line, an error or a listing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tradewire.domain.accounts import Account, Principal
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    EventKind,
    InvalidSubscription,
    NotificationSubscription,
    advance_cursor,
    check_subscription,
    kinds_of,
    next_attempt,
    once_key,
    render,
)
from tradewire.domain.values import new_id
from tradewire.services.deps import Deps
from tradewire.services.ports import Page, UnitOfWork

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 50  # per user
SECRET_PREFIX = "whsec_"
COLLECT_BATCH = 500
IDLE_STEP_FACTOR = 20  # with nobody subscribed, the cursor steps over this many batches' seqs
# A send holds its delivery this long (several timeouts of a slow server fit in it); a sender
# that died lets it go after that, and another sends it.
SEND_LEASE = timedelta(minutes=2)


# ---- the senders' port -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One attempt at one delivery, as a sender gets it."""

    delivery_id: str
    kind: EventKind
    subject: str
    text: str
    body: str  # the webhook body (JSON)
    sent_at: datetime  # the webhook's signed timestamp
    secret: str | None = None  # the webhook signing secret, opened for this attempt only

    def __repr__(self) -> str:
        return f"Outgoing({self.delivery_id}, {self.kind})"


class SendFailed(Exception):
    """The receiver did not take the message. `reason` is safe to store and show: no target
    credentials, no secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    """One channel. `send` returns once the receiver has taken the message, or raises
    SendFailed."""

    def send(self, target: str, message: Outgoing) -> None: ...


# ---- subscriptions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    subscription: NotificationSubscription
    secret: str | None  # the webhook signing secret: shown this once, never again


def subscribe(principal: Principal, body: Mapping[str, Any], deps: Deps) -> Created:
    """A new subscription of the caller's: `channel`, `target`, `events`, and optionally
    `accountIds` (some of the caller's own accounts; absent: all of them)."""
    unknown = sorted(set(body) - {"channel", "target", "events", "accountIds"})
    if unknown:
        raise InvalidSubscription(f"unknown field {unknown[0][:40]!r}", unknown[0][:40])
    channel, target, events = check_subscription(body.get("channel"), body.get("target"),
                                                 body.get("events"))
    raw_ids = body.get("accountIds")
    if raw_ids is not None and (not isinstance(raw_ids, list) or not raw_ids
                                or not all(isinstance(a, str) and 0 < len(a) <= 64
                                           for a in raw_ids)):
        raise InvalidSubscription("accountIds must be a non-empty list of account ids",
                                  "accountIds")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32) if channel is Channel.WEBHOOK else None
    if secret is not None and deps.sealer is None:
        raise Rejected("no credential keys configured to seal the webhook secret",
                       code="NOTIFICATIONS_UNAVAILABLE")
    now = deps.clock.now()
    with deps.uow() as uow:
        account_ids = None
        if raw_ids is not None:
            for account_id in raw_ids:
                _own_account(uow, principal, account_id)
            account_ids = frozenset(raw_ids)
        repo = uow.notifications
        if repo.count_active(principal.user_id) >= MAX_SUBSCRIPTIONS:
            raise Rejected(f"at most {MAX_SUBSCRIPTIONS} notification subscriptions per user",
                           code="TOO_MANY_SUBSCRIPTIONS")
        sub = NotificationSubscription(id=new_id(), user_id=principal.user_id, channel=channel,
                                       target=target, events=events, account_ids=account_ids,
                                       created_at=now)
        sealed = deps.sealer.seal({"secret": secret}) if secret is not None and deps.sealer else None
        repo.add_subscription(sub, sealed)
        uow.audit.add(AuditEvent(entity="notification", entity_id=sub.id,
                                 event="NotificationSubscribed", at=now,
                                 data={"user_id": principal.user_id, "channel": str(channel),
                                       "events": sorted(str(e) for e in events)}))
        uow.commit()
    return Created(sub, secret)


def unsubscribe(principal: Principal, subscription_id: str, deps: Deps) -> None:
    """Remove one of the caller's subscriptions; its deliveries not yet sent are cancelled.
    Another user's answers as a missing one."""
    now = deps.clock.now()
    with deps.uow() as uow:
        repo = uow.notifications
        sub = repo.subscription(subscription_id)
        if sub is None or sub.user_id != principal.user_id or sub.deleted_at is not None:
            raise NotFound(f"subscription {subscription_id} not found",
                           code="SUBSCRIPTION_NOT_FOUND")
        repo.delete_subscription(sub.id, now)
        cancelled = repo.cancel_pending(sub.id, now)
        uow.audit.add(AuditEvent(entity="notification", entity_id=sub.id,
                                 event="NotificationUnsubscribed", at=now,
                                 data={"user_id": principal.user_id, "cancelled": cancelled}))
        uow.commit()


def list_subscriptions(principal: Principal, deps: Deps) -> list[NotificationSubscription]:
    with deps.uow(write=False) as uow:
        return list(uow.notifications.subscriptions_of(principal.user_id))


def list_deliveries(principal: Principal, deps: Deps, page: Page,
                    status: DeliveryStatus | None = None) -> list[Delivery]:
    """The caller's deliveries, newest first (a key narrowed to some accounts sees theirs)."""
    with deps.uow(write=False) as uow:
        ids = sorted(principal.account_ids) if principal.account_ids is not None else None
        return list(uow.notifications.deliveries(principal.user_id, ids, page,
                                          str(status) if status else None))


def _own_account(uow: UnitOfWork, principal: Principal, account_id: str) -> Account:
    """One of the caller's own accounts (an admin too hears only their own)."""
    account = uow.accounts.get(account_id)
    if (account is None or account.user_id != principal.user_id
            or (principal.account_ids is not None and account_id not in principal.account_ids)):
        raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return account


# ---- the outbox: audit events into deliveries ----------------------------------------------


def collect(deps: Deps, *, limit: int = COLLECT_BATCH, idle_step: bool = True) -> int:
    """Read the audit events after the cursor into deliveries, and move the cursor, in one
    transaction. Returns how many deliveries were made. With `idle_step` false, a cursor
    nobody is subscribed behind stays where it is (no write transaction; the worker moves it
    now and then: `Worker.notify_once`)."""
    with deps.uow(write=False) as uow:
        if not uow.notifications.behind():
            return 0  # nothing new: no write transaction
        if not idle_step and not uow.notifications.anyone_subscribed():
            return 0
    now = deps.clock.now()
    with deps.uow() as uow:
        repo = uow.notifications
        cursor, stuck_since = repo.lock_cursor()
        subscribed = repo.anyone_subscribed()  # seen inside the write: none can come meanwhile
        if subscribed:
            events: list[tuple[int, AuditEvent]] = repo.events_after(cursor, limit)
            seqs = [seq for seq, _ in events]
            wanted = [(seq, e, kinds_of(e)) for seq, e in events]
            wanted = [w for w in wanted if w[2]]
            made = _fan_out(uow, repo, wanted, now, deps) if wanted else 0
        else:
            # Nobody to tell: the cursor steps over the events without reading them (500 whole
            # events each pass were about 6 ms of a busy API process's time, in one piece),
            # further than a pass reads, as the worker steps it only now and then. A
            # subscription hears what happens from its creation on.
            seqs, made = repo.seqs_after(cursor, limit * IDLE_STEP_FACTOR), 0
        if not seqs:
            return 0
        new_cursor, new_stuck = advance_cursor(cursor, seqs, stuck_since, now)
        if (new_cursor, new_stuck) != (cursor, stuck_since):
            repo.save_cursor(new_cursor, new_stuck)
        uow.commit()
    if made:
        deps.wake()
    return made


Wanted = tuple[int, AuditEvent, tuple[EventKind, ...]]  # seq, event, the kinds it is


def _fan_out(uow: UnitOfWork, repo: Any, wanted: Sequence[Wanted], now: datetime,
             deps: Deps) -> int:
    subs: dict[str, list[NotificationSubscription]] = {}
    for sub in repo.active_subscriptions():
        subs.setdefault(sub.user_id, []).append(sub)
    if not subs:
        return 0
    handled = repo.handled([e.id for _, e, _ in wanted])
    accounts: dict[str, Account | None] = {}
    made = 0
    for seq, event, kinds in wanted:
        account_id = event.account_id
        assert account_id is not None  # kinds_of hears only account events
        if account_id not in accounts:
            accounts[account_id] = uow.accounts.get(account_id)
        account = accounts[account_id]
        if account is None:
            continue
        hearing = [s for s in subs.get(account.user_id, ())  # the owner's, nobody else's
                   if s.hears(account.id, kinds, event.at) and (s.id, event.id) not in handled]
        if not hearing:
            continue
        context = _context(uow, event, account)
        session = _session(account, event.at, deps) if EventKind.DAILY_LOSS_HIT in kinds else None
        for sub in hearing:
            for kind in kinds:
                if kind not in sub.events:
                    continue
                delivery_id = new_id()
                notice = render(kind, event, context, delivery_id)
                delivery = Delivery(
                    id=delivery_id, subscription_id=sub.id, user_id=sub.user_id,
                    account_id=account.id, event_id=event.id, event_seq=seq, kind=kind,
                    channel=sub.channel, status=DeliveryStatus.PENDING, attempts=0, next_at=now,
                    subject=notice.subject, text=notice.text, body=notice.body(),
                    created_at=now, updated_at=now)
                if repo.add_delivery(delivery, once_key(kind, event, session)):
                    made += 1
                    break  # one delivery per event and subscription, as its first kind
            handled.add((sub.id, event.id))
    return made


def _context(uow: UnitOfWork, event: AuditEvent, account: Account) -> dict[str, Any]:
    """What the words need that the event does not carry."""
    ctx: dict[str, Any] = {"account_name": account.name}
    if event.entity == "order":
        order = uow.orders.get(event.entity_id)
        if order is not None:
            ctx.update(symbol=order.symbol, side=str(order.side), qty=format(order.qty, "f"),
                       order_type=str(order.order_type))
    elif event.signal_id is not None:
        signal = uow.signals.get(event.signal_id)
        if signal is not None:
            ctx.update(symbol=signal.symbol, action=str(signal.action))
    elif event.data.get("kind") == "position":  # a reconciliation difference in a symbol
        ctx["symbol"] = event.data.get("key")
    return ctx


def _session(account: Account, at: datetime, deps: Deps) -> str | None:
    """The trading session an event falls in (as the daily loss limit counts it)."""
    try:
        session = deps.calendar.session_at_or_after(account.market, at)
        return session.open_at.astimezone(deps.calendar.timezone(account.market)).date().isoformat()
    except Exception:  # an unknown market: the calendar day, in UTC
        return at.date().isoformat()


# ---- sending -----------------------------------------------------------------------------


def dispatch(deps: Deps, senders: Mapping[str, Sender], *, limit: int = 50,
             max_seconds: float | None = None) -> int:
    """Send the due deliveries, each claimed under a lease first and its outcome recorded
    after; returns how many attempts were made. With `max_seconds`, no new send starts once
    that much time went by (slow receivers do not hold up the caller's loop for long)."""
    now = deps.clock.now()
    with deps.uow(write=False) as uow:
        due = uow.notifications.due(now, limit)
    started = time.monotonic()
    attempts = 0
    for delivery_id in due:
        if max_seconds is not None and time.monotonic() - started >= max_seconds:
            break
        claimed = _claim(delivery_id, deps)
        if claimed is None:
            continue
        delivery, sub, sealed = claimed
        attempts += 1
        error = _send(delivery, sub, sealed, senders, deps)
        _record(delivery, error, deps)
    return attempts


def _claim(delivery_id: str, deps: Deps
           ) -> tuple[Delivery, NotificationSubscription, str | None] | None:
    now = deps.clock.now()
    with deps.uow() as uow:
        repo = uow.notifications
        delivery = repo.claim(delivery_id, deps.worker_id, now, now + max(deps.lease, SEND_LEASE))
        if delivery is None:
            return None
        sub = repo.subscription(delivery.subscription_id)
        if sub is None or sub.deleted_at is not None:
            repo.finish(delivery, deps.worker_id, DeliveryStatus.CANCELLED, now,
                        error="subscription removed")
            uow.commit()
            return None
        sealed = repo.sealed_secret(sub.id)
        uow.commit()
    return delivery, sub, sealed


def _send(delivery: Delivery, sub: NotificationSubscription, sealed: str | None,
          senders: Mapping[str, Sender], deps: Deps) -> str | None:
    """One attempt, outside any transaction; the error to record, or None when delivered."""
    sender = senders.get(str(sub.channel))
    if sender is None:
        return f"{sub.channel} notifications are not configured on this server"
    try:
        secret = None
        if sub.channel is Channel.WEBHOOK:
            if sealed is None or deps.sealer is None:
                return "the webhook signing secret is missing"
            secret = str(deps.sealer.open(sealed)["secret"])
        sender.send(sub.target, Outgoing(delivery.id, delivery.kind, delivery.subject,
                                         delivery.text, delivery.body, deps.clock.now(), secret))
    except SendFailed as failed:
        return failed.reason[:500]
    except Exception as exc:  # never its text: it may carry a URL with a token in it
        return f"sending failed ({type(exc).__name__})"
    return None


def _record(delivery: Delivery, error: str | None, deps: Deps) -> None:
    now = deps.clock.now()
    with deps.uow() as uow:
        repo = uow.notifications
        if error is None:
            status, retry_at = DeliveryStatus.DELIVERED, None
        else:
            retry_at = next_attempt(delivery.attempts, now)
            status = DeliveryStatus.PENDING if retry_at is not None else DeliveryStatus.FAILED
        recorded = repo.finish(delivery, deps.worker_id, status, now, next_at=retry_at,
                               error=error)
        uow.commit()
    if error is not None:
        log.warning("notification %s (%s, attempt %d) failed: %s; %s", delivery.id,
                    delivery.channel, delivery.attempts, error,
                    f"next attempt at {retry_at.isoformat()}" if retry_at else "giving up")
    if not recorded:
        log.warning("notification %s: the lease lapsed before its outcome was recorded",
                    delivery.id)
