"""Market sessions and exit rules: exit_rule on signals, held orders, paper session fields.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import tradewire.adapters.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = tradewire.adapters.db.types.UTCDateTime(length=32)


def upgrade() -> None:
    with op.batch_alter_table("signal") as b:
        b.add_column(sa.Column("exit_rule", sa.JSON(), nullable=True))
    conn = op.get_bind()
    signal = sa.table("signal", sa.column("id", sa.String), sa.column("timed_exit", sa.JSON),
                      sa.column("exit_rule", sa.JSON))
    for row in conn.execute(sa.select(signal.c.id, signal.c.timed_exit)
                            .where(signal.c.timed_exit.isnot(None))):
        old = row.timed_exit if isinstance(row.timed_exit, dict) else json.loads(row.timed_exit)
        rule = {"trigger": "after_fill", "minutes": old["minutes"], "at_time": None,
                "zone": "UTC", "immediate": False, "order_type": old["order_type"],
                "limit_price": old["limit_price"], "time_in_force": "day"}
        conn.execute(signal.update().where(signal.c.id == row.id).values(exit_rule=rule))
    with op.batch_alter_table("signal") as b:
        b.drop_column("timed_exit")
    job = sa.table("job", sa.column("kind", sa.String))
    conn.execute(job.update().where(job.c.kind == "timed_exit").values(kind="exit"))
    with op.batch_alter_table("trade_order") as b:
        b.add_column(sa.Column("hold_until", _UTC, nullable=True))
        b.add_column(sa.Column("expires_at", _UTC, nullable=True))
    with op.batch_alter_table("paper_account") as b:
        b.add_column(sa.Column("market", sa.String(20), nullable=False, server_default="XNYS"))
    with op.batch_alter_table("paper_order") as b:
        b.add_column(sa.Column("extended_hours", sa.Boolean(), nullable=False,
                               server_default=sa.false()))
        b.add_column(sa.Column("active_from", _UTC, nullable=True))
        b.add_column(sa.Column("expires_at", _UTC, nullable=True))
        b.add_column(sa.Column("auction_at", _UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("paper_order") as b:
        for name in ("auction_at", "expires_at", "active_from", "extended_hours"):
            b.drop_column(name)
    with op.batch_alter_table("paper_account") as b:
        b.drop_column("market")
    with op.batch_alter_table("trade_order") as b:
        b.drop_column("expires_at")
        b.drop_column("hold_until")
    with op.batch_alter_table("signal") as b:
        b.add_column(sa.Column("timed_exit", sa.JSON(), nullable=True))
        b.drop_column("exit_rule")
