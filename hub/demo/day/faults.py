"""The faults of a day, all drawn from its seed.

Before each step the plan decides: whether the hub crashes before the step (its process state
lost, the database kept), which of the step's first requests is lost on the way back, delivered
twice, signed by a clock that is off by more than the allowed skew, or kills the hub in the
middle of its work (the hub dies before its n-th commit of that request), whether the hub dies
in the outbox run after the step, and whether the insurance platform sits on one of the step's
messages past the hub's timeout.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.orm import Session

LOST = "lost_response"
DUPLICATE = "duplicate_delivery"
SKEW = "clock_skew"
KILLED = "killed_mid_request"
CRASH = "hub_crash"
INSURANCE = "insurance_timeout"
KINDS = (LOST, DUPLICATE, SKEW, KILLED, CRASH, INSURANCE)

# Per step: the chance of each request fault, and how many of the step's first requests it
# may hit (an event sends 1-6 requests; past them, the workers' requests follow).
REQUEST_FAULTS = ((LOST, 0.06), (DUPLICATE, 0.05), (SKEW, 0.05), (KILLED, 0.02))
REACH = 3
CRASH_CHANCE = 0.015
OUTBOX_KILL_CHANCE = 0.02  # the hub dies while its outbox worker runs after the step
INSURANCE_CHANCE = 0.25  # of the steps that talk to the insurance platform
# `timeout`: the platform does nothing and keeps quiet; `timeout_after`: it does the work, then
# sits on the answer. Either way the hub gives up waiting and the outbox sends the message again.
PlatformFault = Literal["timeout", "timeout_after"]
PLATFORM_FAULTS: tuple[PlatformFault, ...] = ("timeout", "timeout_after")
# The platform's messages each such step sends: identification and settlement, or a revoke.
PLATFORM_MESSAGES = {
    "checkout": ("1101", "2201", "2204", "2206", "2207"),
    "revoke": ("2208",),
}


@dataclass(frozen=True)
class RequestFault:
    kind: str
    detail: int  # skew seconds; the commit a kill falls before; 1: a duplicate after a restart


@dataclass
class StepFaults:
    """One step's faults, and which of them fired."""

    at: dict[int, RequestFault] = field(default_factory=dict)  # request ordinal -> fault
    crash_first: bool = False
    insurance: tuple[PlatformFault, str] | None = None  # (simulator fault, infno)
    outbox_kill: int = 0  # the outbox run dies before its n-th commit (0: it does not)
    sent: int = 0
    fired: list[str] = field(default_factory=list)  # what happened, for the event log
    kinds: list[str] = field(default_factory=list)  # the kind of each, for the report

    def skew(self) -> int:
        """Seconds the clock signing the request about to go out is off (0 mostly)."""
        fault = self.at.get(self.sent)
        if fault is None or fault.kind != SKEW:
            return 0
        del self.at[self.sent]
        self.note(SKEW, f"{SKEW}{fault.detail:+d}s")
        return fault.detail

    def next_request(self) -> RequestFault | None:
        """The fault of the request going out now, if any; counts the request."""
        fault = self.at.pop(self.sent, None)
        self.sent += 1
        if fault is None or fault.kind == SKEW:  # a skew only hits a signed request
            return None
        return fault

    def note(self, kind: str, text: str = "") -> None:
        self.fired.append(text or kind)
        self.kinds.append(kind)


class FaultPlan:
    """Draws each step's faults from the day's generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def draw(self, event: str) -> StepFaults:
        rng = self.rng
        step = StepFaults(crash_first=rng.random() < CRASH_CHANCE)
        for kind, chance in REQUEST_FAULTS:
            if rng.random() >= chance:
                continue
            ordinal = rng.randrange(REACH)
            if ordinal in step.at:
                continue
            if kind == SKEW:
                detail = rng.choice((-1, 1)) * rng.randint(301, 3600)
            else:  # the commit a kill falls before; a duplicate's 1: it comes after a restart
                detail = rng.randint(1, 3)
            step.at[ordinal] = RequestFault(kind, detail)
        if rng.random() < OUTBOX_KILL_CHANCE:
            step.outbox_kill = rng.randint(1, 6)
        messages = PLATFORM_MESSAGES.get(event)
        if messages and rng.random() < INSURANCE_CHANCE:
            step.insurance = (rng.choice(PLATFORM_FAULTS), rng.choice(messages))
        return step


class HubKilled(Exception):
    """The simulated hub process died here: the transaction in progress never commits."""


class KillSwitch:
    """Kills the hub before the n-th commit after it is armed (a session `before_commit` hook,
    so the death falls at the same point of the same request on every replay). A dead hub
    commits nothing more: whatever its code does after the blow, no later commit lands."""

    def __init__(self) -> None:
        self.countdown = 0
        self.fired = False

    def arm(self, commits: int) -> None:
        self.countdown, self.fired = commits, False

    def disarm(self) -> None:
        self.countdown = 0

    def before_commit(self, _session: Session) -> None:
        if self.fired:
            raise HubKilled("the hub is dead")
        if self.countdown == 0:
            return
        self.countdown -= 1
        if self.countdown == 0:
            self.fired = True
            raise HubKilled("the hub died before this commit")
