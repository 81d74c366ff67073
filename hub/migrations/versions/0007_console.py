"""Ops console: operators, their sessions, the sign-in throttle.

Revision ID: 0007
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None

ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "console_operators",
        sa.Column("id", ID64, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("last_login_at", hub.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_operators")),
        sa.UniqueConstraint("username", name=op.f("uq_console_operators_username")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", ID64, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["console_operators.id"],
            name=op.f("fk_console_sessions_operator_id_console_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sessions_operator_id"), ["operator_id"], unique=False
        )
    op.create_table(
        "console_login_throttle",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("locked_until", hub.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_console_login_throttle")),
    )


def downgrade() -> None:
    op.drop_table("console_login_throttle")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_operator_id"))
    op.drop_table("console_sessions")
    op.drop_table("console_operators")
