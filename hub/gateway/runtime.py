"""The gateway's in-process state and its background jobs.

One `GatewayRuntime` per application (on `app.state.gateway`): the terminal cache, the nonce
cache, the presence board, and the jobs that flush presence, sweep deadlines, follow the
change feed and step rollouts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from devices.protocol.messages import CommandMessage
from hub.config import Settings
from hub.db import Database
from hub.gateway import changes, presence, service
from hub.gateway import repository as repo
from hub.gateway.auth import NonceCache
from hub.gateway.directory import TerminalDirectory
from hub.gateway.presence import PresenceBoard
from hub.workers import PeriodicJob

log = structlog.get_logger()

Clock = Callable[[], datetime]
JITTER = 0.1  # +-10 %: after a hub restart, terminals must not all beat in the same second


class FinalRunJob(PeriodicJob):
    """A periodic job that runs once more when stopped (a clean shutdown flushes presence)."""

    def stop(self) -> None:
        super().stop()
        self.job()


class StartupJob(PeriodicJob):
    """Runs once, as soon as the hub starts, on its own thread."""

    def _loop(self) -> None:
        try:
            self.job()
        except Exception:
            log.exception("startup_job_failed", job=self.name)


class GatewayRuntime:
    def __init__(self, settings: Settings, database: Database, clock: Clock) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.directory = TerminalDirectory(database)
        self.nonces = NonceCache(
            settings.gateway_max_skew_seconds, settings.gateway_nonce_cache_max
        )
        self.presence = PresenceBoard()
        self._feed: changes.ChangeFeed | None = None

    def next_interval(self, interval: float) -> float:
        return round(interval * random.uniform(1 - JITTER, 1 + JITTER), 3)

    def hand_out_commands(self, terminal_id: int) -> list[CommandMessage]:
        """Mark this terminal's due commands sent (committed) and note when to look again."""
        now = self.clock()
        messages, due = self.database.transaction(
            lambda s: service.deliver_commands(s, terminal_id, now=now)
        )
        self.directory.set_commands_due(terminal_id, due)
        return messages

    def flush_presence(self) -> int:
        return presence.flush(self.database, self.presence)

    def sweep(self) -> int:
        """Flush, then move overdue terminals to stale/offline and close overdue commands."""
        self.flush_presence()
        now = self.clock()

        def work(session: Session) -> int:
            moved = presence.sweep(session, now)
            service.close_overdue_commands(session, now)
            changes.prune(session, now)
            return len(moved)

        return self.database.transaction(work)

    def follow_changes(self) -> None:
        """Start following the change feed from its end; anything cached before is dropped,
        so no change made meanwhile by another process can be missed."""
        with self.database.session() as session:
            self._feed = changes.ChangeFeed(repo.last_change_seq(session))
        self.directory.forget([(None, None)])

    def poll_changes(self) -> int:
        """Drop cache entries that other processes changed."""
        if self._feed is None:
            self.follow_changes()
            return 0
        with self.database.session() as session:
            found = self._feed.poll(session)
        if found:
            self.directory.forget(found)
        return len(found)

    def start_up(self) -> None:
        """At start: follow the change feed, then load every enrolled terminal."""
        if self._feed is None:
            self.follow_changes()
        self.directory.warm()

    def evaluate_rollouts(self) -> list[int]:
        now = self.clock()
        return self.database.transaction(lambda s: service.evaluate_rollouts(s, now))

    def periodic_jobs(self) -> list[PeriodicJob]:
        s = self.settings
        return [
            StartupJob("gateway-start-up", 0, self.start_up),
            FinalRunJob(
                "gateway-presence-flush", s.gateway_presence_flush_seconds, self.flush_presence
            ),
            PeriodicJob("gateway-presence-sweep", s.gateway_presence_sweep_seconds, self.sweep),
            PeriodicJob("gateway-change-feed", s.gateway_change_poll_seconds, self.poll_changes),
            PeriodicJob("gateway-rollouts", s.gateway_rollout_seconds, self.evaluate_rollouts),
        ]
