"""The disbursement rules: accept an order, check it, post it once, undo it, tell the loan system.

A create runs in two transactions (the endpoint is the boundary of each):
1. `accept` checks the order, the card and the borrower's identity, and records the order as
   `processing` (or as `rejected`, final, with its callback queued), then commits. A duplicate
   that arrives while it is processing finds that committed row and answers 409
   `disbursement_in_flight`. This is chosen over a row lock tried with NOWAIT/SKIP LOCKED
   because it behaves the same on SQLite, where writers never overlap and a lock could never
   be seen held. If the request dies, its row keeps a lease (`lease_until`); a retry after the
   lease takes the order over.
2. `posting.settle` locks the row, counts the order against the day's limits and the funding
   account's cover, posts one ledger transfer whose id is derived from the external id,
   records the outcome and queues the callback, all in one transaction (for a batch of orders
   at once, see posting.py). A crash before its commit leaves nothing; a retry posts once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.config import Settings
from hub.disbursements import repository as repo
from hub.disbursements.errors import (
    AmountNotPositive,
    AmountOverCap,
    DisbursementNotFound,
    ExternalIdReused,
    FundingAccountMissing,
    InFlight,
    NotUndoable,
    Rejected,
    UndoNotCovered,
    ValueDateInvalid,
)
from hub.disbursements.models import Disbursement, DisbursementStatus, LoanClient
from hub.disbursements.schemas import DisbursementIn, DisbursementOut
from hub.errors import HubError
from hub.issuer import service as issuer
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from hub.outbox import service as outbox
from integrations.loans.client import canonical_json

FUNDING_KIND, FUNDING_OWNER = "loan_funding", "programme"
FUNDING_ACCOUNT = AccountIn(
    kind=FUNDING_KIND, owner_ref=FUNDING_OWNER, debits_must_not_exceed_credits=True
)
TREASURY_ACCOUNT = AccountIn(kind="treasury", owner_ref="bank")
CALLBACK_TOPIC = "loans.callback"
EVENT_KINDS = ("credited", "rejected", "undone")
VALUE_DATE_GRACE_DAYS = 1  # a loan approved just before midnight may arrive just after
Refusal = tuple[str, str]  # stable code, message


@dataclass(frozen=True, repr=False)
class Rules:
    """The programme's limits and the keys the domain needs, built once from settings."""

    per_loan_cap: int
    daily_count: int
    daily_amount: int
    in_flight_seconds: float
    key_grace_seconds: float
    max_skew_seconds: int
    timezone: ZoneInfo
    key_root: bytes  # loan client secrets are derived from it, never stored

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            per_loan_cap=settings.disbursement_cap_fen,
            daily_count=settings.disbursement_daily_count,
            daily_amount=settings.disbursement_daily_amount_fen,
            in_flight_seconds=settings.disbursement_in_flight_seconds,
            key_grace_seconds=settings.loan_key_grace_seconds,
            max_skew_seconds=settings.loan_signature_skew_seconds,
            timezone=ZoneInfo(settings.business_timezone),
            key_root=settings.loan_key_root.get_secret_value().encode(),
        )

    def business_day(self, now: datetime) -> date:
        return now.astimezone(self.timezone).date()

    def fingerprint(self, order: DisbursementIn) -> str:
        """Keyed, so the stored value says nothing about the card or the borrower."""
        key = hmac.new(self.key_root, b"sshub/disbursement-request/v1", hashlib.sha256).digest()
        body = canonical_json(order.model_dump(mode="json"))
        return hmac.new(key, body, hashlib.sha256).hexdigest()


# Disbursements.


def accept(
    session: Session, client_id: int, order: DisbursementIn, rules: Rules, now: datetime
) -> Disbursement:
    """Phase 1: check a new order and record it as processing (or as rejected), or find the
    first result of a retry.

    Returns a processing row for `posting.settle`, or a final one to answer (again).
    """
    fingerprint = rules.fingerprint(order)
    found = repo.by_external_id(session, order.external_id)
    if found is None:
        _check_order(order, rules, now)
        d = _new_disbursement(client_id, order, fingerprint, rules, now)
        refusal = _card_refusal(session, d, order, rules, now)
        if refusal is None:
            return repo.add(session, d)
        record_outcome(d, refusal, rules, now)
        repo.add(session, d)
        queue_callbacks(session, [(d, d.status)], now)
        return d
    if found.client_id != client_id or found.request_hash != fingerprint:
        raise ExternalIdReused(message="this external_id was used for a different order")
    if found.status == DisbursementStatus.PROCESSING:
        if found.lease_until > now:
            raise InFlight(message="this order is still being processed; retry shortly")
        found.lease_until = now + timedelta(seconds=rules.in_flight_seconds)  # take it over
    return found


def _check_order(order: DisbursementIn, rules: Rules, now: datetime) -> None:
    if order.amount <= 0:
        raise AmountNotPositive(message="amount must be a positive number of fen")
    if order.amount > rules.per_loan_cap:
        raise AmountOverCap(
            message=f"amount is over the per-loan cap of {_cny(rules.per_loan_cap)}"
        )
    today = rules.business_day(now)
    if not today - timedelta(days=VALUE_DATE_GRACE_DAYS) <= order.value_date <= today:
        raise ValueDateInvalid(
            message=f"value_date must be {today.isoformat()} (or the day before)"
        )


