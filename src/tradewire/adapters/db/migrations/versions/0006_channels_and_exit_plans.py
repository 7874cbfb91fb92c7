"""Partner channels, subscriptions, partner signals and the exit plans of positions.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)
_DEC = tradewire.adapters.db.types.ExactDecimal(length=64)
_ID = sa.String(length=36)


def upgrade() -> None:
    with op.batch_alter_table("signal") as b:
        b.add_column(sa.Column("parent_id", _ID, nullable=True))
        b.create_index(b.f("ix_signal_parent_id"), ["parent_id"], unique=False)
    op.create_table(
        "channel",
        sa.Column("id", _ID, nullable=False),
        sa.Column("partner_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("api_key", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("require_stop_loss", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("max_signals_per_day", sa.Integer(), nullable=True),
        sa.Column("max_capital_at_risk", _DEC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"],
                                name=op.f("fk_channel_partner_id_partner")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel")),
        sa.UniqueConstraint("api_key", name=op.f("uq_channel_api_key")),
    )
    op.create_index(op.f("ix_channel_partner_id"), "channel", ["partner_id"])
    op.create_table(
        "subscription",
        sa.Column("channel_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("allocation", _DEC, nullable=False),
        sa.Column("allocation_type", sa.String(length=10), nullable=False),
        sa.Column("leverage_cap", sa.Integer(), nullable=False),
        sa.Column("auto_execute", sa.Boolean(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_subscription_account_id_account")),
        sa.ForeignKeyConstraint(["channel_id"], ["channel.id"],
                                name=op.f("fk_subscription_channel_id_channel")),
        sa.PrimaryKeyConstraint("channel_id", "account_id", name=op.f("pk_subscription")),
    )
    op.create_table(
        "partner_signal",
        sa.Column("id", _ID, nullable=False),
        sa.Column("channel_id", _ID, nullable=False),
        sa.Column("version", sa.String(length=4), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("exchange", sa.String(length=30), nullable=True),
        sa.Column("side", sa.String(length=5), nullable=False),
        sa.Column("entry_min", _DEC, nullable=False),
        sa.Column("entry_max", _DEC, nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("invest", _DEC, nullable=False),
        sa.Column("ttl_ms", sa.Integer(), nullable=True),
        sa.Column("leverage", sa.Integer(), nullable=False),
        sa.Column("margin_type", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channel.id"],
                                name=op.f("fk_partner_signal_channel_id_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_signal")),
    )
    op.create_index(op.f("ix_partner_signal_channel_id"), "partner_signal", ["channel_id"])
    op.create_table(
        "exit_plan",
        sa.Column("signal_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["signal_id"], ["signal.id"],
                                name=op.f("fk_exit_plan_signal_id_signal")),
        sa.PrimaryKeyConstraint("signal_id", name=op.f("pk_exit_plan")),
    )
    op.create_index(op.f("ix_exit_plan_symbol"), "exit_plan", ["symbol"])


def downgrade() -> None:
    op.drop_index(op.f("ix_exit_plan_symbol"), table_name="exit_plan")
    op.drop_table("exit_plan")
    op.drop_index(op.f("ix_partner_signal_channel_id"), table_name="partner_signal")
    op.drop_table("partner_signal")
    op.drop_table("subscription")
    op.drop_index(op.f("ix_channel_partner_id"), table_name="channel")
    op.drop_table("channel")
    with op.batch_alter_table("signal") as b:
        b.drop_index(b.f("ix_signal_parent_id"))
        b.drop_column("parent_id")
