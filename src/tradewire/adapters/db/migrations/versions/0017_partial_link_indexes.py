"""The indexes of mostly-empty link columns (a signal's `after_signal_id` and `parent_id`, an
order's `link_group`) hold only the rows where the column is set: every lookup is by
equality, which implies it, and each signal or order without one no longer writes an index
page in its commit (an order's record rewrites the index of every column it sets).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_INDEXES = (("signal", "after_signal_id"), ("signal", "parent_id"),
            ("trade_order", "link_group"))


def upgrade() -> None:
    for table, column in _INDEXES:
        name = f"ix_{table}_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column], sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for table, column in _INDEXES:
        name = f"ix_{table}_{column}"
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
