"""The ledger's rules: accounts, transfers, holds, idempotency and the invariant check.

Modelled on TigerBeetle. A batch locks every account it touches (in id order), applies its
transfers in memory in order, rolls back a failed linked chain in memory, then writes
everything with a handful of set-based statements. Other domains call this module only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.ledger import repository as repo
from hub.ledger.errors import OK, STATE_DEPENDENT, LedgerError
from hub.ledger.models import Account, AccountStatus, HoldState, Transfer, TransferFlag
from hub.ledger.schemas import AccountIn, BalanceOut, TransferIn, TransferResult

MAX_AMOUNT = 2**63 - 1


# Accounts.


def create_account(session: Session, spec: AccountIn, now: datetime) -> Account:
    if repo.find_account(session, spec.kind, spec.owner_ref) is not None:
        raise LedgerError("account_exists", f"a {spec.kind} account for this owner exists")
    return _open(session, spec, now)


def ensure_account(session: Session, spec: AccountIn, now: datetime) -> Account:
    """The account of this kind and owner, opened on first use. Two first uses racing: the
    loser's insert meets the unique key, and the transaction boundary runs it again to find
    the winner's account (never `account_exists`)."""
    existing = repo.find_account(session, spec.kind, spec.owner_ref)
    return existing or _open(session, spec, now)


def _open(session: Session, spec: AccountIn, now: datetime) -> Account:
    if spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits:
        raise LedgerError("flags_are_mutually_exclusive")
    return repo.add_account(session, Account(**spec.model_dump(), created_at=now))


def get_account(session: Session, account_id: int) -> Account:
    account = repo.get_account(session, account_id)
    if account is None:
        raise LedgerError("account_not_found")
    return account


def list_accounts(
    session: Session, kind: str | None = None, cursor: int = 0, limit: int = 100
) -> tuple[Sequence[Account], int | None]:
    """Accounts in id order, optionally of one kind; the cursor is the last id seen."""
    items = repo.list_accounts(session, kind, cursor, limit)
    return items, (items[-1].id if len(items) == limit else None)


def find_account(session: Session, kind: str, owner_ref: str) -> Account | None:
    return repo.find_account(session, kind, owner_ref)


def set_account_status(session: Session, account_id: int, status: AccountStatus) -> Account:
    account = get_account(session, account_id)
    account.status = status.value
    session.flush()
    return account


def balance(account: Account) -> BalanceOut:
    posted = account.credits_posted - account.debits_posted
    return BalanceOut(
        account_id=account.id,
        currency=account.currency,
        posted=posted,
        available=posted - account.debits_pending,
        debits_pending=account.debits_pending,
        credits_pending=account.credits_pending,
    )


# Transfers.


def create_transfers(
    session: Session, batch: Sequence[TransferIn], now: datetime
) -> list[TransferResult]:
    """Apply a batch in order; one result per transfer, like TigerBeetle's create_transfers."""
    run = _Batch.load(session, batch, now)
    codes = run.apply_all(batch)
    run.write(session)
    return [
        TransferResult(index=i, id=t.id, result=c)
        for i, (t, c) in enumerate(zip(batch, codes, strict=True))
    ]


def apply_transfer(session: Session, spec: TransferIn, now: datetime) -> None:
    """One transfer for another domain's flow, or a LedgerError; `transfer` without reading
    the stored row back.

    On refusal nothing is written here; the caller's boundary rolls its own work back.
    """
    (result,) = create_transfers(session, [spec], now)
    if not result.ok:
        raise LedgerError(result.result)


def transfer(session: Session, spec: TransferIn, now: datetime) -> Transfer:
    """One transfer for another domain's flow: the stored transfer, or a LedgerError."""
    apply_transfer(session, spec, now)
    stored = repo.get_transfer(session, spec.id)
    assert stored is not None
    return stored


def get_transfer(session: Session, transfer_id: str) -> Transfer:
    stored = repo.get_transfer(session, transfer_id)
    if stored is None:
        raise LedgerError("transfer_not_found")
    return stored


def transfers_for(session: Session, reference: str) -> Sequence[Transfer]:
    return repo.transfers_by_reference(session, reference)


def account_transfers(
    session: Session, account_id: int, cursor: int = 0, limit: int = 100
) -> tuple[Sequence[Transfer], int | None]:
    get_account(session, account_id)
    items = repo.account_transfers(session, account_id, cursor, limit)
    next_cursor = items[-1].seq if len(items) == limit else None
    return items, next_cursor


