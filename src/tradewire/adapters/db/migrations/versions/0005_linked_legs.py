"""Multi-leg signals: their legs and link, the link on orders, OCO groups at the paper broker.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal") as b:
        b.add_column(sa.Column("legs", sa.JSON(), nullable=True))
        b.add_column(sa.Column("link", sa.String(length=10), nullable=True))
    with op.batch_alter_table("trade_order") as b:
        b.add_column(sa.Column("link_group", sa.String(length=36), nullable=True))
        b.add_column(sa.Column("link_kind", sa.String(length=10), nullable=True))
        b.create_index(b.f("ix_trade_order_link_group"), ["link_group"], unique=False)
    with op.batch_alter_table("paper_order") as b:
        b.add_column(sa.Column("oco_group", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("paper_order") as b:
        b.drop_column("oco_group")
    with op.batch_alter_table("trade_order") as b:
        b.drop_index(b.f("ix_trade_order_link_group"))
        b.drop_column("link_kind")
        b.drop_column("link_group")
    with op.batch_alter_table("signal") as b:
        b.drop_column("link")
        b.drop_column("legs")
