"""Device gateway: units, terminals, keys, enrollment codes, commands, presence, events,
firmware configs, rollouts and the cache change feed.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("terminal_id", sa.BigInteger(), nullable=True),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("at", hub.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_gateway_changes")),
    )
    with op.batch_alter_table("gateway_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_changes_at"), ["at"], unique=False)

    op.create_table(
        "gateway_configs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("published_by", sa.String(length=96), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_configs")),
        sa.UniqueConstraint("hash", name=op.f("uq_gateway_configs_hash")),
        sa.UniqueConstraint("model", "version", name=op.f("uq_gateway_configs_model")),
    )
    op.create_table(
        "gateway_units",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("institution_code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_units")),
        sa.UniqueConstraint("institution_code", name=op.f("uq_gateway_units_institution_code")),
    )
    with op.batch_alter_table("gateway_units", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_units_region_code"), ["region_code"], unique=False
        )

    op.create_table(
        "gateway_rollouts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "config_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("target_filter", sa.JSON(), nullable=False),
        sa.Column(
            "canary_unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("canary_size", sa.Integer(), nullable=False),
        sa.Column("group_count", sa.Integer(), nullable=False),
        sa.Column("success_threshold", sa.Float(), nullable=False),
        sa.Column("error_threshold_pct", sa.Float(), nullable=False),
        sa.Column("error_threshold_count", sa.Integer(), nullable=False),
        sa.Column("stuck_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_group", sa.Integer(), nullable=False),
        sa.Column("groups_total", sa.Integer(), nullable=False),
        sa.Column("errors_accepted", sa.Integer(), nullable=False),
        sa.Column("pause_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("started_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("finished_at", hub.db.UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["canary_unit_id"],
            ["gateway_units.id"],
            name=op.f("fk_gateway_rollouts_canary_unit_id_gateway_units"),
        ),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["gateway_configs.id"],
            name=op.f("fk_gateway_rollouts_config_id_gateway_configs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_rollouts")),
    )
    with op.batch_alter_table("gateway_rollouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_rollouts_status"), ["status"], unique=False)

    op.create_table(
        "gateway_terminals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("hardware_revision", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("enrolled_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("firmware_version", sa.String(length=32), nullable=True),
        sa.Column("reported_config_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "desired_config_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("last_seen_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("stale_after", hub.db.UtcDateTime(), nullable=True),
        sa.Column("offline_after", hub.db.UtcDateTime(), nullable=True),
        sa.Column("heartbeat_interval", sa.Float(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=True),
        sa.Column("uptime_seconds", sa.BigInteger(), nullable=True),
        sa.Column("outbox_depth", sa.BigInteger(), nullable=True),
        sa.Column("peripherals", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["desired_config_id"],
            ["gateway_configs.id"],
            name=op.f("fk_gateway_terminals_desired_config_id_gateway_configs"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["gateway_units.id"],
            name=op.f("fk_gateway_terminals_unit_id_gateway_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_terminals")),
        sa.UniqueConstraint("serial", name=op.f("uq_gateway_terminals_serial")),
        postgresql_with={"fillfactor": 80},
    )
    with op.batch_alter_table("gateway_terminals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_terminals_model"), ["model"], unique=False)
        batch_op.create_index(batch_op.f("ix_gateway_terminals_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "gateway_commands",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.Column("expires_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("resend_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("sent_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("acknowledged_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("finished_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column(
            "rollout_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["gateway_rollouts.id"],
            name=op.f("fk_gateway_commands_rollout_id_gateway_rollouts"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_commands_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_commands")),
    )
    with op.batch_alter_table("gateway_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateway_commands_state"), ["state"], unique=False)
        batch_op.create_index(
            "ix_gateway_commands_terminal_state", ["terminal_id", "state"], unique=False
        )

    op.create_table(
        "gateway_enrollment_codes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("expires_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("used_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("withdrawn_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=96), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_enrollment_codes_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_enrollment_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_gateway_enrollment_codes_code_hash")),
    )
    with op.batch_alter_table("gateway_enrollment_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_enrollment_codes_terminal_id"), ["terminal_id"], unique=False
        )

    op.create_table(
        "gateway_presence_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("from_presence", sa.String(length=16), nullable=False),
        sa.Column("to_presence", sa.String(length=16), nullable=False),
        sa.Column("at", hub.db.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_presence_events_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_presence_events")),
    )
    with op.batch_alter_table("gateway_presence_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_presence_events_terminal_id"), ["terminal_id"], unique=False
        )

    op.create_table(
        "gateway_rollout_targets",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "rollout_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("group_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("command_id", sa.String(length=32), nullable=True),
        sa.Column("started_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("finished_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["gateway_rollouts.id"],
            name=op.f("fk_gateway_rollout_targets_rollout_id_gateway_rollouts"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_rollout_targets_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_rollout_targets")),
        sa.UniqueConstraint(
            "rollout_id", "terminal_id", name=op.f("uq_gateway_rollout_targets_rollout_id")
        ),
    )
    with op.batch_alter_table("gateway_rollout_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_rollout_targets_rollout_state", ["rollout_id", "state"], unique=False
        )

    op.create_table(
        "gateway_terminal_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("occurred_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("received_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_terminal_events_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_terminal_events")),
        sa.UniqueConstraint(
            "terminal_id", "message_id", name=op.f("uq_gateway_terminal_events_terminal_id")
        ),
    )
    op.create_table(
        "gateway_terminal_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "terminal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("public_key", sa.String(length=60), nullable=False),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", hub.db.UtcDateTime(), nullable=False),
        sa.Column("revoked_at", hub.db.UtcDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["gateway_terminals.id"],
            name=op.f("fk_gateway_terminal_keys_terminal_id_gateway_terminals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_terminal_keys")),
        sa.UniqueConstraint("public_key", name=op.f("uq_gateway_terminal_keys_public_key")),
    )
    with op.batch_alter_table("gateway_terminal_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gateway_terminal_keys_terminal_id"), ["terminal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_terminal_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_terminal_keys_terminal_id"))

    op.drop_table("gateway_terminal_keys")
    op.drop_table("gateway_terminal_events")
    with op.batch_alter_table("gateway_rollout_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_rollout_targets_rollout_state")

    op.drop_table("gateway_rollout_targets")
    with op.batch_alter_table("gateway_presence_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_presence_events_terminal_id"))

    op.drop_table("gateway_presence_events")
    with op.batch_alter_table("gateway_enrollment_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_enrollment_codes_terminal_id"))

    op.drop_table("gateway_enrollment_codes")
    with op.batch_alter_table("gateway_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_commands_terminal_state")
        batch_op.drop_index(batch_op.f("ix_gateway_commands_state"))

    op.drop_table("gateway_commands")
    with op.batch_alter_table("gateway_terminals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_terminals_unit_id"))
        batch_op.drop_index(batch_op.f("ix_gateway_terminals_model"))

    op.drop_table("gateway_terminals")
    with op.batch_alter_table("gateway_rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_rollouts_status"))

    op.drop_table("gateway_rollouts")
    with op.batch_alter_table("gateway_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_units_region_code"))

    op.drop_table("gateway_units")
    op.drop_table("gateway_configs")
    with op.batch_alter_table("gateway_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateway_changes_at"))

    op.drop_table("gateway_changes")
