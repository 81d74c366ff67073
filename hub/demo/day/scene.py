"""What the day's events share: the generator, the clock, the model's books, the district, and
what happened so far that later events build on (payments to refund, loans to undo, checkouts
to revoke or still in flight)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.config import Settings
from hub.demo.day.clock import SimClock
from hub.demo.day.model import Books
from hub.demo.day.network import Hub, Network
from hub.demo.day.outside import Outside
from hub.demo.day.world import Card, District, Unit


class Mismatch(Exception):
    """The hub did something the model says it should not have."""


@dataclass(frozen=True)
class Outcome:
    word: str  # counted per event kind in the report: "approved", "declined", ...
    detail: str = ""


@dataclass
class Payment:
    """A captured payment its unit may refund."""

    payment_id: int
    unit: Unit
    card: Card
    captured: int
    refunded: int = 0


@dataclass
class Loan:
    external_id: str
    card: Card
    amount: int
    undone: bool = False


@dataclass
class Checkout:
    """A checkout as the cashier's window follows it."""

    checkout_id: int
    unit: Unit
    card: Card
    bill_no: str
    stage: str = "identifying"  # then "paying", "completed", "revoking", "revoked", "ended"
    hold: str | None = None  # the model's name of the self-pay hold
    setl_id: str | None = None


@dataclass
class Scene:
    rng: random.Random
    clock: SimClock
    books: Books
    district: District
    outside: Outside
    hub: Hub
    network: Network
    settings: Settings
    payments: list[Payment] = field(default_factory=list)
    loans: list[Loan] = field(default_factory=list)
    checkouts: list[Checkout] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    _sequence: int = 0

    def expect(self, holds: bool, what: str) -> None:
        """One check of an answer against the model; a failed one stops the day."""
        self.checks["outcomes"] += 1
        if not holds:
            raise Mismatch(what)

    def next_number(self) -> int:
        self._sequence += 1
        return self._sequence

    def hold_until(self) -> datetime:
        return self.clock() + timedelta(seconds=self.settings.card_hold_seconds)

    def in_flight(self) -> list[Checkout]:
        """The checkouts the windows are waiting on (the platform has not answered yet)."""
        return [c for c in self.checkouts if c.stage in ("identifying", "paying", "revoking")]
