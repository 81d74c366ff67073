"""Write and verify the hash-chained audit trail.

Each entry's hash covers its content and the previous entry's hash, so an edited, deleted or
re-ordered row breaks the chain at that row. Appends serialise on one lock (PostgreSQL) or on
the database write lock (SQLite).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from hub.audit import repository as repo
from hub.audit.models import AuditEntry

GENESIS = "0" * 64


def _digest(
    prev_hash: str, at: datetime, actor: str, action: str, subject: str, details: dict[str, object]
) -> str:
    content = json.dumps(
        [
            prev_hash,
            at.astimezone(UTC).isoformat(timespec="microseconds"),
            actor,
            action,
            subject,
            details,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(content.encode()).hexdigest()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: str,
    now: datetime,
    details: dict[str, object] | None = None,
) -> AuditEntry:
    """Append one entry. Details must never hold a PAN, a PIN, a key or a password."""
    details = json.loads(json.dumps(details or {}, default=str))  # what the JSON column keeps
    repo.lock_chain(session)
    prev = repo.last_hash(session) or GENESIS
    entry = AuditEntry(
        at=now,
        actor=actor,
        action=action,
        subject=subject,
        details=details,
        prev_hash=prev,
        hash=_digest(prev, now, actor, action, subject, details),
    )
    repo.add(session, entry)
    return entry


@dataclass(frozen=True)
class ChainReport:
    entries: int
    first_broken_seq: int | None
    reason: str | None

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


def verify(session: Session) -> ChainReport:
    prev = GENESIS
    count = 0
    for entry in repo.in_order(session):
        count += 1
        if entry.prev_hash != prev:
            return ChainReport(count, entry.seq, "previous hash does not match")
        expected = _digest(prev, entry.at, entry.actor, entry.action, entry.subject, entry.details)
        if entry.hash != expected:
            return ChainReport(count, entry.seq, "content does not match its hash")
        prev = entry.hash
    return ChainReport(count, None, None)


def recent(
    session: Session, limit: int = 100, before_seq: int | None = None, action: str | None = None
) -> Sequence[AuditEntry]:
    return repo.recent(session, limit, before_seq, action)
