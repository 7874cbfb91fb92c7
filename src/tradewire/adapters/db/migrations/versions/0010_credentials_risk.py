"""Broker credentials, encrypted with a key kept outside the database; audit events found by
entity and account (reconciliation differences are read that way); risk limits per account
and the realized P&L each account had when a session began.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)
_ID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "broker_credential",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_broker_credential_account_id_account")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_broker_credential")),
    )
    op.create_index("ix_audit_event_entity_account", "audit_event", ["entity", "account_id"])
    op.create_table(
        "account_risk",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_account_risk_account_id_account")),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_risk")),
    )
    op.create_table(
        "account_session_pnl",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("session", sa.String(length=10), nullable=False),
        sa.Column("realized_at_start", tradewire.adapters.db.types.ExactDecimal(length=64),
                  nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_account_session_pnl_account_id_account")),
        sa.PrimaryKeyConstraint("account_id", "session", name=op.f("pk_account_session_pnl")),
    )


def downgrade() -> None:
    op.drop_table("account_session_pnl")
    op.drop_table("account_risk")
    op.drop_index("ix_audit_event_entity_account", table_name="audit_event")
    op.drop_table("broker_credential")
