"""Payments: card taps at a unit's terminal, and the money operations every payment flow shares.

Every function takes a Session and `now` and never commits: the caller's transaction is the
boundary. Each state change writes its audit entry in that same transaction. A payment belongs
to one unit; a caller acting for another unit is refused (`payment_of_another_unit`, 403).

Shared money operations (card taps, QR payment codes, hospital checkout). `Caller(actor,
unit_id, institution_code, terminal_id)` says who acts for which unit (`Caller.terminal(...)`
for a terminal); `HoldRequest` names the card (`card_id`, `card_account_id`), the amount, the
channel and the caller's idempotency key:

    hold_card(session, hold: HoldRequest, now) -> Payment
        Open a payment and hold `amount` on the card account for the unit (a pending ledger
        transfer card -> unit settlement, timing out after `timeout_seconds`). Idempotent by
        `hold.idempotency_key`: the same request again returns the first payment; a different
        one under the same key is `transaction_id_reused`. Insufficient funds or a frozen card
        account is a *declined* payment (`decline_code`), not an exception.
    capture(session, payment_id, amount, caller, now) -> Payment
        Post the hold, in full (amount None) or in part (the rest goes back to the card).
        Once per payment; the same capture again returns the payment.
    void(session, payment_id, caller, now) -> Payment             release the hold
    refund(session, payment_id, refund_id, amount, caller, now) -> PaymentOperation
        Move captured money back to the card; partial and repeated, never beyond what was
        captured; idempotent by `refund_id`.
    reverse(session, idempotency_key, caller, now, channel=CARD_TAP) -> Payment
        Release the hold of a payment whose answer the caller lost; before the payment
        exists it leaves a marker so a late authorisation under that key is refused.
    pay_card(session, hold, now) -> Payment                        hold and capture at once
    get_payment(session, payment_id, caller) -> Payment
    unit_settlement_account(session, institution_code, now) -> int (ledger account id)

Card taps (terminal-facing, see endpoints.py):

    authorize_card_tap(session, tap: CardTapIn, caller, secrets, rules, now) -> Payment
        The issuer verifies the ARQC, the ATC and (at or above the unit's threshold) the PIN;
        then the money is held; the payment carries the response code and ARPC for the card.
    reverse_card_tap(session, transaction_id, caller, now) -> Payment

Unit rules: `pin_threshold(session, unit_id, rules)`, `set_unit_settings(...)`.

Bank operations (every unit):

    search_payments(session, query: PaymentSearch, zone) -> PaymentPage
        Card taps, payment codes, bill codes and checkouts' self-pay, newest first, by masked
        card, status, local days, unit, bill number and channel; keyset pages.
    day_summary(session, day, zone) -> PaymentDay
        Per channel: captures and refunds made on the local day (count, sum), declines.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.config import Settings
from hub.db import day_bounds
from hub.issuer import service as issuer
from hub.ledger import service as ledger
from hub.ledger.errors import LedgerError
from hub.ledger.schemas import AccountIn, TransferIn
from hub.payments import repository as repo
from hub.payments.errors import (
    AlreadyCaptured,
    AmountMismatch,
    AuthorizationExpired,
    CaptureExceedsAuthorized,
    CurrencyNotSupported,
    NotCaptured,
    PaymentNotAuthorized,
    PaymentNotFound,
    PaymentOfAnotherUnit,
    RefundExceedsCaptured,
    RefundIdReused,
    TransactionIdReused,
    TransactionReversed,
)
from hub.payments.models import (
    Channel,
    OperationKind,
    Payment,
    PaymentOperation,
    PaymentStatus,
    UnitPaymentSettings,
)
from hub.payments.schemas import (
    CardTapIn,
    ChannelDay,
    PaymentDay,
    PaymentPage,
    PaymentRow,
    PaymentSearch,
    SearchChannel,
    card_pattern,
)

UNIT_SETTLEMENT = "unit_settlement"
CARD_PAYMENT = "card_payment"
REFUND = "refund"
# Ledger refusals of a hold that are the cardholder's problem: a decline, not an error.
_HOLD_DECLINES = {
    "exceeds_credits": "insufficient_funds",
    "debit_account_frozen": "account_not_usable",
    "debit_account_closed": "account_not_usable",
}
_REVERSAL_MARK = "reversal-before-authorization"


@dataclass(frozen=True)
class Caller:
    """Who acts and for which unit. Bank ops act for every unit (`unit_id` None)."""

    actor: str  # "terminal:42", "operator:alice", "checkout"
    unit_id: int | None
    institution_code: str | None = None
    terminal_id: int | None = None

    @classmethod
    def terminal(cls, terminal_id: int, unit_id: int, institution_code: str) -> Caller:
        return cls(f"terminal:{terminal_id}", unit_id, institution_code, terminal_id)


@dataclass(frozen=True)
class HoldRequest:
    """One payment from a card account to the caller's unit."""

    idempotency_key: str  # unique per payment, e.g. "qr:{code id}"; at most 96 characters
    channel: Channel
    card_id: int
    card_account_id: int
    amount: int
    caller: Caller
    timeout_seconds: int
    request_hash: str = ""  # fingerprint of the request; "" derives one from the fields
    transaction_id: str | None = None
    pan_masked: str | None = None


