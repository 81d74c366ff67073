"""Money movement of the QR flows, through the payments service every payment flow shares.

A payment-code sale and a bill are each one payment (channel `qr_code`) from the card's account
to the unit: held and captured at once by `service.pay_card`, so they show in the same payment
records as card taps and are refunded the same way. A decline (insufficient funds, a frozen
card account) is raised here as a refusal: the caller's transaction rolls back and nothing,
not even the declined payment, is kept, so the same sale can be tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from hub.payments import service as payments
from hub.payments.code_errors import AccountNotUsable, CodeError, InsufficientFunds
from hub.payments.models import Channel, Payment, PaymentStatus

_DECLINES: dict[str, tuple[type[CodeError], str]] = {
    "insufficient_funds": (InsufficientFunds, "the card's balance is too low"),
    "account_not_usable": (AccountNotUsable, "the card account cannot pay"),
}


@dataclass(frozen=True)
class Charge:
    """One QR payment from a card to a unit; `key` makes it idempotent."""

    key: str  # "qr:{terminal}:{transaction}" or "bill:{bill id}"
    fingerprint: str  # what the key was used for; the same key for anything else is refused
    card_id: int
    card_account_id: int
    pan_masked: str
    amount: int
    caller: payments.Caller
    transaction_id: str | None = None


def charge(session: Session, charge: Charge, now: datetime, *, hold_seconds: int) -> Payment:
    """Hold and capture `charge.amount`; returns the captured payment or raises a decline."""
    hold = payments.HoldRequest(
        idempotency_key=charge.key,
        channel=Channel.QR_CODE,
        card_id=charge.card_id,
        card_account_id=charge.card_account_id,
        amount=charge.amount,
        caller=charge.caller,
        timeout_seconds=hold_seconds,
        request_hash=charge.fingerprint,
        transaction_id=charge.transaction_id,
        pan_masked=charge.pan_masked,
    )
    payment = payments.pay_card(session, hold, now)
    if payment.status == PaymentStatus.DECLINED:
        error, message = _DECLINES.get(
            payment.decline_code or "", (CodeError, "the payment was declined")
        )
        raise error(message=message)
    return payment
