"""Gateway tables: units, terminals and their keys, enrollment codes, commands, presence events,
terminal events, firmware configs, rollouts, and the change feed that keeps caches honest."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class UnitStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class TerminalStatus(enum.StrEnum):
    REGISTERED = "registered"  # serial known, not enrolled yet
    ACTIVE = "active"  # enrolled, holds a key
    DISABLED = "disabled"  # refused until enabled again


class Presence(enum.StrEnum):
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class CommandState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


OPEN_COMMAND_STATES = (CommandState.QUEUED, CommandState.SENT, CommandState.ACKNOWLEDGED)


class RolloutStatus(enum.StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class TargetState(enum.StrEnum):
    PENDING = "pending"  # its group has not started
    IN_PROGRESS = "in_progress"  # told to apply, new hash not reported yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


ERROR_TARGET_STATES = (TargetState.FAILED, TargetState.TIMED_OUT)


class Unit(Base):
    """A medical insurance unit: hospital, clinic or pharmacy."""

    __tablename__ = "gateway_units"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    institution_code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(16), default=UnitStatus.ACTIVE)
    created_at: Mapped[datetime]


class Terminal(Base):
    __tablename__ = "gateway_terminals"
    # The presence flush rewrites last-seen and the deadlines of every beating terminal. No
    # index covers those columns, so PostgreSQL updates the rows in place (HOT: no index
    # writes), with room left on each page for it. The sweeper scans the table instead, every
    # few seconds: 180,000 narrow rows cost less than indexes churned 3,000 times a second.
    __table_args__ = ({"postgresql_with": {"fillfactor": 80}},)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(32), index=True)
    hardware_revision: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("gateway_units.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=TerminalStatus.REGISTERED)
    created_at: Mapped[datetime]
    enrolled_at: Mapped[datetime | None]
    firmware_version: Mapped[str | None] = mapped_column(String(32))
    reported_config_hash: Mapped[str | None] = mapped_column(String(64))
    desired_config_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_configs.id"))
    presence: Mapped[str] = mapped_column(String(16), default=Presence.OFFLINE)
    last_seen_at: Mapped[datetime | None]
    stale_after: Mapped[datetime | None]
    offline_after: Mapped[datetime | None]
    heartbeat_interval: Mapped[float] = mapped_column(Float)
    last_sequence: Mapped[int | None]
    uptime_seconds: Mapped[int | None]
    outbox_depth: Mapped[int | None]
    peripherals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TerminalKey(Base):
    """A terminal's Ed25519 public key. The hub never sees the private half."""

    __tablename__ = "gateway_terminal_keys"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"), index=True)
    public_key: Mapped[str] = mapped_column(String(60), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=KeyStatus.ACTIVE)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class EnrollmentCode(Base):
    """A one-time enrollment code; only its SHA-256 is kept."""

    __tablename__ = "gateway_enrollment_codes"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]  # superseded by a newer code
    created_by: Mapped[str] = mapped_column(String(96))


class TerminalCommand(Base):
    __tablename__ = "gateway_commands"
    __table_args__ = (Index("ix_gateway_commands_terminal_state", "terminal_id", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # uuid4 hex
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"))
    kind: Mapped[str] = mapped_column(String(24))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=CommandState.QUEUED, index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(96))
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    # When a sent but unacknowledged command may be delivered again.
    resend_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_rollouts.id"))


class PresenceEvent(Base):
    __tablename__ = "gateway_presence_events"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"), index=True)
    from_presence: Mapped[str] = mapped_column(String(16))
    to_presence: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class TerminalMessage(Base):
    """An event a terminal sent from its outbox; (terminal, message id) is applied once."""

    __tablename__ = "gateway_terminal_events"
    __table_args__ = (UniqueConstraint("terminal_id", "message_id"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"))
    message_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FirmwareConfig(Base):
    """A validated, published configuration document; its hash identifies it."""

    __tablename__ = "gateway_configs"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(96))


class Rollout(Base):
    __tablename__ = "gateway_rollouts"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120))
    config_id: Mapped[int] = mapped_column(ForeignKey("gateway_configs.id"))
    model: Mapped[str] = mapped_column(String(32))
    # {"unit_ids": [...], "region_code": "...", "terminal_ids": [...]}; model is the config's.
    target_filter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    canary_unit_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_units.id"))
    canary_size: Mapped[int] = mapped_column(Integer)
    group_count: Mapped[int] = mapped_column(Integer)
    success_threshold: Mapped[float] = mapped_column(Float)
    error_threshold_pct: Mapped[float] = mapped_column(Float)
    error_threshold_count: Mapped[int] = mapped_column(Integer)
    stuck_timeout_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RolloutStatus.DRAFT, index=True)
    current_group: Mapped[int] = mapped_column(Integer, default=-1)
    groups_total: Mapped[int] = mapped_column(Integer, default=0)
    # Errors the operator accepted when resuming; only errors beyond them count again.
    errors_accepted: Mapped[int] = mapped_column(Integer, default=0)
    pause_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(96))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class RolloutTarget(Base):
    __tablename__ = "gateway_rollout_targets"
    __table_args__ = (
        UniqueConstraint("rollout_id", "terminal_id"),
        Index("ix_gateway_rollout_targets_rollout_state", "rollout_id", "state"),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("gateway_rollouts.id"))
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"))
    group_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=TargetState.PENDING)
    command_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(200))


class GatewayChange(Base):
    """Change feed: what other hub processes must drop from their terminal caches."""

    __tablename__ = "gateway_changes"

    seq: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int | None]
    unit_id: Mapped[int | None]
    at: Mapped[datetime] = mapped_column(index=True)
