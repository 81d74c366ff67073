"""The outbox worker: claims due messages, hands each to its topic's handler, records the outcome.

Several workers (threads or processes) may run against one database: each claim takes disjoint
rows under a lease, and only the claim holder can record a result. Handlers run outside any
database transaction, so a slow receiver never holds a lock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from hub.db import Database
from hub.outbox import service
from hub.outbox.models import MessageState
from hub.outbox.service import Delivery, DeliveryFailed, Handler, RetryPolicy

log = structlog.get_logger()


@dataclass(frozen=True)
class _Outcome:
    delivery: Delivery
    error: str | None = None
    permanent: bool = False


class OutboxWorker:
    """Delivers due messages of the registered topics; `run_once` is one poll."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        handlers: Mapping[str, Handler] | None = None,
        *,
        policy: RetryPolicy | None = None,
        lease_seconds: float = 60.0,
        batch: int = 100,
        concurrency: int = 8,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.policy = policy or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.concurrency = concurrency
        self.rng = rng or random.Random()

    def register(self, topic: str, handler: Handler) -> None:
        """Deliver messages of `topic` with `handler` (one handler per topic)."""
        if topic in self.handlers:
            raise ValueError(f"a handler for {topic!r} is registered already")
        self.handlers[topic] = handler

    def close(self) -> None:
        """Close every handler that holds connections (HTTP clients) at shutdown."""
        for handler in self.handlers.values():
            close = getattr(handler, "close", None)
            if close is not None:
                close()

    def run_once(self) -> int:
        """Claim one batch, deliver it, record every outcome; returns how many were attempted."""
        deliveries = self.db.transaction(
            lambda s: service.claim(
                s,
                self.handlers.keys(),
                self.clock(),
                limit=self.batch,
                lease_seconds=self.lease_seconds,
            )
        )
        if not deliveries:
            return 0
        outcomes = self._deliver_all(deliveries)
        self._record(outcomes)
        return len(deliveries)

    def drain(self, max_batches: int = 100) -> int:
        """Poll until nothing is due (or `max_batches`); for tests, the CLI and catching up."""
        total = 0
        for _ in range(max_batches):
            done = self.run_once()
            total += done
            if done < self.batch:
                break
        return total

    def _deliver_all(self, deliveries: list[Delivery]) -> list[_Outcome]:
        if len(deliveries) == 1 or self.concurrency <= 1:
            return [self._deliver(d) for d in deliveries]
        with ThreadPoolExecutor(min(self.concurrency, len(deliveries))) as pool:
            return list(pool.map(self._deliver, deliveries))

    def _deliver(self, delivery: Delivery) -> _Outcome:
        try:
            self.handlers[delivery.topic](delivery)
        except DeliveryFailed as exc:
            return _Outcome(delivery, exc.reason, exc.permanent)
        except Exception as exc:
            # A handler bug must not stop the other deliveries: log it, retry it later.
            log.exception("outbox_handler_crashed", topic=delivery.topic, message_id=delivery.id)
            return _Outcome(delivery, f"handler error: {type(exc).__name__}")
        return _Outcome(delivery)

    def _record(self, outcomes: list[_Outcome]) -> None:
        now = self.clock()
        delivered = [o.delivery for o in outcomes if o.error is None]

        def work(session: Session) -> list[MessageState | None]:
            recorded = service.record_delivered(session, delivered, now)
            return [
                (MessageState.DELIVERED if o.delivery.id in recorded else None)
                if o.error is None
                else service.record_failed(
                    session,
                    o.delivery,
                    o.error,
                    now,
                    self.policy,
                    permanent=o.permanent,
                    rng=self.rng,
                )
                for o in outcomes
            ]

        for outcome, state in zip(outcomes, self.db.transaction(work), strict=True):
            self._log(outcome, state)

    def _log(self, outcome: _Outcome, state: MessageState | None) -> None:
        d = outcome.delivery
        fields = {"topic": d.topic, "message_id": d.id, "attempt": d.attempt}
        if state is None:
            log.info("outbox_claim_lost", **fields)
        elif state == MessageState.DELIVERED:
            log.debug("outbox_delivered", **fields)
        elif state == MessageState.DEAD:
            log.warning("outbox_dead_letter", error=outcome.error, **fields)
        else:
            log.info("outbox_retry_scheduled", error=outcome.error, **fields)
