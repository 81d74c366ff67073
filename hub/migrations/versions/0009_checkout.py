"""Hospital checkout: checkouts and the insurance platform messages they send.

Revision ID: 0009
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0009"
down_revision = "0003"
branch_labels = None
# gateway_units and gateway_terminals (0004), payments (0006).
depends_on = ("0004", "0006")

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "checkouts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("unit_id", ID, nullable=False),
        sa.Column("terminal_id", ID, nullable=True),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("institution_name", sa.String(length=120), nullable=False),
        sa.Column("admin_division", sa.String(length=12), nullable=False),
        sa.Column("bill_no", sa.String(length=40), nullable=False),
        sa.Column("bill", sa.JSON(), nullable=False),
        sa.Column("med_type", sa.String(length=4), nullable=False),
        sa.Column("medfee", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("failure_code", sa.String(length=40), nullable=True),
        sa.Column("failure_message", sa.String(length=255), nullable=True),
        sa.Column("cert_type", sa.String(length=2), nullable=True),
        sa.Column("cert_no", sa.String(length=64), nullable=True),
        sa.Column("card_sn", sa.String(length=40), nullable=True),
        sa.Column("card_id", ID, nullable=True),
        sa.Column("psn_no", sa.String(length=30), nullable=True),
        sa.Column("psn_name", sa.String(length=64), nullable=True),
        sa.Column("insutype", sa.String(length=6), nullable=True),
        sa.Column("insured_division", sa.String(length=12), nullable=True),
        sa.Column("mdtrt_id", sa.String(length=40), nullable=True),
        sa.Column("chrg_bchno", sa.String(length=40), nullable=True),
        sa.Column("pre_fund", sa.BigInteger(), nullable=True),
        sa.Column("pre_account", sa.BigInteger(), nullable=True),
        sa.Column("pre_cash", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", ID, nullable=True),
        sa.Column("self_pay_method", sa.String(length=16), nullable=True),
        sa.Column("setl_id", sa.String(length=40), nullable=True),
        sa.Column("setl_fund", sa.BigInteger(), nullable=True),
        sa.Column("setl_account", sa.BigInteger(), nullable=True),
        sa.Column("setl_cash", sa.BigInteger(), nullable=True),
        sa.Column("settled_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("posted", sa.Boolean(), nullable=False),
        sa.Column("revoke_setl_id", sa.String(length=40), nullable=True),
        sa.Column("revoked_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("updated_at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["issuer_cards.id"], name=op.f("fk_checkouts_card_id_issuer_cards")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_checkouts_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_checkouts_terminal_id_gateway_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["gateway_units.id"], name=op.f("fk_checkouts_unit_id_gateway_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkouts")),
        sa.UniqueConstraint(
            "institution_code", "bill_no", name=op.f("uq_checkouts_institution_code")
        ),
        sa.UniqueConstraint("payment_id", name=op.f("uq_checkouts_payment_id")),
        sa.UniqueConstraint("setl_id", name=op.f("uq_checkouts_setl_id")),
    )
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkouts_institution_settled", ["institution_code", "settled_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_checkouts_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkouts_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "checkout_platform_calls",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("checkout_id", ID, nullable=True),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("infno", sa.String(length=4), nullable=False),
        sa.Column("msgid", sa.String(length=40), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", hub.db.UtcDateTime(), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("answered_at", hub.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_checkout_platform_calls_checkout_id_checkouts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_platform_calls")),
        sa.UniqueConstraint("msgid", name=op.f("uq_checkout_platform_calls_msgid")),
    )
    with op.batch_alter_table("checkout_platform_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_checkout_platform_calls_open", ["checkout_id", "state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checkout_platform_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_checkout_platform_calls_open")
    op.drop_table("checkout_platform_calls")
    with op.batch_alter_table("checkouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkouts_unit_id"))
        batch_op.drop_index(batch_op.f("ix_checkouts_state"))
        batch_op.drop_index("ix_checkouts_institution_settled")
    op.drop_table("checkouts")
