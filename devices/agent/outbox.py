"""The agent's store-and-forward outbox, in SQLite.

A message that must reach the hub (a command's outcome, an event, a payment captured while the
hub was unreachable) is written here first, with its final message id, and only then sent.
It is deleted only after the hub acknowledges it, so it survives a crash, a power cut or a
hub outage. Messages go out strictly in the order they were written; the first one that
cannot be delivered for a passing reason stops the drain so order is kept.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.agent.hub_client import HubClient, HubRefused, HubUnavailable

log = logging.getLogger(__name__)

# Refusals that may pass (clock skew, a disabled terminal enabled again, throttling): keep the
# message and stop. Any other 4xx can never succeed and is set aside as dead, not retried.
RETRY_LATER = {401, 403, 408, 425, 429}
# The hub already has it, or the thing it answers is closed: delivered as far as we can tell.
SETTLED = {409}

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT
);
"""


class OutboxFull(Exception):
    """The outbox holds its configured maximum; the caller must not take new work offline."""


@dataclass(frozen=True)
class DrainReport:
    delivered: int
    dead: int
    remaining: int
    stopped_by: str | None  # why draining stopped early, if it did


def connect(path: Path) -> sqlite3.Connection:
    """An SQLite connection shared by the agent's stores (WAL, waits for other processes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a message acknowledged to its caller is on disk
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Outbox:
    def __init__(self, conn: sqlite3.Connection, *, max_messages: int = 5000) -> None:
        self.conn = conn
        self.max_messages = max_messages
        conn.executescript(SCHEMA)

    def put(self, path: str, body: dict[str, Any], message_id: str, method: str = "POST") -> bool:
        """Queue a message; False when this message id is already queued (or was delivered
        and re-queued by mistake: the hub dedupes by id either way)."""
        if self.depth() >= self.max_messages:
            raise OutboxFull(f"outbox holds {self.max_messages} messages")
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO outbox (message_id, method, path, body, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message_id, method, path, json.dumps(body, default=str), time.time()),
        )
        return cursor.rowcount == 1

    def room(self) -> int:
        """How many more messages `put` takes before it raises OutboxFull."""
        return max(self.max_messages - self.depth(), 0)

    def depth(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
        return int(row[0])

    def dead(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT message_id, path, last_error FROM outbox WHERE state = 'dead' ORDER BY seq"
        ).fetchall()
        return [{"message_id": m, "path": p, "error": e} for m, p, e in rows]

    def pending_ids(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT message_id FROM outbox WHERE state = 'pending' ORDER BY seq"
        ).fetchall()
        return [row[0] for row in rows]

    def expire(self, max_age_hours: float) -> int:
        """Set aside messages older than the configured age; they are reported, not sent."""
        cutoff = time.time() - max_age_hours * 3600
        cursor = self.conn.execute(
            "UPDATE outbox SET state = 'dead', last_error = 'expired'"
            " WHERE state = 'pending' AND created_at < ?",
            (cutoff,),
        )
        return cursor.rowcount

    def drain(self, client: HubClient, *, batch: int = 50) -> DrainReport:
        """Send pending messages in order until done, `batch` sent, or the hub is unavailable."""
        delivered = dead = 0
        stopped_by = None
        rows = self.conn.execute(
            "SELECT seq, message_id, method, path, body FROM outbox"
            " WHERE state = 'pending' ORDER BY seq LIMIT ?",
            (batch,),
        ).fetchall()
        for seq, message_id, method, path, body in rows:
            outcome = self._deliver(client, seq, method, path, json.loads(body))
            if outcome == "delivered":
                delivered += 1
            elif outcome == "dead":
                dead += 1
                log.warning("outbox_message_dead message_id=%s path=%s", message_id, path)
            else:
                stopped_by = outcome
                break
        return DrainReport(delivered, dead, self.depth(), stopped_by)

    def _deliver(self, client: HubClient, seq: int, method: str, path: str, body: Any) -> str:
        self.conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))
        try:
            if method == "POST":
                client.post(path, body)
            else:
                client.get(path)
        except HubUnavailable as exc:
            self._note(seq, str(exc)[:200])
            return "hub_unavailable"
        except HubRefused as exc:
            self._note(seq, exc.code)
            if exc.status in RETRY_LATER:
                return exc.code
            if exc.status not in SETTLED:
                self.conn.execute("UPDATE outbox SET state = 'dead' WHERE seq = ?", (seq,))
                return "dead"
        self.conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        return "delivered"

    def _note(self, seq: int, error: str) -> None:
        self.conn.execute("UPDATE outbox SET last_error = ? WHERE seq = ?", (error, seq))
