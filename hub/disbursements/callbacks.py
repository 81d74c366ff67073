"""Delivering outcomes to the loan system: the outbox handler of the callback topic."""

from __future__ import annotations

import threading
import time

from hub.db import Database
from hub.disbursements import clients, service
from hub.outbox.service import Delivery, DeliveryFailed
from integrations.loans.client import (
    CallbackRejected,
    ClientKey,
    LoanSystem,
    LoanSystemUnreachable,
    canonical_json,
)

TARGET_TTL_SECONDS = 30.0


class CallbackSender:
    """Signs one queued outcome with the client's newest key and sends it to its callback URL.

    The body was fixed when the outcome was queued, so every retry sends the same event; only
    the signature's timestamp is fresh. Where a client's callbacks go, and with which key, is
    looked up at most every TARGET_TTL_SECONDS: a rotated key keeps working for far longer.
    """

    def __init__(self, db: Database, loan_system: LoanSystem, rules: service.Rules) -> None:
        self.db = db
        self.loan_system = loan_system
        self.rules = rules
        self._targets: dict[int, tuple[float, str, ClientKey]] = {}
        self._lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> None:
        url, key = self._target(delivery.payload["client_id"])
        body = canonical_json(delivery.payload["event"])
        try:
            self.loan_system.send_callback(url, key, delivery.event_id, body)
        except LoanSystemUnreachable as exc:
            raise DeliveryFailed(f"loan system unreachable ({exc})") from exc
        except CallbackRejected as exc:
            raise DeliveryFailed(str(exc), permanent=exc.permanent) from exc

    def close(self) -> None:
        close = getattr(self.loan_system, "close", None)
        if close is not None:
            close()

    def _target(self, client_id: int) -> tuple[str, ClientKey]:
        with self._lock:
            cached = self._targets.get(client_id)
        if cached and time.monotonic() - cached[0] < TARGET_TTL_SECONDS:
            return cached[1], cached[2]
        with self.db.session() as session:
            url, key = clients.callback_target(session, client_id, self.rules)
        with self._lock:
            self._targets[client_id] = (time.monotonic(), url, key)
        return url, key
