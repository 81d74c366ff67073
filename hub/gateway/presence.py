"""Presence: who is online, stale or offline.

Why heartbeats are not written one row each: 180,000 terminals at a 60 s interval are 3,000
heartbeats a second. An UPDATE per heartbeat would make the database's write path (WAL,
row versions, vacuum) the hub's ceiling and put a commit on every heartbeat's latency. A
heartbeat only moves a terminal's last-seen time, so the hot path keeps the latest sighting per
terminal in memory (`PresenceBoard.record`, one dict store) and a periodic job writes the whole
batch in one executemany UPDATE. What a crash can lose is at most one flush interval of
last-seen times, which the next heartbeat restores.

The sweeper then reads the database, not memory: each row carries `stale_after` (last seen +
1.5 x interval) and `offline_after` (+ 3 x interval), so terminals that were never seen by this
process, or never sent anything since enrolling, or stopped while the hub was down, still go
stale and offline. Every transition is written as a presence event.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.db import Database
from hub.gateway import repository as repo
from hub.gateway.models import Presence

STALE_FACTOR = 1.5
OFFLINE_FACTOR = 3.0
SWEEP_BATCH = 5000


@dataclass(slots=True)
class Sighting:
    """The latest heartbeat of one terminal, as reported."""

    at: datetime
    interval: float
    sequence: int
    firmware_version: str
    config_hash: str | None = None
    peripherals: dict[str, str] = field(default_factory=dict)
    outbox_depth: int = 0
    uptime_seconds: int = 0


class PresenceBoard:
    """Latest sighting per terminal since the last flush; safe across threads."""

    def __init__(self) -> None:
        self._pending: dict[int, Sighting] = {}
        self._lock = threading.Lock()

    def record(self, terminal_id: int, sighting: Sighting) -> None:
        # A single dict store is atomic under the GIL; the lock guards only the swap in take().
        self._pending[terminal_id] = sighting

    def take(self) -> dict[int, Sighting]:
        with self._lock:
            batch, self._pending = self._pending, {}
        return batch

    def put_back(self, batch: dict[int, Sighting]) -> None:
        """Return a batch whose flush failed, without overwriting newer sightings."""
        with self._lock:
            for terminal_id, sighting in batch.items():
                self._pending.setdefault(terminal_id, sighting)

    def __len__(self) -> int:
        return len(self._pending)


def deadlines(at: datetime, interval: float) -> tuple[datetime, datetime]:
    """When a terminal last seen at `at` becomes stale, and when offline."""
    return (
        at + timedelta(seconds=interval * STALE_FACTOR),
        at + timedelta(seconds=interval * OFFLINE_FACTOR),
    )


def write_batch(session: Session, batch: dict[int, Sighting]) -> int:
    """Write a batch of sightings; terminals coming back are recorded as transitions."""
    events = [
        {
            "terminal_id": tid,
            "from_presence": old,
            "to_presence": Presence.ONLINE,
            "at": batch[tid].at,
        }
        for tid, old in repo.offline_or_stale_among(session, batch.keys())
    ]
    rows: list[dict[str, Any]] = []
    for terminal_id, seen in batch.items():
        stale, offline = deadlines(seen.at, seen.interval)
        rows.append(
            {
                "id": terminal_id,
                "at": seen.at,
                "stale": stale,
                "offline": offline,
                "interval": seen.interval,
                "sequence": seen.sequence,
                "firmware": seen.firmware_version,
                "config_hash": seen.config_hash,
                "peripherals": seen.peripherals,
                "outbox": seen.outbox_depth,
                "uptime": seen.uptime_seconds,
            }
        )
    repo.write_sightings(session, rows)
    repo.add_presence_events(session, events)
    return len(rows)


def flush(database: Database, board: PresenceBoard) -> int:
    """Write what the board holds in one transaction; on failure the batch goes back."""
    batch = board.take()
    if not batch:
        return 0
    try:
        return database.transaction(lambda s: write_batch(s, batch))
    except BaseException:
        board.put_back(batch)
        raise


def sweep(session: Session, now: datetime) -> list[tuple[int, str, str]]:
    """Move terminals past their deadlines to stale or offline; returns the transitions."""
    transitions: list[tuple[int, str, str]] = []
    offline = repo.past_deadline(
        session, (Presence.ONLINE, Presence.STALE), "offline_after", now, SWEEP_BATCH
    )
    transitions += [(tid, old, Presence.OFFLINE) for tid, old in offline]
    gone = {tid for tid, _ in offline}
    stale = repo.past_deadline(session, (Presence.ONLINE,), "stale_after", now, SWEEP_BATCH)
    transitions += [(tid, old, Presence.STALE) for tid, old in stale if tid not in gone]
    for target in (Presence.OFFLINE, Presence.STALE):
        repo.set_presence(session, [t for t, _, to in transitions if to == target], target)
    repo.add_presence_events(
        session,
        [
            {"terminal_id": t, "from_presence": a, "to_presence": b, "at": now}
            for t, a, b in transitions
        ],
    )
    return transitions
