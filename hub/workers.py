"""Periodic background jobs of the hub process (hold expiry, sweeps, deliveries)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger()


class PeriodicJob:
    """Runs `job` every `interval` seconds on its own thread until stopped.

    A failing run is logged and retried at the next tick: one bad row must not stop the sweeper.
    """

    def __init__(self, name: str, interval: float, job: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.job()
            except Exception:
                log.exception("periodic_job_failed", job=self.name)
