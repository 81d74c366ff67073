"""The console's figures: reconciliation runs kept, payments searchable by time.

Revision ID: 0011
Revises: 0010

`checkout_reconciliation_runs` keeps what each `sshub reconcile` found, so the dashboard can
raise differences; the indexes serve the payment search by day and the day's capture figures.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkout_reconciliation_runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ran_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("differing_units", sa.Integer(), nullable=False),
        sa.Column("unreachable_units", sa.Integer(), nullable=False),
        sa.Column("discrepancies", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_reconciliation_runs")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_created_at"), ["created_at"], unique=False)
    with op.batch_alter_table("payment_operations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_operations_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_operations_created_at"))
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_created_at"))
    op.drop_table("checkout_reconciliation_runs")