def _new_disbursement(
    client_id: int, order: DisbursementIn, fingerprint: str, rules: Rules, now: datetime
) -> Disbursement:
    return Disbursement(
        client_id=client_id,
        external_id=order.external_id,
        request_hash=fingerprint,
        loan_ref=order.loan_ref,
        amount=order.amount,
        card_number=order.card_number,
        purpose=order.purpose,
        value_date=order.value_date,
        status=DisbursementStatus.PROCESSING.value,
        lease_until=now + timedelta(seconds=rules.in_flight_seconds),
        created_at=now,
    )


def _card_refusal(
    session: Session, d: Disbursement, order: DisbursementIn, rules: Rules, now: datetime
) -> Refusal | None:
    card = issuer.find_card(session, d.card_number)
    if card is None:
        return "card_not_found", "no card with this number"
    try:
        issuer.usable_card(card, rules.business_day(now))
    except HubError as refused:  # card_blocked, card_expired: recorded as this order's result
        return refused.code, refused.message
    if not issuer.identity_matches(card, order.id_number_hash):
        return "identity_mismatch", "the ID number check does not match the cardholder"
    account = ledger.get_account(session, card.account_id)
    if account.status != "active":
        return "card_account_not_active", f"the card account is {account.status}"
    d.card_account_id = card.account_id
    return None


def record_outcome(d: Disbursement, refusal: Refusal | None, rules: Rules, now: datetime) -> None:
    """Credited, or rejected with its reason: final for this external id."""
    d.posted_at, d.posted_on = now, rules.business_day(now)
    if refusal is None:
        d.status = DisbursementStatus.CREDITED.value
    else:
        d.status = DisbursementStatus.REJECTED.value
        d.reason, d.reason_message = refusal


def reference(d: Disbursement) -> str:
    """What the disbursement's transfers name: the original and its reversal alike."""
    return f"disbursement:{d.external_id}"


def fund_programme(
    session: Session, transfer_id: str, amount: int, now: datetime
) -> ledger.Account:
    """The bank's treasury moves `amount` into the programme's loan funding account (both opened
    on first use); the transfer id makes it happen once. Returns the funding account."""
    treasury = ledger.ensure_account(session, TREASURY_ACCOUNT, now)
    funding = ledger.ensure_account(session, FUNDING_ACCOUNT, now)
    spec = TransferIn(
        id=transfer_id,
        debit_account_id=treasury.id,
        credit_account_id=funding.id,
        amount=amount,
        code="funding",
    )
    ledger.transfer(session, spec, now)
    return funding


def funding_account(session: Session) -> ledger.Account:
    """The programme's loan funding account (kind loan_funding, owner programme)."""
    funding = ledger.find_account(session, FUNDING_KIND, FUNDING_OWNER)
    if funding is None:
        raise FundingAccountMissing(message="the loan funding account is not open")
    return funding


def answer(d: Disbursement) -> Disbursement:
    """The disbursement, or its recorded rejection raised again."""
    if d.status == DisbursementStatus.REJECTED:
        raise Rejected(d.reason or "rejected", d.reason_message or "")
    return d


def undo(
    session: Session,
    client: LoanClient,
    external_id: str,
    reason: str | None,
    now: datetime,
    rules: Rules,
) -> Disbursement:
    """The loan system reverses one of its own credited disbursements (see `_reverse`)."""
    d = repo.lock_by_external_id(session, external_id)
    if d is None or d.client_id != client.id:
        raise DisbursementNotFound(message="no such disbursement")
    return _reverse(session, d, f"loan_client:{client.name}", reason, now, rules)


def undo_by_operator(
    session: Session,
    external_id: str,
    reason: str | None,
    now: datetime,
    rules: Rules,
    *,
    actor: str,
) -> Disbursement:
    """Bank operations reverse any client's credited disbursement, under `actor`'s name; the
    same rules and refusals as the loan system's own undo, and the loan system is told."""
    d = repo.lock_by_external_id(session, external_id)
    if d is None:
        raise DisbursementNotFound(message="no such disbursement")
    return _reverse(session, d, actor, reason, now, rules)


