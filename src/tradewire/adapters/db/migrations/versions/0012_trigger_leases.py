"""Scale-out: the trigger engine's symbol partitions, each leased to one worker at a time, and
exit plans found by when they changed (the workers follow the changes).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)


def upgrade() -> None:
    op.create_table(
        "trigger_lease",
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_trigger_lease")),
    )
    op.create_index(op.f("ix_exit_plan_updated_at"), "exit_plan", ["updated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_exit_plan_updated_at"), table_name="exit_plan")
    op.drop_table("trigger_lease")