@dataclass(frozen=True)
class CardRules:
    """Settings of card taps."""

    hold_seconds: int
    pin_threshold_fen: int  # default for units without their own
    atc_window: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CardRules:
        return cls(
            settings.card_hold_seconds,
            settings.card_pin_threshold_fen,
            settings.card_atc_window,
        )


# Shared money operations.


def unit_settlement_account(session: Session, institution_code: str, now: datetime) -> int:
    spec = AccountIn(kind=UNIT_SETTLEMENT, owner_ref=institution_code)
    return ledger.ensure_account(session, spec, now).id


def hold_card(session: Session, hold: HoldRequest, now: datetime) -> Payment:
    """Open a payment and hold its amount (see the module docstring)."""
    fingerprint = hold.request_hash or _fingerprint(
        [hold.channel, hold.card_id, hold.card_account_id, hold.amount]
    )
    existing = _replay(session, hold.idempotency_key, fingerprint)
    if existing is not None:
        return existing
    payment = _open(
        session,
        hold.idempotency_key,
        fingerprint,
        hold.channel,
        hold.caller,
        now,
        transaction_id=hold.transaction_id,
        pan_masked=hold.pan_masked,
        amount=hold.amount,
        card_id=hold.card_id,
        **_accounts(session, hold.card_account_id, hold.caller, now),
    )
    _hold(session, payment, hold.timeout_seconds, now)
    _audit_outcome(session, payment, hold.caller, now)
    return payment


def pay_card(session: Session, hold: HoldRequest, now: datetime) -> Payment:
    """Hold and capture in full in one step (a one-shot payment such as a QR code)."""
    payment = hold_card(session, hold, now)
    if payment.status == PaymentStatus.AUTHORIZED:
        return capture(session, payment.id, None, hold.caller, now)
    return payment


def get_payment(session: Session, payment_id: int, caller: Caller) -> Payment:
    return _owned(repo.payment(session, payment_id), caller)


def capture(
    session: Session, payment_id: int, amount: int | None, caller: Caller, now: datetime
) -> Payment:
    """Post the hold in full or in part; a repeat of the same capture returns the payment."""
    payment = _owned(repo.payment(session, payment_id, lock=True), caller)
    wanted = payment.amount if amount is None else amount
    if payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        done = repo.operation(session, payment.id, OperationKind.CAPTURE, "")
        if done is not None and done.amount == wanted:
            return payment
        raise AlreadyCaptured(message="this payment was captured with another amount")
    _require_authorized(payment)
    if wanted > payment.amount:
        raise CaptureExceedsAuthorized(message="capture is larger than the authorised amount")
    if _hold_expired(payment, now):
        raise AuthorizationExpired(message="the authorisation has expired; authorise again")
    transfer_id = f"pay:{payment.id}:capture"
    # Written before the ledger call, which locks the unit's settlement account until COMMIT:
    # fewer round trips under that lock. A ledger refusal raises and the boundary rolls back.
    _operation(session, payment, OperationKind.CAPTURE, "", wanted, transfer_id, caller, now)
    payment.captured, payment.status, payment.updated_at = wanted, PaymentStatus.CAPTURED, now
    _ledger(
        session,
        TransferIn(
            id=transfer_id,
            pending_id=payment.hold_transfer_id,
            post_pending=True,
            amount=wanted,
            code=CARD_PAYMENT,
            reference=_reference(payment),
        ),
        now,
    )
    _audit(session, payment, caller, "payment.captured", now, amount=wanted)
    return payment


