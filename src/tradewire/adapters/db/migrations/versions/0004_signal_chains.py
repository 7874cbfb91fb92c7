"""Signals that wait for another signal's fill (a reversal's entry after its exit).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal") as b:
        b.add_column(sa.Column("after_signal_id", sa.String(length=36), nullable=True))
        b.create_index(b.f("ix_signal_after_signal_id"), ["after_signal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal") as b:
        b.drop_index(b.f("ix_signal_after_signal_id"))
        b.drop_column("after_signal_id")
