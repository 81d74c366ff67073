"""Write and verify the hash-chained audit trail.

Each entry's hash covers its content and the previous entry's hash, so an edited, deleted or
re-ordered row breaks the chain at that row. Appends serialise on one lock (PostgreSQL) or on
the database write lock (SQLite).

`record` only queues the entry on the session; the queue is appended just before COMMIT (a
`before_commit` hook), so the chain lock is held for the append and the COMMIT, not for the
rest of the transaction. A rollback drops the queue (a rolled-back savepoint, its own entries).
Reading the trail through this module in the same session appends the queue first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from hub.audit import repository as repo
from hub.audit.models import AuditEntry

GENESIS = "0" * 64
_QUEUE = "audit_queue"  # session.info key: [(transaction, entry)] waiting for COMMIT


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
    """Queue one entry, appended at COMMIT. Details must never hold a PAN, a PIN, a key or a
    password. The entry's seq and hashes are set when it is appended."""
    details = json.loads(json.dumps(details or {}, default=str))  # what the JSON column keeps
    entry = AuditEntry(at=now, actor=actor, action=action, subject=subject, details=details)
    # Tagged with the innermost transaction, begun now if need be, so that its rollback (or a
    # close without commit) drops exactly the entries it recorded.
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(_QUEUE, []).append((transaction, entry))
    return entry


def _append_queued(session: Session) -> None:
    """Lock the chain, read its last hash, insert the queued entries in order."""
    queue = session.info.pop(_QUEUE, None)
    if not queue:
        return
    session.flush()  # the transaction's own writes go first: the lock waits for none of them
    repo.lock_chain(session)
    prev = repo.last_hash(session) or GENESIS
    entries = [entry for _, entry in queue]
    for e in entries:
        e.prev_hash = prev
        e.hash = prev = _digest(prev, e.at, e.actor, e.action, e.subject, e.details)
    repo.add_all(session, entries)


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # Also at a savepoint's release: its entries then belong to the enclosing transaction.
    _append_queued(session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    queue = session.info.get(_QUEUE)
    if queue:
        queue[:] = [(t, e) for t, e in queue if not _inside(t, previous)]


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # committed (queue appended), rolled back or closed
        session.info.pop(_QUEUE, None)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    first_broken_seq: int | None
    reason: str | None

    @property
    def intact(self) -> bool:
        return self.first_broken_seq is None


def verify(session: Session) -> ChainReport:
    _append_queued(session)
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
    _append_queued(session)
    return repo.recent(session, limit, before_seq, action)
