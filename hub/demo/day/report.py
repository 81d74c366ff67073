"""What a day reports: its event log and digest, what ran (events, faults, workers, checks),
the books at the end, and the first difference from the model, if there was one."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from hub.demo.day.clock import CLOSES, DAY, OPENS
from hub.demo.day.faults import KINDS


@dataclass
class Failure:
    step: int
    event: str
    problem: str
    trace: str = ""


@dataclass
class DayReport:
    seed: int
    events: int
    database: str
    log: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    workers: Counter[str] = field(default_factory=Counter)
    balances: dict[str, int] = field(default_factory=dict)
    accounts: int = 0
    failure: Failure | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.log).encode()).hexdigest()

    def summary(self) -> list[str]:
        kinds = Counter(key.partition(":")[0] for key in self.outcomes.elements())
        events = " · ".join(
            f"{kind} {n} ({_words(self.outcomes, kind)})" for kind, n in sorted(kinds.items())
        )
        lines = [
            f"SSC Hub district day, seed {self.seed}: {self.events} events, "
            f"{OPENS:%H:%M}-{CLOSES:%H:%M} on {DAY} (simulated), {self.database}",
            f"events   {events}",
            "faults   " + " · ".join(f"{k} {self.faults[k]}" for k in KINDS),
            "workers  " + " · ".join(f"{k} {n}" for k, n in sorted(self.workers.items())),
            "checks   "
            + " · ".join(f"{k} {n}" for k, n in sorted(self.checks.items()))
            + f" ({self.accounts} accounts)",
            "books    " + " · ".join(f"{k} ¥{v / 100:,.2f}" for k, v in self.balances.items()),
        ]
        if self.failure is not None:
            f = self.failure
            lines += [
                f"MISMATCH seed {self.seed}, step {f.step}: {f.event}",
                *(f"  {line}" for line in f.problem.splitlines()),
            ]
        else:
            lines.append("every check held")
        lines.append(f"digest   {self.digest}")
        return lines


def _words(outcomes: Counter[str], kind: str) -> str:
    return ", ".join(
        f"{key.partition(':')[2]} {n}"
        for key, n in sorted(outcomes.items())
        if key.startswith(kind + ":")
    )
