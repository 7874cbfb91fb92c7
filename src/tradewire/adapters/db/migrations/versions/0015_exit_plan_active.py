"""Armed exit plans found among the active ones: the resting-exit sweep (every few seconds)
and the trigger book's reloads read them, and finished plans pile up forever.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_exit_plan_active"), "exit_plan", ["active"])


def downgrade() -> None:
    op.drop_index(op.f("ix_exit_plan_active"), table_name="exit_plan")
