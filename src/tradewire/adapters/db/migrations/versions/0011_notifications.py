"""Notifications: subscriptions per user (webhook, e-mail, Telegram), one delivery row per
event and subscription, and the notifier's cursor in the audit log (the outbox). The cursor
starts at the newest audit event: history from before the upgrade is not sent.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)
_ID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "notification_subscription",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("deleted_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"],
                                name=op.f("fk_notification_subscription_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_subscription")),
    )
    op.create_index(op.f("ix_notification_subscription_user_id"), "notification_subscription",
                    ["user_id"])
    op.create_table(
        "notification_delivery",
        sa.Column("id", _ID, nullable=False),
        sa.Column("subscription_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("once_key", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _UTC, nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _UTC, nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.Column("delivered_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["notification_subscription.id"],
                                name="fk_notification_delivery_subscription"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_delivery")),
    )
    op.create_index("uq_notification_delivery_event", "notification_delivery",
                    ["subscription_id", "event_id"], unique=True)
    op.create_index("uq_notification_delivery_once", "notification_delivery",
                    ["subscription_id", "once_key"], unique=True)
    op.create_index("ix_notification_delivery_status_next", "notification_delivery",
                    ["status", "next_at"])
    op.create_index("ix_notification_delivery_user_created", "notification_delivery",
                    ["user_id", "created_at"])
    op.create_table(
        "notification_cursor",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stuck_since", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_cursor")),
    )
    op.execute("INSERT INTO notification_cursor (name, seq) "
               "SELECT 'audit', COALESCE(MAX(seq), 0) FROM audit_event")


def downgrade() -> None:
    op.drop_table("notification_cursor")
    op.drop_index("ix_notification_delivery_user_created", table_name="notification_delivery")
    op.drop_index("ix_notification_delivery_status_next", table_name="notification_delivery")
    op.drop_index("uq_notification_delivery_once", table_name="notification_delivery")
    op.drop_index("uq_notification_delivery_event", table_name="notification_delivery")
    op.drop_table("notification_delivery")
    op.drop_index(op.f("ix_notification_subscription_user_id"),
                  table_name="notification_subscription")
    op.drop_table("notification_subscription")
