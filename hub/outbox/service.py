"""The outbox's rules: enqueue with the state change, claim, record outcomes, re-send.

A domain that must tell another system something calls `enqueue` in the same transaction as
the state change, so the message exists exactly when the change does. `OutboxWorker`
(hub/outbox/worker.py) delivers it later through the handler registered for its topic in
hub/app.py:_outbox_handlers: a `Handler` gets a `Delivery` and returns once the receiver has
it, or raises `DeliveryFailed` (retried with backoff; `permanent=True` dead-letters at once).
Delivery is at least once: receivers de-duplicate on `event_id`. `resend` puts any message
back in the queue with a fresh budget (the CLI and the console call it).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.outbox import repository as repo
from hub.outbox.errors import MessageNotFound
from hub.outbox.models import MessageState, OutboxMessage

MAX_ERROR_CHARS = 255


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, and how many attempts before the dead-letter state.

    The defaults keep retrying for well over an hour (about 2.8 h nominal, at least 2.2 h with
    the jitter), so a receiver that is down for an hour gets every message once it is back.
    """

    max_attempts: int = 24
    base_seconds: float = 2.0
    cap_seconds: float = 600.0
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        nominal = min(self.cap_seconds, self.base_seconds * 2 ** min(attempt - 1, 32))
        factor = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return float(nominal * factor)


@dataclass(frozen=True)
class Delivery:
    """One claimed message, as a topic's handler sees it."""

    id: int
    topic: str
    event_id: str
    payload: dict[str, Any]
    attempt: int
    claim_token: str


Handler = Callable[[Delivery], None]
"""Delivers one message of a topic; returns once the receiver has accepted it, raises otherwise.

Registered per topic on the `OutboxWorker` (hub/outbox/worker.py) in hub/app.py.
"""


class DeliveryFailed(Exception):
    """A handler's refusal: retried with backoff, or dead-lettered at once when `permanent`.

    The reason is stored and logged: it must never hold a secret.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def enqueue(
    session: Session, *, topic: str, event_id: str, payload: dict[str, Any], now: datetime
) -> OutboxMessage:
    """Queue a message in the caller's transaction; due at once.

    `event_id` is unique: enqueueing the same event again returns the stored message, so a
    flow that runs twice still sends once.
    """
    (message,) = enqueue_many(session, topic=topic, payloads={event_id: payload}, now=now)
    return message


def enqueue_many(
    session: Session, *, topic: str, payloads: Mapping[str, dict[str, Any]], now: datetime
) -> list[OutboxMessage]:
    """`enqueue` for several events (event id -> payload) with one look-up and one insert."""
    stored = repo.by_event_ids(session, payloads.keys())
    new = [
        OutboxMessage(
            topic=topic,
            event_id=event_id,
            payload=payload,
            state=MessageState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for event_id, payload in payloads.items()
        if event_id not in stored
    ]
    repo.add_all(session, new)
    stored |= {m.event_id: m for m in new}
    return [stored[event_id] for event_id in payloads]


def claim(
    session: Session,
    topics: Collection[str],
    now: datetime,
    *,
    limit: int,
    lease_seconds: float,
) -> list[Delivery]:
    """Claim due messages of `topics` for one worker; each is leased for `lease_seconds`."""
    if not topics:
        return []
    token = uuid.uuid4().hex
    rows = repo.claim_due(
        session, topics, now, limit, now + timedelta(seconds=lease_seconds), token
    )
    return [
        Delivery(r.id, r.topic, r.event_id, r.payload, r.attempts, token)
        for r in sorted(rows, key=lambda r: r.id)
    ]


def record_delivered(session: Session, deliveries: Sequence[Delivery], now: datetime) -> set[int]:
    """Mark these deliveries of one claim delivered; returns the ids whose claim still held
    (a claim is lost when its lease ran out and another worker took the message)."""
    if not deliveries:
        return set()
    tokens = {d.claim_token for d in deliveries}
    if len(tokens) != 1:
        raise ValueError("deliveries of one claim only")
    values = {"state": MessageState.DELIVERED.value, "delivered_at": now, "last_error": None}
    return repo.finish(session, [d.id for d in deliveries], tokens.pop(), values)


def record_failed(
    session: Session,
    delivery: Delivery,
    error: str,
    now: datetime,
    policy: RetryPolicy,
    *,
    permanent: bool = False,
    rng: random.Random | None = None,
) -> MessageState | None:
    """Schedule the next attempt, or dead-letter the message; None when the claim was lost."""
    dead = permanent or delivery.attempt >= policy.max_attempts
    values: dict[str, Any] = {"last_error": error[:MAX_ERROR_CHARS]}
    if dead:
        values["state"] = MessageState.DEAD.value
    else:
        values["next_attempt_at"] = now + timedelta(seconds=policy.delay(delivery.attempt, rng))
    if not repo.finish(session, [delivery.id], delivery.claim_token, values):
        return None
    return MessageState.DEAD if dead else MessageState.PENDING


def resend(session: Session, message_id: int, now: datetime, *, actor: str) -> OutboxMessage:
    """Put a message back in the queue with a fresh retry budget (dead-lettered or not)."""
    message = get_message(session, message_id)
    previous = message.state
    message.state = MessageState.PENDING.value
    message.attempts = 0
    message.next_attempt_at = now
    message.claim_token = None  # a delivery still in flight can no longer record its result
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="outbox.resent",
        subject=f"outbox:{message.id}",
        now=now,
        details={"topic": message.topic, "event_id": message.event_id, "was": previous},
    )
    return message


def get_message(session: Session, message_id: int) -> OutboxMessage:
    message = repo.get(session, message_id)
    if message is None:
        raise MessageNotFound(message=f"no outbox message {message_id}")
    return message


def find_message(session: Session, event_id: str) -> OutboxMessage | None:
    return repo.by_event_id(session, event_id)


def messages(
    session: Session,
    *,
    state: str | None = None,
    topic: str | None = None,
    event_id_prefix: str | None = None,
    limit: int = 100,
) -> Sequence[OutboxMessage]:
    """Newest first, filtered by state (a MessageState value), topic and event id prefix."""
    return repo.listing(
        session,
        state=MessageState(state).value if state else None,
        topic=topic,
        event_id_prefix=event_id_prefix,
        limit=limit,
    )
