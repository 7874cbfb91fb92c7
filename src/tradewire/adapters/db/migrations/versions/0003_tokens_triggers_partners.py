"""Access tokens, stored triggers with encoded tokens, partners and their grants, timings.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)
_ID = sa.String(length=36)


def upgrade() -> None:
    with op.batch_alter_table("account") as b:
        b.add_column(sa.Column("max_lag_s", sa.Integer(), nullable=True))
    op.create_table(
        "access_token",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_access_token_account_id_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_token_token_hash")),
    )
    op.create_index(op.f("ix_access_token_account_id"), "access_token", ["account_id"])
    op.create_table(
        "trigger",
        sa.Column("id", _ID, nullable=False),
        sa.Column("signal_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.Column("consumed_at", _UTC, nullable=True),
        sa.Column("consumed_by", sa.String(length=20), nullable=True),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_trigger_account_id_account")),
        sa.ForeignKeyConstraint(["signal_id"], ["signal.id"],
                                name=op.f("fk_trigger_signal_id_signal")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger")),
        sa.UniqueConstraint("signal_id", name=op.f("uq_trigger_signal_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_trigger_token_hash")),
    )
    op.create_table(
        "partner",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_partner_token_hash")),
    )
    op.create_table(
        "partner_grant",
        sa.Column("partner_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_partner_grant_account_id_account")),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"],
                                name=op.f("fk_partner_grant_partner_id_partner")),
        sa.PrimaryKeyConstraint("partner_id", "account_id", name=op.f("pk_partner_grant")),
    )
    op.create_table(
        "signal_timing",
        sa.Column("signal_id", _ID, nullable=False),
        sa.Column("alert_at", _UTC, nullable=True),
        sa.Column("received_at", _UTC, nullable=True),
        sa.Column("decided_at", _UTC, nullable=True),
        sa.Column("submitted_at", _UTC, nullable=True),
        sa.Column("acked_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["signal_id"], ["signal.id"],
                                name=op.f("fk_signal_timing_signal_id_signal")),
        sa.PrimaryKeyConstraint("signal_id", name=op.f("pk_signal_timing")),
    )


def downgrade() -> None:
    for table in ("signal_timing", "partner_grant", "partner", "trigger"):
        op.drop_table(table)
    op.drop_index(op.f("ix_access_token_account_id"), table_name="access_token")
    op.drop_table("access_token")
    with op.batch_alter_table("account") as b:
        b.drop_column("max_lag_s")