def void(session: Session, payment_id: int, caller: Caller, now: datetime) -> Payment:
    """Release the whole hold (before capture)."""
    payment = _owned(repo.payment(session, payment_id, lock=True), caller)
    if payment.status == PaymentStatus.VOIDED:
        return payment
    return _release(session, payment, OperationKind.VOID, caller, now)


def reverse(
    session: Session,
    idempotency_key: str,
    caller: Caller,
    now: datetime,
    channel: Channel = Channel.CARD_TAP,
) -> Payment:
    """Undo an authorisation whose answer the caller lost (see the module docstring)."""
    payment = repo.payment_by_key(session, idempotency_key, lock=True)
    if payment is None:
        return _reversal_mark(session, idempotency_key, channel, caller, now)
    _owned(payment, caller)
    if payment.status in (PaymentStatus.REVERSED, PaymentStatus.DECLINED, PaymentStatus.VOIDED):
        return payment  # nothing is held: the reversal has nothing left to do
    return _release(session, payment, OperationKind.REVERSAL, caller, now)


def refund(
    session: Session,
    payment_id: int,
    refund_id: str,
    amount: int,
    caller: Caller,
    now: datetime,
) -> PaymentOperation:
    """Send captured money back to the card; the sum of refunds never exceeds the capture."""
    payment = _owned(repo.payment(session, payment_id, lock=True), caller)
    done = repo.operation(session, payment.id, OperationKind.REFUND, refund_id)
    if done is not None:
        if done.amount != amount:
            raise RefundIdReused(message="this refund id was used with another amount")
        return done
    if payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        raise NotCaptured(message="only a captured payment can be refunded")
    if payment.refunded + amount > payment.captured:
        left = payment.captured - payment.refunded
        raise RefundExceedsCaptured(message=f"at most {left} fen is left to refund")
    operation = _operation(
        session, payment, OperationKind.REFUND, refund_id, amount, None, caller, now
    )
    operation.transfer_id = f"pay:{payment.id}:refund:{operation.id}"
    assert payment.settlement_account_id is not None and payment.card_account_id is not None
    _ledger(
        session,
        TransferIn(
            id=operation.transfer_id,
            debit_account_id=payment.settlement_account_id,
            credit_account_id=payment.card_account_id,
            amount=amount,
            code=REFUND,
            reference=_reference(payment),
        ),
        now,
    )
    payment.refunded += amount
    payment.updated_at = now
    if payment.refunded == payment.captured:
        payment.status = PaymentStatus.REFUNDED
    _audit(session, payment, caller, "payment.refunded", now, amount=amount, refund_id=refund_id)
    return operation


# Card taps.


def tap_key(terminal_id: int, transaction_id: str) -> str:
    return f"tap:{terminal_id}:{transaction_id}"


