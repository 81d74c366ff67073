"""Merge the domain branches (gateway, disbursements, card payments, console, QR, checkout).

Revision ID: 0010
Revises: 0005, 0007, 0008, 0009 (0004 and 0006 come in through depends_on)

Each domain's first migration was written on its own branch; from here on there is one head,
so `alembic upgrade head` and `heads` agree.
"""

from __future__ import annotations

revision = "0010"
down_revision = ("0005", "0007", "0008", "0009")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
