"""Issuer: the card registry (encrypted PANs, keyed hashes, card accounts).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issuer_cards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("card_number", sa.String(length=20), nullable=False),
        sa.Column("card_id_code", sa.String(length=40), nullable=False),
        sa.Column("holder_name", sa.String(length=64), nullable=False),
        sa.Column("id_number_hash", sa.String(length=64), nullable=False),
        sa.Column("pan_encrypted", sa.String(length=128), nullable=False),
        sa.Column("pan_hash", sa.String(length=64), nullable=False),
        sa.Column("pan_masked", sa.String(length=19), nullable=False),
        sa.Column("psn", sa.String(length=2), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_issuer_cards_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_cards")),
        sa.UniqueConstraint("card_id_code", name=op.f("uq_issuer_cards_card_id_code")),
        sa.UniqueConstraint("card_number", name=op.f("uq_issuer_cards_card_number")),
        sa.UniqueConstraint("pan_hash", name=op.f("uq_issuer_cards_pan_hash")),
    )
    with op.batch_alter_table("issuer_cards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issuer_cards_id_number_hash"), ["id_number_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("issuer_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuer_cards_id_number_hash"))

    op.drop_table("issuer_cards")