def authorize_card_tap(
    session: Session,
    tap: CardTapIn,
    caller: Caller,
    secrets: issuer.IssuerSecrets,
    rules: CardRules,
    now: datetime,
) -> Payment:
    """Verify the card with the issuer, hold the money, answer with the ARC and ARPC."""
    assert caller.terminal_id is not None and caller.unit_id is not None
    key = tap_key(caller.terminal_id, tap.transaction_id)
    fingerprint = _tap_fingerprint(tap, secrets)
    existing = _replay(session, key, fingerprint)
    if existing is not None:
        return existing
    icc = issuer.parse_chip_data(bytes.fromhex(tap.icc_data))
    if icc.amount != tap.amount:
        raise AmountMismatch(message="the amount differs from the one the card signed (9F02)")
    if icc.currency != "0156":
        raise CurrencyNotSupported(message="only CNY (0156) card payments are accepted")
    pin_block = tap.pin_block.get_secret_value() if tap.pin_block else None
    # A PIN block is checked whatever the amount: the unit's threshold matters only without one.
    pin_required = not pin_block and tap.amount >= pin_threshold(session, caller.unit_id, rules)
    verdict = issuer.authenticate_card_tap(
        session,
        issuer.CardTap(
            pan=tap.card.pan.get_secret_value(),
            icc=icc,
            terminal_id=caller.terminal_id,
            card_number=tap.card.card_number,
            pin_block=bytes.fromhex(pin_block) if pin_block else None,
            pin_key_version=tap.pin_key_version,
            pin_required=pin_required,
        ),
        secrets,
        now,
        atc_window=rules.atc_window,
    )
    card = verdict.card
    decline = verdict.decline or (None if card else "card_unknown")
    payment = _open(
        session,
        key,
        fingerprint,
        Channel.CARD_TAP,
        caller,
        now,
        transaction_id=tap.transaction_id,
        amount=tap.amount,
        atc=icc.atc,
        card_id=card.id if card else None,
        pan_masked=card.pan_masked if card else None,
        **(_accounts(session, card.account_id, caller, now) if card and not decline else {}),
    )
    if decline:
        _decline(payment, decline, now)
    else:
        _hold(session, payment, rules.hold_seconds, now)
    code, arpc = verdict.respond(icc.arqc, payment.decline_code)
    payment.response_code, payment.arpc = code, arpc.hex().upper() if arpc else None
    _audit_outcome(session, payment, caller, now)
    return payment


def reverse_card_tap(
    session: Session, transaction_id: str, caller: Caller, now: datetime
) -> Payment:
    assert caller.terminal_id is not None
    return reverse(session, tap_key(caller.terminal_id, transaction_id), caller, now)


# Unit rules.


def pin_threshold(session: Session, unit_id: int, rules: CardRules) -> int:
    row = repo.unit_settings(session, unit_id)
    return rules.pin_threshold_fen if row is None else row.pin_threshold_fen


def set_unit_settings(
    session: Session, unit_id: int, pin_threshold_fen: int, actor: str, now: datetime
) -> UnitPaymentSettings:
    row = repo.save_unit_settings(
        session,
        UnitPaymentSettings(unit_id=unit_id, pin_threshold_fen=pin_threshold_fen, updated_at=now),
    )
    audit.record(
        session,
        actor=actor,
        action="payments.unit_settings_changed",
        subject=f"unit:{unit_id}",
        now=now,
        details={"pin_threshold_fen": pin_threshold_fen},
    )
    return row


# Bank operations: search and the day's figures.


def search_payments(session: Session, query: PaymentSearch, zone: ZoneInfo) -> PaymentPage:
    """Payments of every unit and channel, newest first (see the module docstring)."""
    rows = repo.search(
        session,
        card=card_pattern(query.card) if query.card else None,
        status=query.status.value if query.status else None,
        created_from=day_bounds(query.day_from, zone)[0] if query.day_from else None,
        created_to=day_bounds(query.day_to, zone)[1] if query.day_to else None,
        unit_id=query.unit_id,
        bill_number=query.bill_number,
        channel=query.channel.value if query.channel else None,
        before=query.before,
        limit=query.limit + 1,
    )
    items = [_row(payment, bill_number) for payment, bill_number in rows[: query.limit]]
    more = len(rows) > query.limit
    return PaymentPage(items=items, next_before=items[-1].id if more else None)


