"""The notifications repository: subscriptions, deliveries and the outbox cursor, over the
unit of work's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from tradewire.adapters.db import tables as t
from tradewire.adapters.db.notification_tables import (
    notification_cursor,
    notification_deliveries,
    notification_subscriptions,
)
from tradewire.adapters.db.repositories import _Repo, insert_ignore
from tradewire.domain.audit import AuditEvent
from tradewire.domain.notifications import (
    Channel,
    Delivery,
    DeliveryStatus,
    EventKind,
    NotificationSubscription,
)
from tradewire.services.ports import Page

CURSOR = "audit"
_subs = notification_subscriptions
_dels = notification_deliveries


def _subscription(row: Any) -> NotificationSubscription:
    m = row._mapping
    ids = m["account_ids"]
    return NotificationSubscription(
        id=m["id"], user_id=m["user_id"], channel=Channel(m["channel"]), target=m["target"],
        events=frozenset(EventKind(e) for e in m["events"]),
        account_ids=frozenset(ids) if ids is not None else None,
        created_at=m["created_at"], deleted_at=m["deleted_at"])


_DELIVERY_COLUMNS = [c for c in _dels.c if c.name not in ("lease_owner", "lease_until", "once_key")]


def _delivery(row: Any) -> Delivery:
    m = dict(row._mapping)
    return Delivery(**{**m, "kind": EventKind(m["kind"]), "channel": Channel(m["channel"]),
                       "status": DeliveryStatus(m["status"])})


class NotificationRepo(_Repo):
    # ---- subscriptions -----------------------------------------------------------------

    def add_subscription(self, sub: NotificationSubscription, secret_sealed: str | None) -> None:
        self.conn.execute(_subs.insert().values(
            id=sub.id, user_id=sub.user_id, channel=str(sub.channel), target=sub.target,
            events=sorted(str(e) for e in sub.events),
            account_ids=sorted(sub.account_ids) if sub.account_ids is not None else None,
            secret_sealed=secret_sealed, created_at=sub.created_at, deleted_at=None))

    def subscription(self, sub_id: str) -> NotificationSubscription | None:
        row = self.conn.execute(select(_subs).where(_subs.c.id == sub_id)).first()
        return _subscription(row) if row else None

    def subscriptions_of(self, user_id: str) -> list[NotificationSubscription]:
        q = (select(_subs).where(_subs.c.user_id == user_id, _subs.c.deleted_at.is_(None))
             .order_by(_subs.c.created_at, _subs.c.id))
        return [_subscription(r) for r in self.conn.execute(q)]

    def active_subscriptions(self) -> list[NotificationSubscription]:
        q = select(_subs).where(_subs.c.deleted_at.is_(None)).order_by(_subs.c.created_at)
        return [_subscription(r) for r in self.conn.execute(q)]

    def count_active(self, user_id: str) -> int:
        q = select(func.count()).select_from(_subs).where(_subs.c.user_id == user_id,
                                                          _subs.c.deleted_at.is_(None))
        return int(self.conn.execute(q).scalar_one())

    def sealed_secret(self, sub_id: str) -> str | None:
        q = select(_subs.c.secret_sealed).where(_subs.c.id == sub_id)
        return self.conn.execute(q).scalar_one_or_none()

    def delete_subscription(self, sub_id: str, at: datetime) -> bool:
        q = (update(_subs).where(_subs.c.id == sub_id, _subs.c.deleted_at.is_(None))
             .values(deleted_at=at))
        return self.conn.execute(q).rowcount == 1

    # ---- the outbox cursor --------------------------------------------------------------

    def lock_cursor(self) -> tuple[int, datetime | None]:
        """The cursor, locked until commit: one notifier reads the audit log at a time."""
        insert_ignore(self.conn, notification_cursor, {"name": CURSOR, "seq": 0})
        q = (select(notification_cursor.c.seq, notification_cursor.c.stuck_since)
             .where(notification_cursor.c.name == CURSOR).with_for_update())
        row = self.conn.execute(q).one()
        return int(row.seq), row.stuck_since

    def save_cursor(self, seq: int, stuck_since: datetime | None) -> None:
        self.conn.execute(update(notification_cursor)
                          .where(notification_cursor.c.name == CURSOR)
                          .values(seq=seq, stuck_since=stuck_since))

    def behind(self) -> bool:
        """Whether audit events exist past the cursor (a read, no lock)."""
        a, k = t.audit_events.c, notification_cursor.c
        cursor = select(func.coalesce(func.max(k.seq), 0)).where(k.name == CURSOR).scalar_subquery()
        q = select(a.seq).where(a.seq > cursor).limit(1)
        return self.conn.execute(q).first() is not None

    def anyone_subscribed(self) -> bool:
        """Whether any subscription is active."""
        q = select(_subs.c.id).where(_subs.c.deleted_at.is_(None)).limit(1)
        return self.conn.execute(q).first() is not None

    def seqs_after(self, seq: int, limit: int) -> list[int]:
        """The sequence numbers of the next `limit` audit events after `seq`, in order."""
        a = t.audit_events.c
        q = select(a.seq).where(a.seq > seq).order_by(a.seq).limit(limit)
        return [int(n) for n in self.conn.execute(q).scalars()]

    def events_after(self, seq: int, limit: int) -> list[tuple[int, AuditEvent]]:
        a = t.audit_events
        q = select(a).where(a.c.seq > seq).order_by(a.c.seq).limit(limit)
        out = []
        for r in self.conn.execute(q):
            m = dict(r._mapping)
            n = m.pop("seq")
            out.append((int(n), AuditEvent(**{**m, "data": m["data"] or {}})))
        return out

    # ---- deliveries ---------------------------------------------------------------------

    def handled(self, event_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(subscription id, event id) of the deliveries already made for these events."""
        if not event_ids:
            return set()
        q = select(_dels.c.subscription_id, _dels.c.event_id).where(
            _dels.c.event_id.in_(list(event_ids)))
        return {(r.subscription_id, r.event_id) for r in self.conn.execute(q)}

    def add_delivery(self, d: Delivery, once_key: str | None) -> bool:
        """Store a delivery unless the subscription has one for the event (or the once key)."""
        row = {c.name: getattr(d, c.name) for c in _DELIVERY_COLUMNS}
        row.update(kind=str(d.kind), channel=str(d.channel), status=str(d.status),
                   once_key=once_key, lease_owner=None, lease_until=None)
        return insert_ignore(self.conn, _dels, row)

    def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of deliveries to send now: pending and due, or sending under a lapsed lease."""
        c = _dels.c
        q = (select(c.id).where(or_(
                and_(c.status == str(DeliveryStatus.PENDING), c.next_at <= now),
                and_(c.status == str(DeliveryStatus.SENDING), c.lease_until < now)))
             .order_by(c.next_at, c.id).limit(limit))
        return list(self.conn.execute(q).scalars())

    def claim(self, delivery_id: str, owner: str, now: datetime,
              lease_until: datetime) -> Delivery | None:
        """Take the send lease of one delivery if it is still due; None when another took it
        or it is done."""
        c = _dels.c
        q = (update(_dels)
             .where(c.id == delivery_id, or_(
                 and_(c.status == str(DeliveryStatus.PENDING), c.next_at <= now),
                 and_(c.status == str(DeliveryStatus.SENDING), c.lease_until < now)))
             .values(status=str(DeliveryStatus.SENDING), lease_owner=owner,
                     lease_until=lease_until, attempts=c.attempts + 1, updated_at=now))
        if self.conn.execute(q).rowcount != 1:
            return None
        return self.delivery(delivery_id)

    def delivery(self, delivery_id: str) -> Delivery | None:
        row = self.conn.execute(select(*_DELIVERY_COLUMNS).where(_dels.c.id == delivery_id)).first()
        return _delivery(row) if row else None

    def finish(self, claimed: Delivery, owner: str, status: DeliveryStatus, now: datetime, *,
               next_at: datetime | None = None, error: str | None = None) -> bool:
        """Record the outcome of an attempt, only while this claim still holds the lease."""
        c = _dels.c
        values: dict[str, Any] = {"status": str(status), "lease_owner": None,
                                  "lease_until": None, "updated_at": now, "last_error": error}
        if status is DeliveryStatus.DELIVERED:
            values["delivered_at"] = now
        if next_at is not None:
            values["next_at"] = next_at
        q = (update(_dels)
             .where(c.id == claimed.id, c.status == str(DeliveryStatus.SENDING),
                    c.lease_owner == owner, c.attempts == claimed.attempts)
             .values(**values))
        return self.conn.execute(q).rowcount == 1

    def cancel_pending(self, sub_id: str, now: datetime) -> int:
        c = _dels.c
        q = (update(_dels).where(c.subscription_id == sub_id,
                                 c.status == str(DeliveryStatus.PENDING))
             .values(status=str(DeliveryStatus.CANCELLED), updated_at=now))
        return self.conn.execute(q).rowcount

    def deliveries(self, user_id: str, account_ids: Sequence[str] | None, page: Page,
                   status: str | None = None) -> list[Delivery]:
        c = _dels.c
        q = (select(*_DELIVERY_COLUMNS).where(c.user_id == user_id)
             .order_by(c.created_at.desc(), c.event_seq.desc(), c.id))
        if account_ids is not None:
            q = q.where(c.account_id.in_(list(account_ids)))
        if status is not None:
            q = q.where(c.status == status)
        return [_delivery(r) for r in self.conn.execute(q.limit(page.limit).offset(page.offset))]
