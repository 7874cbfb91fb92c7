"""Native exits: the legs of an exit plan that rest at the broker, and which order is which leg.

Plans stored before this revision keep `native` empty: they stay emulated, as they were armed.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exit_plan") as b:
        b.add_column(sa.Column("native", sa.JSON(), nullable=True))
    with op.batch_alter_table("trade_order") as b:
        b.add_column(sa.Column("exit_leg", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trade_order") as b:
        b.drop_column("exit_leg")
    with op.batch_alter_table("exit_plan") as b:
        b.drop_column("native")
