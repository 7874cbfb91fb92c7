"""The paper venue's working orders found by status: the worker looks on every pass for those
whose expiry or close auction is due, which scanned every order the venue ever took.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_paper_order_status"), "paper_order", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_paper_order_status"), table_name="paper_order")
