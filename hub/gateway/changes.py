"""Telling terminal caches that something they hold has changed.

Authentication and heartbeats read terminals from an in-memory cache (see auth.py), so a
revoked key, a disabled terminal or a newly queued command must reach every cache:
- in this process at once: the change rides on the session and is delivered after commit
  (never before: a cache refilled from the old row in between would keep the old state);
- in other hub processes (and after `sshub gateway ...` commands) through the
  `gateway_changes` feed, which each process polls every `gateway_change_poll_seconds`.
"""

from __future__ import annotations

import weakref
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hub.gateway import repository as repo

_PENDING = "gateway.changes"
# How long the feed keeps a change: far longer than any process lags behind it.
FEED_RETENTION = timedelta(hours=1)

Change = tuple[int | None, int | None]  # (terminal_id, unit_id)


class ChangeListener(Protocol):
    engine: Engine

    def forget(self, changes: list[Change]) -> None: ...


_listeners: weakref.WeakSet[ChangeListener] = weakref.WeakSet()


def listen(listener: ChangeListener) -> None:
    """Deliver this process's committed changes on `listener.engine` to `listener`."""
    _listeners.add(listener)


def note_change(
    session: Session, now: datetime, *, terminal_id: int | None = None, unit_id: int | None = None
) -> None:
    """Record that a terminal (or a whole unit) changed, in the caller's transaction."""
    note_changes(session, now, [(terminal_id, unit_id)])


def note_changes(session: Session, now: datetime, items: list[Change]) -> None:
    if not items:
        return
    repo.add_changes(session, [{"terminal_id": t, "unit_id": u, "at": now} for t, u in items])
    session.info.setdefault(_PENDING, []).extend(items)


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    items = session.info.pop(_PENDING, None)
    if not items:
        return
    bind = session.get_bind()
    for listener in list(_listeners):
        if listener.engine is bind:
            listener.forget(items)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)


class ChangeFeed:
    """Reads the feed from where this process last stopped."""

    def __init__(self, last_seq: int) -> None:
        self.last_seq = last_seq

    def poll(self, session: Session, limit: int = 5000) -> list[Change]:
        rows = repo.changes_after(session, self.last_seq, limit)
        if rows:
            self.last_seq = rows[-1].seq
        return [(row.terminal_id, row.unit_id) for row in rows]


def prune(session: Session, now: datetime) -> None:
    repo.prune_changes(session, now - FEED_RETENTION)
