"""Checkouts found by day: the dashboard's figures and the checkouts page's day filter read
checkouts opened, settled or revoked in a day, which without these indexes scans the table.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("created_at", "settled_at", "revoked_at")


def upgrade() -> None:
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.create_index(batch_op.f(f"ix_checkouts_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_index(batch_op.f(f"ix_checkouts_{column}"))
