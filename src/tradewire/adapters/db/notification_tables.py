"""The notification tables, on the same metadata as every other table (tables.py imports this
module so that the schema in code is whole)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text

from tradewire.adapters.db.tables import ID, metadata
from tradewire.adapters.db.types import UTCDateTime

notification_subscriptions = Table(
    "notification_subscription", metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("app_user.id"), nullable=False, index=True),
    Column("channel", String(10), nullable=False),  # webhook, email or telegram
    Column("target", String(500), nullable=False),  # URL, mail address or chat id
    Column("events", JSON, nullable=False),  # the event kinds it hears
    Column("account_ids", JSON, nullable=True),  # None: every account of the user
    Column("secret_sealed", Text, nullable=True),  # webhook signing secret, sealed (Fernet)
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)

notification_deliveries = Table(
    "notification_delivery", metadata,
    Column("id", ID, primary_key=True),
    Column("subscription_id", ID, ForeignKey("notification_subscription.id",
                                             name="fk_notification_delivery_subscription"),
           nullable=False),
    Column("user_id", ID, nullable=False),
    Column("account_id", ID, nullable=True),
    Column("event_id", ID, nullable=False),  # the audit event it tells of
    Column("event_seq", Integer, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("channel", String(10), nullable=False),
    # Heard at most once per subscription besides the event (the daily loss limit per session).
    Column("once_key", String(120), nullable=True),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("subject", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("body", Text, nullable=False),  # the webhook body, the same bytes on every attempt
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("uq_notification_delivery_event", "subscription_id", "event_id", unique=True),
    Index("uq_notification_delivery_once", "subscription_id", "once_key", unique=True),
    Index("ix_notification_delivery_status_next", "status", "next_at"),
    Index("ix_notification_delivery_user_created", "user_id", "created_at"),
)

# How far the notifier has read the audit log (one row, "audit"); see domain advance_cursor.
notification_cursor = Table(
    "notification_cursor", metadata,
    Column("name", String(20), primary_key=True),
    Column("seq", Integer, nullable=False),  # every audit event up to here is handled
    Column("stuck_since", UTCDateTime, nullable=True),  # waiting at a gap since then
)