def expire_holds(session: Session, now: datetime, limit: int = 500) -> int:
    """Release holds whose timeout has passed; returns how many expired."""
    due = repo.due_holds(session, now, limit)
    if not due:
        return 0
    account_ids = {r.debit_account_id for r in due} | {r.credit_account_id for r in due}
    run = _Batch(now=now)
    run.load_accounts(session, account_ids)
    ids = [r.transfer_id for r in due]
    found = repo.stored(session, ids, ())  # the holds re-read under the account locks
    run.known.update(found.transfers)
    run.holds.update(found.holds)
    expired = sum(run.expire(transfer_id) for transfer_id in ids)
    run.write(session)
    return expired


# The batch engine.


@dataclass
class _Counters:
    currency: str
    status: str
    debits_limited: bool
    credits_limited: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


@dataclass
class _Batch:
    now: datetime
    accounts: dict[int, _Counters] = field(default_factory=dict)
    known: dict[str, Any] = field(default_factory=dict)  # transfers by id, stored or new
    holds: dict[str, Any] = field(default_factory=dict)  # hold rows by pending transfer id
    failed: dict[str, str] = field(default_factory=dict)
    new_transfers: list[dict[str, Any]] = field(default_factory=list)
    new_holds: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_failed: dict[str, str] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, session: Session, batch: Sequence[TransferIn], now: datetime) -> _Batch:
        run = cls(now=now)
        ids = {t.id for t in batch}
        # Every pending id, also one among `ids`: a stored transfer re-sent in the batch can be
        # the pending transfer another of its transfers resolves, and its accounts need locks.
        pending_ids = {t.pending_id for t in batch if t.pending_id}
        account_ids = {a for t in batch for a in (t.debit_account_id, t.credit_account_id) if a}
        # The pending transfers' accounts are locked too (the lock statement looks them up).
        run.load_accounts(session, account_ids, pending_ids)
        # Under the locks: a racing batch on the same accounts has committed or not started.
        found = repo.stored(session, ids, pending_ids)
        while missed := run.unlocked(found, pending_ids):
            # A pending transfer committed after the lock statement looked for it: lock its
            # accounts too (out of id order only in this race: a deadlock is detected and the
            # batch runs again) and read again under all the locks.
            locked = len(run.accounts)
            run.load_accounts(session, missed)
            assert len(run.accounts) > locked  # accounts are never deleted
            found = repo.stored(session, ids, pending_ids)
        run.known.update(found.transfers)
        run.holds.update(found.holds)
        run.failed.update(found.failed)
        return run

    def unlocked(self, found: repo.Stored, pending_ids: set[str]) -> set[int]:
        """Accounts of stored pending transfers that this batch has not locked."""
        named = (found.transfers[p] for p in pending_ids & found.transfers.keys())
        accounts = {a for p in named for a in (p.debit_account_id, p.credit_account_id)}
        return accounts - self.accounts.keys()

    def load_accounts(
        self, session: Session, ids: Iterable[int], pending_ids: Iterable[str] = ()
    ) -> None:
        for row in repo.lock_accounts(session, set(ids), set(pending_ids)):
            self.accounts[row.id] = _Counters(
                row.currency,
                row.status,
                row.debits_must_not_exceed_credits,
                row.credits_must_not_exceed_debits,
                row.debits_posted,
                row.credits_posted,
                row.debits_pending,
                row.credits_pending,
            )

    def apply_all(self, batch: Sequence[TransferIn]) -> list[str]:
        codes: list[str] = []
        i = 0
        while i < len(batch):
            end = i
            while end < len(batch) and batch[end].linked:
                end += 1
            if end == len(batch) and batch[-1].linked:
                codes += ["linked_event_chain_open"] * (end - i)
                break
            codes += self._apply_chain(batch[i : end + 1])
            i = end + 1
        return codes

    def _apply_chain(self, chain: Sequence[TransferIn]) -> list[str]:
        """A lone transfer is a chain of one; a chain commits or fails as one."""
        saved = self._snapshot() if len(chain) > 1 else None
        codes: list[str] = []
        for position, t in enumerate(chain):
            code = self._apply(t)
            if code in OK:
                codes.append(code)
                continue
            if saved is not None:
                self._restore(saved)
            self._remember_failure(t.id, code)
            failed = ["linked_event_failed"] * len(chain)
            failed[position] = code
            return failed
        return codes

    def _remember_failure(self, transfer_id: str, code: str) -> None:
        if code in STATE_DEPENDENT and transfer_id not in self.failed:
            self.failed[transfer_id] = code
            self.new_failed[transfer_id] = code

    def _apply(self, t: TransferIn) -> str:
        if t.id in self.failed:
            return self.failed[t.id]
        invalid = _invalid(t)
        if invalid:
            return invalid
        if t.id in self.known:
            return "exists" if _same(self.known[t.id], t) else "exists_with_different_fields"
        if t.post_pending or t.void_pending:
            return self._resolve(t)
        return self._post(t)

    def _post(self, t: TransferIn) -> str:
        assert t.debit_account_id is not None and t.credit_account_id is not None
        assert t.amount is not None
        debit = self.accounts.get(t.debit_account_id)
        credit = self.accounts.get(t.credit_account_id)
        refusal = _refusal(t, debit, credit)
        if refusal:
            return refusal
        assert debit is not None and credit is not None
        amount = t.amount
        if debit.debits_limited and (
            debit.debits_posted + debit.debits_pending + amount > debit.credits_posted
        ):
            return "exceeds_credits"
        if credit.credits_limited and (
            credit.credits_posted + credit.credits_pending + amount > credit.debits_posted
        ):
            return "exceeds_debits"
        if debit.debits_posted + debit.debits_pending + amount > MAX_AMOUNT:
            return "overflows_debits"
        if credit.credits_posted + credit.credits_pending + amount > MAX_AMOUNT:
            return "overflows_credits"
        if t.pending:
            debit.debits_pending += amount
            credit.credits_pending += amount
            expires = self.now + timedelta(seconds=t.timeout) if t.timeout else None
            hold = {
                "transfer_id": t.id,
                "state": HoldState.PENDING.value,
                "expires_at": expires,
                "resolved_at": None,
            }
            self.new_holds[t.id] = hold
            self.holds[t.id] = _Row(hold)
        else:
            debit.debits_posted += amount
            credit.credits_posted += amount
        self._record(t, t.debit_account_id, t.credit_account_id, amount)
        return "ok"

    def _resolve(self, t: TransferIn) -> str:
        assert t.pending_id is not None
        pending = self.known.get(t.pending_id)
        if pending is None:
            return "pending_transfer_not_found"
        if not pending.flags & TransferFlag.PENDING:
            return "pending_transfer_not_pending"
        if t.debit_account_id not in (None, pending.debit_account_id):
            return "pending_transfer_has_different_debit_account"
        if t.credit_account_id not in (None, pending.credit_account_id):
            return "pending_transfer_has_different_credit_account"
        state = self.holds[t.pending_id].state
        if state != HoldState.PENDING:
            return f"pending_transfer_{'expired' if state == 'expired' else 'already_' + state}"
        expires_at = self.holds[t.pending_id].expires_at
        if expires_at is not None and expires_at <= self.now:
            self.expire(t.pending_id)
            return "pending_transfer_expired"
        amount = t.amount if t.amount is not None else pending.amount
        if t.void_pending and amount != pending.amount:
            return "pending_transfer_has_different_amount"
        if amount > pending.amount:
            return "exceeds_pending_transfer_amount"
        debit = self.accounts[pending.debit_account_id]
        credit = self.accounts[pending.credit_account_id]
        if t.post_pending and (refusal := _status_refusal(debit, credit)):
            return refusal
        self._release(pending)
        if t.post_pending:
            debit.debits_posted += amount
            credit.credits_posted += amount
        state = HoldState.POSTED if t.post_pending else HoldState.VOIDED
        self._set_hold(t.pending_id, state)
        self._record(t, pending.debit_account_id, pending.credit_account_id, amount)
        return "ok"

    def expire(self, pending_id: str) -> bool:
        if self.holds[pending_id].state != HoldState.PENDING:
            return False
        self._release(self.known[pending_id])
        self._set_hold(pending_id, HoldState.EXPIRED)
        return True

    def _release(self, pending: Any) -> None:
        self.accounts[pending.debit_account_id].debits_pending -= pending.amount
        self.accounts[pending.credit_account_id].credits_pending -= pending.amount
        self.touched.update((pending.debit_account_id, pending.credit_account_id))

    def _set_hold(self, pending_id: str, state: HoldState) -> None:
        hold = {
            "transfer_id": pending_id,
            "state": state.value,
            "expires_at": self.holds[pending_id].expires_at,
            "resolved_at": self.now,
        }
        self.holds[pending_id] = _Row(hold)
        if pending_id in self.new_holds:
            self.new_holds[pending_id] = hold
        else:
            self.resolved[pending_id] = {
                "b_id": pending_id,
                "b_state": state.value,
                "b_at": self.now,
            }

    def _record(self, t: TransferIn, debit_id: int, credit_id: int, amount: int) -> None:
        row = {
            "id": t.id,
            "debit_account_id": debit_id,
            "credit_account_id": credit_id,
            "amount": amount,
            "pending_id": t.pending_id,
            "code": t.code,
            "reference": t.reference,
            "flags": int(_flags(t)),
            "timeout": t.timeout,
            "currency": t.currency,
            "created_at": self.now,
        }
        self.new_transfers.append(row)
        self.known[t.id] = _Row(row)
        self.touched.update((debit_id, credit_id))

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            copy.deepcopy(self.accounts),
            dict(self.known),
            dict(self.holds),
            len(self.new_transfers),
            dict(self.new_holds),
            dict(self.resolved),
            set(self.touched),
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (
            self.accounts,
            self.known,
            self.holds,
            count,
            self.new_holds,
            self.resolved,
            self.touched,
        ) = saved
        del self.new_transfers[count:]

    def write(self, session: Session) -> None:
        counters = [
            (account_id, *(getattr(self.accounts[account_id], n) for n in repo.COUNTERS))
            for account_id in sorted(self.touched)
        ]
        repo.write_batch(
            session,
            self.now,
            self.new_transfers,
            list(self.new_holds.values()),
            list(self.resolved.values()),
            counters,
            self.new_failed,
        )
        repo.forget_cached_accounts(session, self.touched)


