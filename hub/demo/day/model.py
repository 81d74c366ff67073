"""The books as the day's model keeps them: what every ledger account should hold.

Accounts are named by (kind, owner), as the ledger opens them on first use. The model knows
nothing of the hub's code: it is told what each operation should do (a transfer, a hold, its
capture, void or expiry), decides from its own balances whether a card can pay, and is compared
with the ledger after every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from datetime import datetime

Key = tuple[str, str]  # (account kind, owner reference)
FIELDS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


@dataclass
class Counters:
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0


@dataclass(frozen=True)
class Hold:
    debit: Key
    credit: Key
    amount: int
    expires_at: datetime


def name(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


@dataclass
class Books:
    """Per-account counters, the holds standing, and which accounts may not be overdrawn."""

    limited: set[Key] = field(default_factory=set)  # debits must not exceed credits
    accounts: dict[Key, Counters] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)  # by the simulation's own hold name

    def _of(self, key: Key) -> Counters:
        return self.accounts.setdefault(key, Counters())

    def available(self, key: Key) -> int:
        c = self._of(key)
        return c.credits_posted - c.debits_posted - c.debits_pending

    def posted(self, key: Key) -> int:
        c = self._of(key)
        return c.credits_posted - c.debits_posted

    def can_pay(self, key: Key, amount: int) -> bool:
        return key not in self.limited or self.available(key) >= amount

    def transfer(self, debit: Key, credit: Key, amount: int) -> None:
        if amount <= 0:
            return
        self._of(debit).debits_posted += amount
        self._of(credit).credits_posted += amount

    def hold(self, hold_name: str, debit: Key, credit: Key, amount: int, expires: datetime) -> None:
        assert hold_name not in self.holds, f"hold {hold_name} taken twice"
        self.holds[hold_name] = Hold(debit, credit, amount, expires)
        self._of(debit).debits_pending += amount
        self._of(credit).credits_pending += amount

    def release(self, hold_name: str) -> Hold:
        """The hold ends (void, expiry, or before its posting); its amount is free again."""
        hold = self.holds.pop(hold_name)
        self._of(hold.debit).debits_pending -= hold.amount
        self._of(hold.credit).credits_pending -= hold.amount
        return hold

    def post(self, hold_name: str, amount: int | None = None) -> None:
        """Capture a hold in full or in part; the rest goes back."""
        hold = self.release(hold_name)
        self.transfer(hold.debit, hold.credit, hold.amount if amount is None else amount)

    def expire(self, now: datetime) -> int:
        """Release the holds whose time is up, as the ledger's sweep does (expires_at <= now)."""
        due = [n for n, h in self.holds.items() if h.expires_at <= now]
        for hold_name in due:
            self.release(hold_name)
        return len(due)

    def differences(self, ledger: dict[Key, Counters]) -> list[str]:
        """Every counter where the ledger and the model disagree (an absent account is zero)."""
        found = []
        for key in sorted(set(ledger) | set(self.accounts)):
            actual, wanted = ledger.get(key, Counters()), self.accounts.get(key, Counters())
            for label, a, w in zip(FIELDS, astuple(actual), astuple(wanted), strict=True):
                if a != w:
                    found.append(f"{name(key)} {label}: ledger {a}, model {w} ({a - w:+d})")
        return found

    def totals(self, kinds: Iterable[str]) -> dict[str, int]:
        """Posted balance (credits - debits) summed per account kind."""
        wanted = set(kinds)
        sums: dict[str, int] = dict.fromkeys(sorted(wanted), 0)
        for key in self.accounts:
            if key[0] in wanted:
                sums[key[0]] += self.posted(key)
        return sums