def _reverse(
    session: Session, d: Disbursement, actor: str, reason: str | None, now: datetime, rules: Rules
) -> Disbursement:
    """Reverse a credited disbursement (locked by the caller) with a transfer card → loan
    funding that names it.

    Allowed only while the card's available balance covers the whole amount; an undo that
    was done already answers with the same result.
    """
    if d.status == DisbursementStatus.UNDONE:
        return d
    if d.status == DisbursementStatus.PROCESSING:
        raise InFlight(message="this order is still being processed; retry shortly")
    if d.status != DisbursementStatus.CREDITED:
        raise NotUndoable(message=f"a {d.status} disbursement moved no money")
    assert d.card_account_id is not None and d.transfer_id is not None
    _check_cover(ledger.balance(ledger.get_account(session, d.card_account_id)).available, d)
    reversal = TransferIn(
        id=f"disb-undo:{d.external_id}",
        debit_account_id=d.card_account_id,
        credit_account_id=funding_account(session).id,
        amount=d.amount,
        code="reversal",
        reference=reference(d),
    )
    try:
        ledger.transfer(session, reversal, now)
    except HubError as refused:  # the ledger's refusal
        if refused.code != "exceeds_credits":
            raise
        raise UndoNotCovered(message="the card balance no longer covers the undo") from refused
    d.status = DisbursementStatus.UNDONE.value
    d.reversal_transfer_id, d.undo_reason = reversal.id, reason
    d.undone_at, d.undone_on = now, rules.business_day(now)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="disbursement.undone",
        subject=reference(d),
        now=now,
        details={"amount": d.amount, "reverses": d.transfer_id, "reason": reason},
    )
    queue_callbacks(session, [(d, "undone")], now)
    return d


def _check_cover(available: int, d: Disbursement) -> None:
    if available < d.amount:
        short = d.amount - available
        raise UndoNotCovered(
            message=f"the card balance covers {_cny(max(available, 0))} of {_cny(d.amount)}:"
            f" short by {_cny(short)} ({short} fen)"
        )


def _cny(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d} CNY"


def queue_callbacks(
    session: Session, outcomes: Sequence[tuple[Disbursement, str]], now: datetime
) -> None:
    """Each outcome (disbursement, kind) for the loan system, queued in the transaction that
    decided it; kind is one of EVENT_KINDS."""
    payloads = {}
    for d, kind in outcomes:
        event: dict[str, Any] = {
            "event_id": _event_id(kind, d.external_id),
            "type": f"disbursement.{kind}",
            "occurred_at": now.isoformat(),
            "disbursement": DisbursementOut.model_validate(d).model_dump(mode="json"),
        }
        payloads[event["event_id"]] = {"client_id": d.client_id, "event": event}
    outbox.enqueue_many(session, topic=CALLBACK_TOPIC, payloads=payloads, now=now)


def _event_id(kind: str, external_id: str) -> str:
    return f"disb.{kind}.{external_id}"


def get(session: Session, client_id: int, external_id: str) -> Disbursement:
    d = repo.by_external_id(session, external_id)
    if d is None or d.client_id != client_id:
        raise DisbursementNotFound(message="no such disbursement")
    return d


def listing(
    session: Session,
    client_id: int,
    *,
    status: DisbursementStatus | None = None,
    posted_on: date | None = None,
    cursor: int = 0,
    limit: int = 100,
) -> tuple[Sequence[Disbursement], int | None]:
    items = repo.listing(
        session,
        client_id,
        status=status.value if status else None,
        posted_on=posted_on,
        cursor=cursor,
        limit=limit,
    )
    return items, (items[-1].id if len(items) == limit else None)


def callbacks_of(session: Session, external_id: str) -> list[outbox.OutboxMessage]:
    """The callbacks queued for one disbursement (credited or rejected, then undone)."""
    found = [outbox.find_message(session, _event_id(kind, external_id)) for kind in EVENT_KINDS]
    return [m for m in found if m is not None]


def resend_callbacks(session: Session, external_id: str, now: datetime, *, actor: str) -> list[int]:
    """Queue every callback of one disbursement again; returns the outbox message ids."""
    ids = [m.id for m in callbacks_of(session, external_id)]
    if not ids:
        raise DisbursementNotFound(message="no callbacks for this disbursement")
    return [outbox.resend(session, i, now, actor=actor).id for i in ids]


# Bank operations: every client's disbursements.


def find(session: Session, external_id: str) -> Disbursement:
    """One disbursement of any client (for bank operations)."""
    d = repo.by_external_id(session, external_id)
    if d is None:
        raise DisbursementNotFound(message="no such disbursement")
    return d


def search(
    session: Session,
    *,
    external_id: str | None = None,
    status: DisbursementStatus | None = None,
    posted_from: date | None = None,
    posted_to: date | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[Sequence[Disbursement], int | None]:
    """Every client's disbursements, newest first: by external id (a prefix), status and the
    business day of the outcome. Pages on with `before`, the returned cursor (None at the end)."""
    items = repo.search(
        session,
        external_id=external_id or None,
        status=status.value if status else None,
        posted_from=posted_from,
        posted_to=posted_to,
        before=before,
        limit=limit + 1,
    )
    shown = list(items[:limit])
    return shown, (shown[-1].id if len(items) > limit else None)


def client_names(session: Session) -> dict[int, str]:
    return {c.id: c.name for c in repo.all_clients(session)}


@dataclass(frozen=True)
class DaySummary:
    """One business day of the programme: money out (credited), back (undone), refusals."""

    day: date
    credited_count: int
    credited: int
    rejected_count: int
    undone_count: int
    undone: int


def day_summary(session: Session, day: date) -> DaySummary:
    return DaySummary(day, *repo.day_counts(session, day))
