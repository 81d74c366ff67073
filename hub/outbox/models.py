"""The outbox table: one row per outbound message, written in the caller's transaction."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class MessageState(enum.StrEnum):
    # Waiting for its next attempt, or claimed by a worker until `next_attempt_at` (the lease).
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # the retry budget is spent, or the receiver refused it for good


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    # The receiver's de-duplication key: the same event is never enqueued twice.
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default=MessageState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # Set when a worker claims the row; a late worker whose lease ran out cannot record a result.
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
