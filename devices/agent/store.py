"""What the agent remembers across restarts: its identity, its key, the commands it has seen.

The private key lives in a file only its user can read. (A production terminal keeps it in a
secure element or TPM; the file stands in for that here.) The hub only ever gets the public
half. During a key rotation the new key is written to `terminal_key.next.pem` before the hub
is told, so a lost answer cannot leave the terminal holding only a revoked key.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands_seen (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_at REAL NOT NULL,
    outcome TEXT
);
"""


@dataclass(frozen=True)
class Identity:
    """Who this terminal is, as the hub told it at enrollment."""

    terminal_id: int
    unit_id: int
    institution_code: str
    kind: str
    serial: str
    model: str
    hub_url: str
    heartbeat_interval_seconds: float


class AgentStore:
    def __init__(self, conn: sqlite3.Connection, directory: Path) -> None:
        self.conn = conn
        self.directory = directory
        self.key_path = directory / "terminal_key.pem"
        self.next_key_path = directory / "terminal_key.next.pem"
        conn.executescript(SCHEMA)

    # --- settings ---

    def get(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def identity(self) -> Identity | None:
        raw = self.get("identity")
        return None if raw is None else Identity(**json.loads(raw))

    def save_identity(self, identity: Identity) -> None:
        self.put("identity", json.dumps(asdict(identity)))

    def next_sequence(self) -> int:
        sequence = int(self.get("sequence") or 0) + 1
        self.put("sequence", str(sequence))
        return sequence

    # --- keys ---

    def private_key(self) -> Ed25519PrivateKey:
        return _read_key(self.key_path)

    def save_key(self, key: Ed25519PrivateKey) -> None:
        _write_key(self.key_path, key)

    def stage_next_key(self, key: Ed25519PrivateKey) -> None:
        _write_key(self.next_key_path, key)

    def staged_key(self) -> Ed25519PrivateKey | None:
        return _read_key(self.next_key_path) if self.next_key_path.exists() else None

    def promote_staged_key(self) -> Ed25519PrivateKey:
        """The hub accepted the staged key: it becomes the terminal's key."""
        os.replace(self.next_key_path, self.key_path)
        return self.private_key()

    # --- commands seen ---

    def first_sight(self, command_id: str, kind: str) -> bool:
        """Record a command id; False when it was seen before (a re-delivery to drop)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO commands_seen (id, kind, received_at) VALUES (?, ?, ?)",
            (command_id, kind, time.time()),
        )
        return cursor.rowcount == 1

    def record_outcome(self, command_id: str, outcome: str) -> None:
        self.conn.execute(
            "UPDATE commands_seen SET outcome = ? WHERE id = ?", (outcome, command_id)
        )


def _write_key(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _read_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the terminal key is not an Ed25519 key")
    return key
