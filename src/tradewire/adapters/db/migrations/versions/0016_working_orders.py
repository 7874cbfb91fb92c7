"""The working orders of an account in a symbol, found by index: every immediate signal sizes
against them, and without this index the read scanned every order the account ever had (on
SQLite, which has no statistics to prefer the status index: 226 us per signal at 2,600
orders, and growing).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_trade_order_account_symbol_status"), "trade_order",
                    ["account_id", "symbol", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_trade_order_account_symbol_status"), table_name="trade_order")
