"""QR codes: cardholder app tokens, payment codes and their payments, bills.

Revision ID: 0008
Revises: 0003
Depends on: 0006 (payments; through it 0004, gateway units)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0008"
down_revision = "0003"
branch_labels = None
depends_on = "0006"

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payment_bills",
        sa.Column("id", Id64, autoincrement=True, nullable=False),
        sa.Column("unit_id", Id64, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("bill_number", sa.String(length=25), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("paid_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("paid_card_id", Id64, nullable=True),
        sa.Column("payment_id", Id64, nullable=True),
        sa.Column("cancelled_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["paid_card_id"],
            ["issuer_cards.id"],
            name=op.f("fk_payment_bills_paid_card_id_issuer_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["gateway_units.id"], name=op.f("fk_payment_bills_unit_id_gateway_units")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_bills_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_bills")),
        sa.UniqueConstraint(
            "institution_code", "bill_number", name=op.f("uq_payment_bills_institution_code")
        ),
        sa.UniqueConstraint("payment_id", name=op.f("uq_payment_bills_payment_id")),
    )
    op.create_index(
        "ix_payment_bills_status_expires", "payment_bills", ["status", "expires_at"], unique=False
    )
    op.create_table(
        "payment_cardholder_tokens",
        sa.Column("id", Id64, autoincrement=True, nullable=False),
        sa.Column("card_id", Id64, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("revoked_at", hub.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["issuer_cards.id"],
            name=op.f("fk_payment_cardholder_tokens_card_id_issuer_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_cardholder_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_payment_cardholder_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_payment_cardholder_tokens_card_id"),
        "payment_cardholder_tokens",
        ["card_id"],
        unique=False,
    )
    op.create_table(
        "payment_codes",
        sa.Column("id", Id64, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("card_id", Id64, nullable=False),
        sa.Column("issued_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("used_at", hub.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["card_id"], ["issuer_cards.id"], name=op.f("fk_payment_codes_card_id_issuer_cards")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_codes")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_payment_codes_token_hash")),
    )
    op.create_index(op.f("ix_payment_codes_card_id"), "payment_codes", ["card_id"], unique=False)
    op.create_index(
        op.f("ix_payment_codes_expires_at"), "payment_codes", ["expires_at"], unique=False
    )
    op.create_table(
        "payment_code_payments",
        sa.Column("id", Id64, autoincrement=True, nullable=False),
        sa.Column("terminal_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("code_id", Id64, nullable=False),
        sa.Column("card_id", Id64, nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", Id64, nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["issuer_cards.id"],
            name=op.f("fk_payment_code_payments_card_id_issuer_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["payment_codes.id"],
            name=op.f("fk_payment_code_payments_code_id_payment_codes"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_code_payments_payment_id_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_code_payments")),
        sa.UniqueConstraint("code_id", name=op.f("uq_payment_code_payments_code_id")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_payment_code_payments_payment_id")),
        sa.UniqueConstraint(
            "terminal_id", "transaction_id", name=op.f("uq_payment_code_payments_terminal_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("payment_code_payments")
    op.drop_index(op.f("ix_payment_codes_expires_at"), table_name="payment_codes")
    op.drop_index(op.f("ix_payment_codes_card_id"), table_name="payment_codes")
    op.drop_table("payment_codes")
    op.drop_index(
        op.f("ix_payment_cardholder_tokens_card_id"), table_name="payment_cardholder_tokens"
    )
    op.drop_table("payment_cardholder_tokens")
    op.drop_index("ix_payment_bills_status_expires", table_name="payment_bills")
    op.drop_table("payment_bills")
