"""The terminal directory: what authentication and heartbeats need of each terminal, in memory.

Entries are loaded on first use (one terminal) or in bulk when the hub starts (every enrolled
terminal, in batches), so that after a restart 180,000 terminals coming back do not each cost
a database read on their first heartbeat. An entry is dropped whenever its terminal, its unit
or its commands change (see changes.py) and loaded again on next use.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from devices.protocol.messages import DesiredConfig
from devices.protocol.signing import load_public_key
from hub.db import Database
from hub.gateway import repository as repo
from hub.gateway.changes import Change, listen
from hub.gateway.models import KeyStatus, Terminal, TerminalKey, Unit

log = structlog.get_logger()

# Keys revoked this recently are kept so that their use is refused as `key_revoked`.
REVOKED_KEYS_KEPT = 5
WARM_BATCH = 5000


@dataclass(frozen=True)
class TerminalEntry:
    """What the cache holds per terminal: enough to authenticate and answer a heartbeat."""

    terminal_id: int
    unit_id: int
    institution_code: str
    kind: str
    serial: str
    model: str
    terminal_status: str
    unit_status: str
    key: Ed25519PublicKey | None
    revoked_keys: tuple[Ed25519PublicKey, ...]
    desired_config: DesiredConfig | None
    commands_due_at: datetime | None


def read_terminal_entries(
    session: Session, ids: Collection[int] | None = None, *, after_id: int = 0, limit: int = 0
) -> list[TerminalEntry]:
    """Entries for the given terminal ids, or for enrolled terminals after `after_id`."""
    pairs = repo.terminals_with_units(session, ids, after_id=after_id, limit=limit)
    found = [terminal.id for terminal, _ in pairs]
    if not found:
        return []
    keys: dict[int, list[TerminalKey]] = {}
    for key in repo.keys_for(session, found):
        keys.setdefault(key.terminal_id, []).append(key)
    configs = repo.configs_by_id(
        session, {t.desired_config_id for t, _ in pairs if t.desired_config_id is not None}
    )
    due = repo.commands_due_for(session, found)
    entries = []
    for terminal, unit in pairs:
        config = configs.get(terminal.desired_config_id or 0)
        desired = None
        if config is not None:
            desired = DesiredConfig(config_id=config.id, version=config.version, hash=config.hash)
        entries.append(_entry(terminal, unit, keys.get(terminal.id, []), desired, due))
    return entries


def _entry(
    terminal: Terminal,
    unit: Unit,
    keys: list[TerminalKey],
    desired: DesiredConfig | None,
    due: dict[int, datetime],
) -> TerminalEntry:
    active = [k for k in keys if k.status == KeyStatus.ACTIVE]
    revoked = [k for k in keys if k.status == KeyStatus.REVOKED][:REVOKED_KEYS_KEPT]
    return TerminalEntry(
        terminal_id=terminal.id,
        unit_id=unit.id,
        institution_code=unit.institution_code,
        kind=terminal.kind,
        serial=terminal.serial,
        model=terminal.model,
        terminal_status=terminal.status,
        unit_status=unit.status,
        key=load_public_key(active[0].public_key) if active else None,
        revoked_keys=tuple(load_public_key(k.public_key) for k in revoked),
        desired_config=desired,
        commands_due_at=due.get(terminal.id),
    )


class TerminalDirectory:
    """In-memory cache of terminal entries, dropped entry by entry on change."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = database.engine
        self._entries: dict[int, TerminalEntry] = {}
        self._lock = threading.Lock()
        # Bumped by every forget: a load that straddles a change must not store its old read.
        self._generation = 0
        listen(self)

    def cached(self, terminal_id: int) -> TerminalEntry | None:
        return self._entries.get(terminal_id)

    def load(self, terminal_id: int) -> TerminalEntry | None:
        """Read one terminal and cache it (blocking: call it off the event loop)."""
        generation = self._generation
        with self.database.session() as session:
            entries = read_terminal_entries(session, [terminal_id])
        self._store(entries, generation)
        return entries[0] if entries else None

    def warm(self, batch: int = WARM_BATCH) -> int:
        """Load every enrolled terminal, a batch at a time; returns how many were loaded."""
        loaded, after = 0, 0
        while True:
            generation = self._generation
            with self.database.session() as session:
                entries = read_terminal_entries(session, after_id=after, limit=batch)
            if not entries:
                break
            self._store(entries, generation)
            loaded += len(entries)
            after = entries[-1].terminal_id
        log.info("terminal_directory_warm", terminals=loaded)
        return loaded

    def _store(self, entries: list[TerminalEntry], generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                for entry in entries:
                    self._entries.setdefault(entry.terminal_id, entry)

    def set_commands_due(self, terminal_id: int, due: datetime | None) -> None:
        with self._lock:
            entry = self._entries.get(terminal_id)
            if entry is not None:
                self._entries[terminal_id] = replace(entry, commands_due_at=due)

    def forget(self, changes: list[Change]) -> None:
        with self._lock:
            self._generation += 1
            for terminal_id, unit_id in changes:
                if terminal_id is None and unit_id is None:
                    self._entries.clear()
                if terminal_id is not None:
                    self._entries.pop(terminal_id, None)
                if unit_id is not None:
                    for tid in [t for t, e in self._entries.items() if e.unit_id == unit_id]:
                        del self._entries[tid]

    def __len__(self) -> int:
        return len(self._entries)