def day_summary(session: Session, day: date, zone: ZoneInfo) -> PaymentDay:
    """The local day's captures and refunds (made that day) and declines, per channel."""
    start, end = day_bounds(day, zone)
    days = {c: ChannelDay(channel=c) for c in SearchChannel}
    for channel, billed, kind, count, amount in repo.operation_totals(session, start, end):
        row = days[_search_channel(channel, billed)]
        if kind == OperationKind.CAPTURE:
            row.captured_count += count
            row.captured += amount
        else:
            row.refunded_count += count
            row.refunded += amount
    for channel, billed, count in repo.declined_totals(session, start, end):
        days[_search_channel(channel, billed)].declined_count += count
    hours = int((end - start).total_seconds() // 3600)
    bounds = [start + timedelta(hours=h) for h in range(hours)] + [end]
    return PaymentDay(
        day=day,
        channels=list(days.values()),
        captures_per_hour=repo.captures_per_hour(session, bounds),
    )


def _search_channel(channel: str, billed: bool) -> SearchChannel:
    if billed:
        return SearchChannel.BILL_CODE
    if channel == Channel.QR_CODE:
        return SearchChannel.PAYMENT_CODE
    return SearchChannel(channel)


def _row(payment: Payment, bill_number: str | None) -> PaymentRow:
    return PaymentRow(
        id=payment.id,
        created_at=payment.created_at,
        channel=_search_channel(payment.channel, bill_number is not None),
        unit_id=payment.unit_id,
        institution_code=payment.institution_code,
        terminal_id=payment.terminal_id,
        transaction_id=payment.transaction_id,
        bill_number=bill_number,
        pan_masked=payment.pan_masked,
        amount=payment.amount,
        captured=payment.captured,
        refunded=payment.refunded,
        status=payment.status,
        decline_code=payment.decline_code,
    )


# Internals.


def _fingerprint(parts: list[object]) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _tap_fingerprint(tap: CardTapIn, secrets: issuer.IssuerSecrets) -> str:
    """Keyed, because the request holds a PAN: the stored hash must not let anyone test PANs."""
    parts = [
        tap.amount,
        tap.currency,
        tap.card.pan.get_secret_value(),
        tap.card.card_number,
        tap.icc_data.upper(),
        tap.pin_block.get_secret_value().upper() if tap.pin_block else None,
        tap.pin_key_version,
    ]
    message = json.dumps(parts).encode()
    return hmac.new(secrets.card_data.pan_hash, message, hashlib.sha256).hexdigest()


def _replay(session: Session, key: str, fingerprint: str) -> Payment | None:
    existing = repo.payment_by_key(session, key)
    if existing is None:
        return None
    if existing.request_hash == fingerprint:
        return existing
    if existing.request_hash == _REVERSAL_MARK:
        raise TransactionReversed(message="this transaction was reversed before it arrived")
    raise TransactionIdReused(message="this transaction id was used for another request")


def _open(
    session: Session,
    key: str,
    fingerprint: str,
    channel: Channel,
    caller: Caller,
    now: datetime,
    **fields: object,
) -> Payment:
    """Insert the payment with every field known so far (one INSERT, no UPDATE after it)."""
    assert caller.unit_id is not None and caller.institution_code is not None
    defaults = {"amount": 0, "captured": 0, "refunded": 0, "status": PaymentStatus.DECLINED.value}
    payment = Payment(
        idempotency_key=key,
        request_hash=fingerprint,
        channel=channel.value,
        unit_id=caller.unit_id,
        institution_code=caller.institution_code,
        terminal_id=caller.terminal_id,
        created_at=now,
        updated_at=now,
        **(defaults | fields),
    )
    repo.add(session, payment)
    return payment


def _accounts(
    session: Session, card_account_id: int, caller: Caller, now: datetime
) -> dict[str, int]:
    """The accounts a hold moves money between, known before the payment is inserted."""
    assert caller.institution_code is not None
    settlement = unit_settlement_account(session, caller.institution_code, now)
    return {"card_account_id": card_account_id, "settlement_account_id": settlement}


def _hold(session: Session, payment: Payment, timeout: int, now: datetime) -> None:
    assert payment.card_account_id is not None and payment.settlement_account_id is not None
    transfer_id = f"pay:{payment.id}:hold"
    try:
        ledger.apply_transfer(
            session,
            TransferIn(
                id=transfer_id,
                debit_account_id=payment.card_account_id,
                credit_account_id=payment.settlement_account_id,
                amount=payment.amount,
                code=CARD_PAYMENT,
                reference=_reference(payment),
                pending=True,
                timeout=timeout,
            ),
            now,
        )
    except LedgerError as exc:
        if exc.code not in _HOLD_DECLINES:
            raise
        _decline(payment, _HOLD_DECLINES[exc.code], now)
        return
    payment.hold_transfer_id = transfer_id
    payment.hold_expires_at = now + timedelta(seconds=timeout) if timeout else None
    payment.status = PaymentStatus.AUTHORIZED.value


def _decline(payment: Payment, code: str, now: datetime) -> None:
    payment.status, payment.decline_code, payment.updated_at = PaymentStatus.DECLINED, code, now


def _release(
    session: Session, payment: Payment, kind: OperationKind, caller: Caller, now: datetime
) -> Payment:
    """Void the hold, for a void by the unit or a reversal by the terminal."""
    if payment.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        raise AlreadyCaptured(message="a captured payment is undone by a refund")
    _require_authorized(payment)
    transfer_id: str | None = None  # an expired hold was released by the ledger already
    if not _hold_expired(payment, now):
        transfer_id = f"pay:{payment.id}:{kind.value}"
        _ledger(
            session,
            TransferIn(
                id=transfer_id,
                pending_id=payment.hold_transfer_id,
                void_pending=True,
                code=CARD_PAYMENT,
                reference=_reference(payment),
            ),
            now,
        )
    _operation(session, payment, kind, "", payment.amount, transfer_id, caller, now)
    status = PaymentStatus.VOIDED if kind == OperationKind.VOID else PaymentStatus.REVERSED
    payment.status, payment.updated_at = status, now
    _audit(session, payment, caller, f"payment.{status.value}", now, amount=payment.amount)
    return payment


def _reversal_mark(
    session: Session, key: str, channel: Channel, caller: Caller, now: datetime
) -> Payment:
    """A reversal that overtook its authorisation: remember it so the late one is refused."""
    transaction_id = key.rpartition(":")[2] if key.startswith("tap:") else None
    payment = _open(
        session,
        key,
        _REVERSAL_MARK,
        channel,
        caller,
        now,
        transaction_id=transaction_id,
        status=PaymentStatus.REVERSED.value,
    )
    _audit(session, payment, caller, "payment.reversed", now, before_authorization=True)
    return payment


def _require_authorized(payment: Payment) -> None:
    if payment.status != PaymentStatus.AUTHORIZED:
        raise PaymentNotAuthorized(message=f"the payment is {payment.status}")


def _hold_expired(payment: Payment, now: datetime) -> bool:
    return payment.hold_expires_at is not None and now >= payment.hold_expires_at


def _owned(payment: Payment | None, caller: Caller) -> Payment:
    if payment is None:
        raise PaymentNotFound(message="no such payment")
    if caller.unit_id is not None and payment.unit_id != caller.unit_id:
        raise PaymentOfAnotherUnit(message="this payment belongs to another unit")
    return payment


def _ledger(session: Session, spec: TransferIn, now: datetime) -> None:
    try:
        ledger.apply_transfer(session, spec, now)
    except LedgerError as exc:
        if exc.code == "pending_transfer_expired":
            raise AuthorizationExpired(message="the authorisation has expired") from None
        raise


def _operation(
    session: Session,
    payment: Payment,
    kind: OperationKind,
    key: str,
    amount: int,
    transfer_id: str | None,
    caller: Caller,
    now: datetime,
) -> PaymentOperation:
    row = PaymentOperation(
        payment_id=payment.id,
        kind=kind.value,
        operation_key=key,
        amount=amount,
        transfer_id=transfer_id,
        actor=caller.actor,
        created_at=now,
    )
    repo.add(session, row)
    return row


def _reference(payment: Payment) -> str:
    return f"payment:{payment.id}"


def _audit_outcome(session: Session, payment: Payment, caller: Caller, now: datetime) -> None:
    if payment.status == PaymentStatus.AUTHORIZED:
        _audit(session, payment, caller, "payment.authorized", now, amount=payment.amount)
    else:
        _audit(
            session,
            payment,
            caller,
            "payment.declined",
            now,
            amount=payment.amount,
            decline_code=payment.decline_code,
        )


def _audit(
    session: Session,
    payment: Payment,
    caller: Caller,
    action: str,
    now: datetime,
    **details: object,
) -> None:
    audit.record(
        session,
        actor=caller.actor,
        action=action,
        subject=_reference(payment),
        now=now,
        details={
            "unit": payment.institution_code,
            "transaction_id": payment.transaction_id,
            "card": payment.pan_masked,
            **details,
        },
    )
