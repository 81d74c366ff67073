"""Queries of the audit trail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hub.audit.models import AuditEntry

# One fixed key for pg_advisory_xact_lock: appends to the chain take turns.
CHAIN_LOCK_KEY = 0x55C_A0D1


def lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})


def last_hash(session: Session) -> str | None:
    stmt = select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    return session.scalars(stmt).first()


def add_all(session: Session, entries: Sequence[AuditEntry]) -> None:
    """One INSERT for all of them (insertmanyvalues), seq in the given order."""
    session.add_all(entries)
    session.flush()


def in_order(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    yield from session.scalars(stmt)


def recent(
    session: Session, limit: int = 100, before_seq: int | None = None, action: str | None = None
) -> Sequence[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before_seq is not None:
        stmt = stmt.where(AuditEntry.seq < before_seq)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return session.scalars(stmt).all()