class _Row:
    """Attribute access over a dict, so new rows read like stored ones."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _flags(t: TransferIn) -> TransferFlag:
    flags = TransferFlag.NONE
    for name, flag in (
        ("pending", TransferFlag.PENDING),
        ("post_pending", TransferFlag.POST_PENDING),
        ("void_pending", TransferFlag.VOID_PENDING),
        ("linked", TransferFlag.LINKED),
    ):
        if getattr(t, name):
            flags |= flag
    return flags


def _invalid(t: TransferIn) -> str | None:
    """Refusals that depend on the request alone."""
    resolving = t.post_pending or t.void_pending
    if t.pending + t.post_pending + t.void_pending > 1:
        return "flags_are_mutually_exclusive"
    if t.timeout and not t.pending:
        return "timeout_reserved_for_pending_transfer"
    if t.amount is not None and t.amount <= 0:
        return "amount_must_be_positive"
    if t.amount is not None and t.amount > MAX_AMOUNT:
        return "amount_too_large"
    if resolving:
        return None if t.pending_id else "pending_id_required"
    if t.pending_id:
        return "pending_id_must_be_empty"
    if t.amount is None:
        return "amount_required"
    if t.debit_account_id is None or t.credit_account_id is None:
        return "accounts_required"
    if t.debit_account_id == t.credit_account_id:
        return "accounts_must_be_different"
    return None


def _refusal(t: TransferIn, debit: _Counters | None, credit: _Counters | None) -> str | None:
    if debit is None:
        return "debit_account_not_found"
    if credit is None:
        return "credit_account_not_found"
    if debit.currency != credit.currency:
        return "accounts_must_have_the_same_currency"
    if t.currency != debit.currency:
        return "transfer_currency_mismatch"
    return _status_refusal(debit, credit)


def _status_refusal(debit: _Counters, credit: _Counters) -> str | None:
    if debit.status == AccountStatus.CLOSED:
        return "debit_account_closed"
    if debit.status == AccountStatus.FROZEN:
        return "debit_account_frozen"
    if credit.status == AccountStatus.CLOSED:
        return "credit_account_closed"
    return None


def _same(stored: Any, t: TransferIn) -> bool:
    """Same transfer as the one stored, comparing only what the caller said."""
    pairs = [
        (stored.pending_id, t.pending_id),
        (stored.code, t.code),
        (stored.reference, t.reference),
        (stored.flags, int(_flags(t))),
        (stored.timeout, t.timeout),
        (stored.currency, t.currency),
    ]
    optional = [
        (stored.debit_account_id, t.debit_account_id),
        (stored.credit_account_id, t.credit_account_id),
        (stored.amount, t.amount),
    ]
    return all(a == b for a, b in pairs) and all(b is None or a == b for a, b in optional)


# Invariants.


def check_invariants(session: Session) -> list[str]:
    """Every broken invariant of DESIGN §3, in words; an empty list means the books balance."""
    problems: list[str] = []
    dp, cp, dpe, cpe = repo.counter_totals(session)
    if dp != cp:
        problems.append(f"sum of debits_posted {dp} != sum of credits_posted {cp}")
    if dpe != cpe:
        problems.append(f"sum of debits_pending {dpe} != sum of credits_pending {cpe}")
    recomputed = repo.sums_from_transfers(session)
    for row in repo.all_accounts(session):
        expected = recomputed.get(row.id, dict.fromkeys(repo.COUNTERS, 0))
        for name in repo.COUNTERS:
            if getattr(row, name) != expected[name]:
                actual = getattr(row, name)
                problems.append(
                    f"account {row.id} {name} is {actual}, transfers say {expected[name]}"
                )
        if row.debits_must_not_exceed_credits and (
            row.debits_posted + row.debits_pending > row.credits_posted
        ):
            problems.append(f"account {row.id} debits exceed credits")
        if row.credits_must_not_exceed_debits and (
            row.credits_posted + row.credits_pending > row.debits_posted
        ):
            problems.append(f"account {row.id} credits exceed debits")
    orphans = repo.orphan_holds(session)
    if orphans:
        problems.append(f"{orphans} pending transfers have no hold state")
    return problems
