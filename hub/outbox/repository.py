"""Every query of the outbox."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from hub.outbox.models import MessageState, OutboxMessage

messages = OutboxMessage.__table__


def add_all(session: Session, new: Sequence[OutboxMessage]) -> None:
    if new:
        session.add_all(new)
        session.flush()


def by_event_id(session: Session, event_id: str) -> OutboxMessage | None:
    stmt = select(OutboxMessage).where(OutboxMessage.event_id == event_id)
    return session.scalars(stmt).one_or_none()


def by_event_ids(session: Session, event_ids: Collection[str]) -> dict[str, OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.event_id.in_(list(event_ids)))
    return {m.event_id: m for m in session.scalars(stmt)}


def get(session: Session, message_id: int) -> OutboxMessage | None:
    return session.get(OutboxMessage, message_id)


def claim_due(
    session: Session,
    topics: Collection[str],
    now: datetime,
    limit: int,
    lease_until: datetime,
    token: str,
) -> Sequence[Row[Any]]:
    """Claim up to `limit` due messages of these topics for one worker.

    SKIP LOCKED lets concurrent workers take disjoint rows on PostgreSQL without waiting on
    each other; SQLite has no row locks, but its writers take turns (BEGIN IMMEDIATE), so the
    claim is just as exclusive there. The lease is `next_attempt_at`: if the worker dies, the
    row falls due again when the lease ends.
    """
    due = (
        select(messages.c.id)
        .where(
            messages.c.state == MessageState.PENDING.value,
            messages.c.next_attempt_at <= now,
            messages.c.topic.in_(list(topics)),
        )
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(messages)
        .where(messages.c.id.in_(due.scalar_subquery()))
        .values(claim_token=token, next_attempt_at=lease_until, attempts=messages.c.attempts + 1)
        .returning(
            messages.c.id,
            messages.c.topic,
            messages.c.event_id,
            messages.c.payload,
            messages.c.attempts,
        )
    )
    return session.execute(stmt).all()


def finish(
    session: Session, message_ids: Collection[int], token: str, values: dict[str, Any]
) -> set[int]:
    """Record one outcome for messages still claimed with `token`; returns the ids recorded."""
    stmt = (
        update(messages)
        .where(
            messages.c.id.in_(list(message_ids)),
            messages.c.claim_token == token,
            messages.c.state == MessageState.PENDING.value,
        )
        .values(claim_token=None, **values)
        .returning(messages.c.id)
    )
    return set(session.scalars(stmt))


def listing(
    session: Session,
    *,
    state: str | None,
    topic: str | None,
    event_id_prefix: str | None,
    limit: int,
) -> Sequence[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    if topic:
        stmt = stmt.where(OutboxMessage.topic == topic)
    if event_id_prefix:
        stmt = stmt.where(OutboxMessage.event_id.startswith(event_id_prefix, autoescape=True))
    return session.scalars(stmt).all()
