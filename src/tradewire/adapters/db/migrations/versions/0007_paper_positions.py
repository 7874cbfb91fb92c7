"""The paper broker keeps its positions as rows instead of summing every fill each time.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "paper_position",
        sa.Column("account_ref", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("qty", tradewire.adapters.db.types.ExactDecimal(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account_ref", "symbol", name=op.f("pk_paper_position")),
    )
    fills = sa.table("paper_fill", sa.column("account_ref", sa.String),
                     sa.column("symbol", sa.String), sa.column("side", sa.String),
                     sa.column("qty", tradewire.adapters.db.types.ExactDecimal(length=64)))
    held: dict[tuple[str, str], Decimal] = {}
    for ref, symbol, side, qty in op.get_bind().execute(sa.select(fills)):
        held[(ref, symbol)] = held.get((ref, symbol), Decimal(0)) + (qty if side == "buy" else -qty)
    if held:
        op.bulk_insert(table, [{"account_ref": ref, "symbol": symbol, "qty": qty}
                               for (ref, symbol), qty in held.items()])


def downgrade() -> None:
    op.drop_table("paper_position")
