"""Strategies: rules, execution config and state, an optional account for their orders.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)
_ID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "strategy",
        sa.Column("id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("asset", sa.String(length=20), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("execution_state", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_bar_ts", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"],
                                name=op.f("fk_strategy_account_id_account")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"],
                                name=op.f("fk_strategy_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy")),
    )
    op.create_index(op.f("ix_strategy_user_id"), "strategy", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_strategy_user_id"), table_name="strategy")
    op.drop_table("strategy")
