"""The running configuration on disk, switched atomically with a way back.

`current.json` is what the terminal runs; `last_good.json` is the one before it. Applying a
new configuration checks its hash and loads it before anything is written, then swaps files
with `os.replace` (atomic on POSIX), then activates it; if activation fails (e.g. the new hub
URL does not answer) the last good one is put back. At start, a `current.json` that does not
load (a torn write, a bad disk block) falls back to `last_good.json`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devices.protocol.firmware import TerminalConfig, config_hash
from devices.protocol.messages import ConfigEnvelope

log = logging.getLogger(__name__)


class ConfigRejected(Exception):
    """A configuration that cannot be run; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class LoadedConfig:
    envelope: ConfigEnvelope
    config: TerminalConfig

    @property
    def hash(self) -> str:
        return self.envelope.hash


def load(envelope: ConfigEnvelope) -> LoadedConfig:
    """Check a configuration's hash and parse it; raises ConfigRejected."""
    if config_hash(envelope.document) != envelope.hash:
        raise ConfigRejected("hash_mismatch", "the document does not match its hash")
    try:
        config = TerminalConfig.model_validate(envelope.document)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()[:5])
        raise ConfigRejected("invalid", f"the document does not load: {fields}") from exc
    return LoadedConfig(envelope, config)


class ConfigSlot:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.current_path = directory / "current.json"
        self.last_good_path = directory / "last_good.json"

    def current(self) -> LoadedConfig | None:
        """The running configuration; falls back to the last good one if current is broken."""
        for path in (self.current_path, self.last_good_path):
            loaded = self._read(path)
            if loaded is not None:
                if path is self.last_good_path:
                    log.warning("config_fallback_to_last_good")
                    os.replace(self.last_good_path, self.current_path)
                return loaded
        return None

    def apply(
        self, envelope: ConfigEnvelope, activate: Callable[[LoadedConfig], None]
    ) -> LoadedConfig:
        """Switch to `envelope`; on any failure the previous configuration stays in force.

        `activate` puts the configuration to use and raises if it cannot (ConfigRejected or
        any exception); the previous one is then restored and activated again.
        """
        candidate = load(envelope)
        previous = self.current()
        if previous is not None and previous.hash == candidate.hash:
            return previous
        if previous is not None:
            _write_atomically(self.last_good_path, previous.envelope.model_dump())
        _write_atomically(self.current_path, envelope.model_dump())
        try:
            activate(candidate)
        except Exception as exc:
            self._roll_back(previous, activate)
            if isinstance(exc, ConfigRejected):
                raise
            raise ConfigRejected("activation_failed", str(exc)[:200]) from exc
        return candidate

    def _roll_back(
        self, previous: LoadedConfig | None, activate: Callable[[LoadedConfig], None]
    ) -> None:
        log.warning("config_rolled_back")
        if previous is None:
            self.current_path.unlink(missing_ok=True)
            return
        os.replace(self.last_good_path, self.current_path)
        activate(previous)

    def _read(self, path: Path) -> LoadedConfig | None:
        try:
            envelope = ConfigEnvelope.model_validate_json(path.read_bytes())
            return load(envelope)
        except FileNotFoundError:
            return None
        except (ValidationError, ConfigRejected, ValueError):
            log.warning("config_unreadable path=%s", path.name)
            return None


def _write_atomically(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w") as handle:
        json.dump(content, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    # The rename itself is durable only once the directory entry is on disk.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
