"""The money of a checkout (DESIGN §3): the self-pay, the settlement's legs, the revoke's.

At settlement the unit is paid three ways in one database transaction:

    insurance_fund_clearing   -> unit_settlement   fund_pay_sumamt   chk:{id}:fund
    personal_account_clearing -> unit_settlement   acct_pay          chk:{id}:account
    card                      -> unit_settlement   psn_cash_pay      the self-pay payment

The two insurance legs are one linked ledger chain. The card leg is the payments service's own
capture of the hold taken at self-pay collection (payments owns that hold and its record), done
in the same transaction, so the three legs commit together or not at all. Every transfer id
and payment key derives from the checkout id, so a re-run finds the first result. A revoke
reverses the insurance legs as one linked chain and refunds the self-pay.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.checkout.errors import CheckoutError
from hub.checkout.models import Checkout
from hub.issuer import service as issuer
from hub.issuer.errors import CardExpired, CardNotActive
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from hub.payments import service as payments

FUND_CLEARING = "insurance_fund_clearing"
ACCOUNT_CLEARING = "personal_account_clearing"
FUND_CODE = "insurance_fund"
ACCOUNT_CODE = "personal_account"
REVERSAL_CODE = "reversal"


def reference(checkout: Checkout) -> str:
    return f"checkout:{checkout.id}"


def payer(checkout: Checkout) -> payments.Caller:
    """The checkout acting on payments for its unit."""
    return payments.Caller(
        reference(checkout), checkout.unit_id, checkout.institution_code, checkout.terminal_id
    )


# ---- the self-pay ----------------------------------------------------------------------------


def hold_on_card(
    session: Session,
    checkout: Checkout,
    card_id: int,
    amount: int,
    attempt: int,
    *,
    hold_seconds: int,
    now: datetime,
) -> payments.Payment:
    """Hold `amount` on a card for this checkout; a decline is a DECLINED payment, not an error.

    `attempt` numbers the holds of one checkout (1 at collection, 2 after a settlement asked
    for more), so each is taken once whatever the retries.
    """
    card = issuer.usable_card(issuer.card_by_id(session, card_id), now.date())
    hold = payments.HoldRequest(
        idempotency_key=f"{reference(checkout)}:selfpay:{attempt}",
        channel=payments.Channel.CHECKOUT,
        card_id=card.id,
        card_account_id=card.account_id,
        amount=amount,
        caller=payer(checkout),
        timeout_seconds=hold_seconds,
        pan_masked=card.pan_masked,
    )
    return payments.hold_card(session, hold, now)


def paid_so_far(payment: payments.Payment) -> int:
    """What a payment holds or has taken from the card and not given back."""
    if payment.status == payments.PaymentStatus.AUTHORIZED:
        return payment.amount
    if payment.status in (payments.PaymentStatus.CAPTURED, payments.PaymentStatus.REFUNDED):
        return payment.captured - payment.refunded
    return 0


def needs_new_charge(session: Session, checkout: Checkout, cash: int, now: datetime) -> bool:
    """Whether settling at `cash` takes a new hold on the card (one that may be declined)."""
    if checkout.payment_id is None:
        return cash > 0
    current = payments.get_payment(session, checkout.payment_id, payer(checkout))
    if current.status == payments.PaymentStatus.AUTHORIZED:
        return cash > current.amount or (cash > 0 and _expired(current, now))
    return cash > paid_so_far(current)


def settle_self_pay(
    session: Session, checkout: Checkout, cash: int, *, hold_seconds: int, now: datetime
) -> bool:
    """Make the self-pay exactly `cash`, the settlement's psn_cash_pay: capture the hold in full
    or in part, or void it and hold again when the settlement asks for more; never a second
    charge beside the first. False when the card cannot pay (the caller then revokes)."""
    caller = payer(checkout)
    current = (
        payments.get_payment(session, checkout.payment_id, caller) if checkout.payment_id else None
    )
    if current is None:
        return cash == 0 or _charge_anew(session, checkout, cash, None, hold_seconds, now)
    if current.status == payments.PaymentStatus.AUTHORIZED:
        if cash == 0:
            payments.void(session, current.id, caller, now)
            return True
        if cash <= current.amount and not _expired(current, now):
            payments.capture(session, current.id, cash, caller, now)
            return True
        payments.void(session, current.id, caller, now)
        return _charge_anew(session, checkout, cash, current, hold_seconds, now)
    paid = paid_so_far(current)
    if cash > paid:
        if not _charge_anew(session, checkout, cash, current, hold_seconds, now):
            return False
        _refund(session, current, paid, "replaced", caller, now)
        return True
    _refund(session, current, paid - cash, "overpaid", caller, now)
    return True


def release_self_pay(session: Session, checkout: Checkout, now: datetime) -> None:
    """Give back whatever the self-pay holds or took (the checkout ends without settling)."""
    if checkout.payment_id is None:
        return
    caller = payer(checkout)
    payment = payments.get_payment(session, checkout.payment_id, caller)
    if payment.status == payments.PaymentStatus.AUTHORIZED:
        payments.void(session, payment.id, caller, now)
    else:
        _refund(session, payment, paid_so_far(payment), "released", caller, now)


def _charge_anew(
    session: Session,
    checkout: Checkout,
    cash: int,
    previous: payments.Payment | None,
    hold_seconds: int,
    now: datetime,
) -> bool:
    card_id = previous.card_id if previous is not None else checkout.card_id
    if card_id is None:
        return False
    try:
        payment = hold_on_card(
            session, checkout, card_id, cash, 2, hold_seconds=hold_seconds, now=now
        )
    except (CardNotActive, CardExpired):
        return False  # the card cannot pay now: a decline, the settlement is revoked
    if payment.status != payments.PaymentStatus.AUTHORIZED:
        return False
    payments.capture(session, payment.id, None, payer(checkout), now)
    checkout.payment_id = payment.id
    return True


def _refund(
    session: Session,
    payment: payments.Payment,
    amount: int,
    why: str,
    caller: payments.Caller,
    now: datetime,
) -> None:
    if amount > 0:
        refund_id = f"{caller.actor}:{why}"
        payments.refund(session, payment.id, refund_id, amount, caller, now)


def _expired(payment: payments.Payment, now: datetime) -> bool:
    return payment.hold_expires_at is not None and now >= payment.hold_expires_at


# ---- the insurance legs ----------------------------------------------------------------------


def _accounts(session: Session, checkout: Checkout, now: datetime) -> tuple[int, int, int]:
    """(fund clearing, personal account clearing, unit settlement) account ids.

    The clearing accounts are the bank's claims on the fund of the patient's insured place:
    the bank pays the unit now and is paid by the fund later.
    """
    division = checkout.insured_division or ""
    fund = ledger.ensure_account(session, AccountIn(kind=FUND_CLEARING, owner_ref=division), now)
    account = ledger.ensure_account(
        session, AccountIn(kind=ACCOUNT_CLEARING, owner_ref=division), now
    )
    unit = payments.unit_settlement_account(session, checkout.institution_code, now)
    return fund.id, account.id, unit


def _chain(legs: list[TransferIn]) -> list[TransferIn]:
    """Link every leg to the next, so the ledger books all of them or none."""
    return [leg.model_copy(update={"linked": i < len(legs) - 1}) for i, leg in enumerate(legs)]


def _book(session: Session, legs: list[TransferIn], now: datetime) -> None:
    if not legs:
        return
    results = ledger.create_transfers(session, _chain(legs), now)
    refused = [r for r in results if not r.ok]
    if refused:
        # Never expected (clearing accounts carry no limits); the transaction rolls back.
        raise CheckoutError("ledger_refused", f"the ledger refused {refused[0].result}", 500)


def post_insurance_legs(
    session: Session, checkout: Checkout, fund: int, account: int, now: datetime
) -> None:
    """The fund's and the personal account's shares to the unit, as one linked chain."""
    fund_clearing, account_clearing, unit = _accounts(session, checkout, now)
    ref = reference(checkout)
    legs = [
        TransferIn(
            id=f"chk:{checkout.id}:{name}",
            debit_account_id=debit,
            credit_account_id=unit,
            amount=amount,
            code=code,
            reference=ref,
        )
        for name, debit, amount, code in (
            ("fund", fund_clearing, fund, FUND_CODE),
            ("account", account_clearing, account, ACCOUNT_CODE),
        )
        if amount > 0
    ]
    _book(session, legs, now)
    checkout.posted = True


def reverse_insurance_legs(session: Session, checkout: Checkout, now: datetime) -> None:
    """Take the fund's and the personal account's shares back from the unit, linked."""
    fund_clearing, account_clearing, unit = _accounts(session, checkout, now)
    ref = reference(checkout)
    legs = [
        TransferIn(
            id=f"chk:{checkout.id}:{name}:reversal",
            debit_account_id=unit,
            credit_account_id=credit,
            amount=amount,
            code=REVERSAL_CODE,
            reference=ref,
        )
        for name, credit, amount in (
            ("fund", fund_clearing, checkout.setl_fund or 0),
            ("account", account_clearing, checkout.setl_account or 0),
        )
        if amount > 0
    ]
    _book(session, legs, now)


def refund_self_pay(session: Session, checkout: Checkout, now: datetime) -> None:
    """Send the self-pay back to the card it came from (revoke)."""
    if checkout.payment_id is None:
        return
    caller = payer(checkout)
    payment = payments.get_payment(session, checkout.payment_id, caller)
    _refund(session, payment, paid_so_far(payment), "revoke", caller, now)
