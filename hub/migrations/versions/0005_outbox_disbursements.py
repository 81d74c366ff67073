"""Outbox and loan disbursements: outbound messages, loan clients and keys, disbursements,
the programme's daily totals.

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

ID64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_messages",
        sa.Column("id", ID64, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=255), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("delivered_at", hub.db.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_messages_event_id")),
    )
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_messages_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_messages_topic"), ["topic"], unique=False)

    op.create_table(
        "loan_clients",
        sa.Column("id", ID64, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("callback_url", sa.String(length=512), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_loan_clients_name")),
    )
    op.create_table(
        "loan_client_keys",
        sa.Column("key_id", sa.String(length=48), nullable=False),
        sa.Column("client_id", ID64, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hub.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["loan_clients.id"],
            name=op.f("fk_loan_client_keys_client_id_loan_clients"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_loan_client_keys")),
    )
    with op.batch_alter_table("loan_client_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_loan_client_keys_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "disbursements",
        sa.Column("id", ID64, autoincrement=True, nullable=False),
        sa.Column("client_id", ID64, nullable=False),
        sa.Column("external_id", sa.String(length=48), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("loan_ref", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("card_number", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("reason_message", sa.String(length=255), nullable=True),
        sa.Column("card_account_id", sa.BigInteger(), nullable=True),
        sa.Column("transfer_id", sa.String(length=64), nullable=True),
        sa.Column("lease_until", hub.db.UtcDateTime(), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("posted_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("posted_on", sa.Date(), nullable=True),
        sa.Column("reversal_transfer_id", sa.String(length=64), nullable=True),
        sa.Column("undo_reason", sa.String(length=128), nullable=True),
        sa.Column("undone_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("undone_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["loan_clients.id"], name=op.f("fk_disbursements_client_id_loan_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disbursements")),
        sa.UniqueConstraint("external_id", name=op.f("uq_disbursements_external_id")),
    )
    with op.batch_alter_table("disbursements", schema=None) as batch_op:
        batch_op.create_index("ix_disbursements_client", ["client_id", "id"], unique=False)
        batch_op.create_index("ix_disbursements_posted", ["posted_on", "status"], unique=False)
        batch_op.create_index("ix_disbursements_undone", ["undone_on"], unique=False)

    op.create_table(
        "disbursement_daily_totals",
        sa.Column("business_day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("business_day", name=op.f("pk_disbursement_daily_totals")),
    )


def downgrade() -> None:
    op.drop_table("disbursement_daily_totals")
    with op.batch_alter_table("disbursements", schema=None) as batch_op:
        batch_op.drop_index("ix_disbursements_undone")
        batch_op.drop_index("ix_disbursements_posted")
        batch_op.drop_index("ix_disbursements_client")
    op.drop_table("disbursements")
    with op.batch_alter_table("loan_client_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loan_client_keys_client_id"))
    op.drop_table("loan_client_keys")
    op.drop_table("loan_clients")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_messages_topic"))
        batch_op.drop_index("ix_outbox_messages_due")
    op.drop_table("outbox_messages")
