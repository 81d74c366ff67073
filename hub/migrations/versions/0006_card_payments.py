"""Card payments: issuer keys, card ATC and PIN state, terminal PIN keys, payments and their
operations, per-unit payment settings.

Revision ID: 0006
Revises: 0003
Depends on: 0004 (gateway units and terminals)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = "0004"


def upgrade() -> None:
    op.create_table(
        "issuer_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key_wrapped", sa.String(length=128), nullable=False),
        sa.Column("kcv", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("retired_at", hub.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_keys")),
        sa.UniqueConstraint("purpose", "version", name=op.f("uq_issuer_keys_purpose")),
    )
    op.create_table(
        "payment_unit_settings",
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pin_threshold_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["gateway_units.id"],
            name=op.f("fk_payment_unit_settings_unit_id_gateway_units"),
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_payment_unit_settings")),
    )
    op.create_table(
        "issuer_card_security",
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_atc", sa.Integer(), nullable=True),
        sa.Column("pin_verifier", sa.String(length=64), nullable=True),
        sa.Column("pin_salt", sa.String(length=32), nullable=True),
        sa.Column("pin_tries", sa.Integer(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["issuer_cards.id"],
            name=op.f("fk_issuer_card_security_card_id_issuer_cards"),
        ),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_issuer_card_security")),
    )
    op.create_table(
        "issuer_terminal_pin_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key_wrapped", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_issuer_terminal_pin_keys_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuer_terminal_pin_keys")),
        sa.UniqueConstraint(
            "terminal_id", "version", name=op.f("uq_issuer_terminal_pin_keys_terminal_id")
        ),
    )
    with op.batch_alter_table("issuer_terminal_pin_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issuer_terminal_pin_keys_terminal_id"), ["terminal_id"], unique=False
        )

    op.create_table(
        "payments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=96), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("card_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "card_account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "settlement_account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("pan_masked", sa.String(length=19), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("captured", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decline_code", sa.String(length=32), nullable=True),
        sa.Column("response_code", sa.String(length=2), nullable=True),
        sa.Column("arpc", sa.String(length=16), nullable=True),
        sa.Column("atc", sa.Integer(), nullable=True),
        sa.Column("hold_transfer_id", sa.String(length=64), nullable=True),
        sa.Column("hold_expires_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payments_card_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["issuer_cards.id"], name=op.f("fk_payments_card_id_issuer_cards")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payments_settlement_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_payments_terminal_id_gateway_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["gateway_units.id"], name=op.f("fk_payments_unit_id_gateway_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_idempotency_key")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_card_id"), ["card_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payments_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "payment_operations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("operation_key", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=96), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_operations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_operations")),
        sa.UniqueConstraint(
            "payment_id", "kind", "operation_key", name=op.f("uq_payment_operations_payment_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("payment_operations")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payments_unit_id"))
        batch_op.drop_index(batch_op.f("ix_payments_card_id"))

    op.drop_table("payments")
    with op.batch_alter_table("issuer_terminal_pin_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issuer_terminal_pin_keys_terminal_id"))

    op.drop_table("issuer_terminal_pin_keys")
    op.drop_table("issuer_card_security")
    op.drop_table("payment_unit_settings")
    op.drop_table("issuer_keys")
