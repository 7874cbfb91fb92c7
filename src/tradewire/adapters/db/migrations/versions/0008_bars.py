"""Bars (OHLCV) per symbol and timeframe, for indicators and backtests.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bar",
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("timeframe", sa.String(length=4), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Float(precision=53), nullable=False)
          for name in ("open", "high", "low", "close", "volume")),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name=op.f("pk_bar")),
    )


def downgrade() -> None:
    op.drop_table("bar")
