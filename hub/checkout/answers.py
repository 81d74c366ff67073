"""What each platform answer (or refusal) does to a checkout.

`record_answer` and `record_refusal` run in one transaction each, under the message's row lock:
an answer is recorded once, whichever driver brings it, and the money of a settlement or a
revoke moves in that same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from hub.checkout import calls, legs, messages
from hub.checkout import repository as repo
from hub.checkout.calls import Lease, Outbound
from hub.checkout.models import CallState, Checkout, CheckoutState
from hub.checkout.service import Rules
from hub.checkout.states import ERROR_CHARS, fail, move, note
from integrations.medical_insurance.client import (
    PersonInfo,
    Settlement,
    SettlementRevocation,
    SettlementSplit,
    Visit,
)


def record_answer(
    session: Session,
    call_id: int,
    answer: BaseModel,
    lease: Lease | None,
    rules: Rules,
    now: datetime,
) -> Outbound | None:
    """The platform's answer to a message: move the checkout on; returns the next message
    (leased to `lease`), if the step has one."""
    call = repo.call(session, call_id, lock=True)
    if call is None or call.state != CallState.PENDING:
        return None  # recorded already, by this driver's earlier run or another driver
    call.state, call.answer, call.answered_at = CallState.ANSWERED.value, messages.dump(answer), now
    checkout = repo.checkout(session, call.checkout_id, lock=True) if call.checkout_id else None
    if checkout is None:
        return None
    step = _ANSWERED[call.infno]
    next_call = step(session, checkout, answer, rules, now)
    if next_call is None:
        return None
    infno, request = next_call
    return calls.write(session, checkout, infno, request, lease, now)


def record_refusal(
    session: Session, call_id: int, infcode: int, err_msg: str, now: datetime
) -> None:
    """The platform refused a message (it did nothing): end the step in a clear state."""
    call = repo.call(session, call_id, lock=True)
    if call is None or call.state != CallState.PENDING:
        return
    call.state, call.answered_at = CallState.REFUSED.value, now
    call.error = f"[{infcode}] {err_msg}"[:ERROR_CHARS]
    checkout = repo.checkout(session, call.checkout_id, lock=True) if call.checkout_id else None
    if checkout is not None:
        _REFUSED[call.infno](session, checkout, err_msg, now)


# ---- what each answer does ---------------------------------------------------------------------

NextCall = tuple[str, BaseModel] | None


def _person_found(
    session: Session, checkout: Checkout, info: PersonInfo, rules: Rules, now: datetime
) -> NextCall:
    try:
        insurance = info.insurance()
    except LookupError:
        fail(session, checkout, "not_insured", "the patient holds no insurance in force", now)
        return None
    checkout.psn_no, checkout.psn_name = info.baseinfo.psn_no, info.baseinfo.psn_name
    checkout.insutype, checkout.insured_division = insurance.insutype, insurance.insuplc_admdvs
    move(checkout, CheckoutState.IDENTIFIED, now)
    return messages.REGISTER_VISIT, messages.visit_registration(checkout)


def _visit_registered(
    session: Session, checkout: Checkout, visit: Visit, rules: Rules, now: datetime
) -> NextCall:
    checkout.mdtrt_id, checkout.chrg_bchno = visit.mdtrt_id, f"CB{checkout.id}"
    checkout.updated_at = now
    return messages.UPLOAD_FEES, messages.fee_upload(checkout)


def _fees_uploaded(
    session: Session, checkout: Checkout, results: BaseModel, rules: Rules, now: datetime
) -> NextCall:
    checkout.updated_at = now
    return messages.PRE_SETTLE, messages.settlement_request(checkout)


def _pre_settled(
    session: Session, checkout: Checkout, split: SettlementSplit, rules: Rules, now: datetime
) -> NextCall:
    checkout.pre_fund, checkout.pre_account = split.fund_pay_sumamt, split.acct_pay
    checkout.pre_cash = split.psn_cash_pay
    move(checkout, CheckoutState.PRE_SETTLED, now)
    note(
        session,
        checkout,
        "system",
        "checkout.pre_settled",
        now,
        psn_no=checkout.psn_no,
        fund=split.fund_pay_sumamt,
        account=split.acct_pay,
        cash=split.psn_cash_pay,
    )
    return None


def _settled(
    session: Session, checkout: Checkout, settlement: Settlement, rules: Rules, now: datetime
) -> NextCall:
    """The platform booked the settlement: move the money, all of it in this transaction."""
    checkout.setl_id, checkout.settled_at = settlement.setl_id, settlement.setl_time
    checkout.setl_fund, checkout.setl_account = settlement.fund_pay_sumamt, settlement.acct_pay
    checkout.setl_cash = settlement.psn_cash_pay
    cash = settlement.psn_cash_pay
    fund, account = settlement.fund_pay_sumamt, settlement.acct_pay
    # Row locks before the audit trail's lock, never after it (payments audits as it goes),
    # so concurrent settlements cannot deadlock: the insurance legs go first, unless the card
    # must be charged anew and may decline (rare), which has to be known before them.
    if legs.needs_new_charge(session, checkout, cash, now):
        if not legs.settle_self_pay(
            session, checkout, cash, hold_seconds=rules.hold_seconds, now=now
        ):
            return _unpaid(session, checkout, cash, now)
        legs.post_insurance_legs(session, checkout, fund, account, now)
    else:
        legs.post_insurance_legs(session, checkout, fund, account, now)
        legs.settle_self_pay(session, checkout, cash, hold_seconds=rules.hold_seconds, now=now)
    move(checkout, CheckoutState.COMPLETED, now)
    note(
        session,
        checkout,
        "system",
        "checkout.completed",
        now,
        setl_id=settlement.setl_id,
        fund=settlement.fund_pay_sumamt,
        account=settlement.acct_pay,
        cash=cash,
        payment_id=checkout.payment_id,
    )
    return None


def _unpaid(session: Session, checkout: Checkout, cash: int, now: datetime) -> NextCall:
    """The platform booked a cash part the card cannot pay: undo the booking, give back what
    was taken, and end without money moved."""
    legs.release_self_pay(session, checkout, now)
    checkout.failure_code = "self_pay_declined"
    checkout.failure_message = f"the card could not pay {cash} fen; settlement revoked"
    move(checkout, CheckoutState.REVOKING, now)
    note(session, checkout, "system", "checkout.settlement_unpaid", now, cash=cash)
    return messages.REVOKE, messages.revoke_request(checkout)


def _revoked(
    session: Session,
    checkout: Checkout,
    revocation: SettlementRevocation,
    rules: Rules,
    now: datetime,
) -> NextCall:
    checkout.revoke_setl_id, checkout.revoked_at = revocation.setl_id, revocation.setl_time
    if checkout.posted:
        legs.reverse_insurance_legs(session, checkout, now)
        legs.refund_self_pay(session, checkout, now)
        move(checkout, CheckoutState.REVOKED, now)
    else:  # the settlement the card could not pay, undone
        move(checkout, CheckoutState.FAILED, now)
    note(session, checkout, "system", "checkout.revoked", now, revoke_setl_id=revocation.setl_id)
    return None


_ANSWERED: dict[str, Any] = {
    messages.PERSON_INFO: _person_found,
    messages.REGISTER_VISIT: _visit_registered,
    messages.UPLOAD_FEES: _fees_uploaded,
    messages.PRE_SETTLE: _pre_settled,
    messages.SETTLE: _settled,
    messages.REVOKE: _revoked,
}


def _not_identified(session: Session, checkout: Checkout, err_msg: str, now: datetime) -> None:
    """The platform does not know the patient: the cashier may try another credential."""
    checkout.cert_type = checkout.cert_no = checkout.card_sn = None
    checkout.card_id = None
    checkout.failure_code, checkout.failure_message = "patient_unknown", err_msg[:ERROR_CHARS]
    move(checkout, CheckoutState.BILL_RECEIVED, now)
    note(session, checkout, "system", "checkout.patient_unknown", now)


def _failing(code: str) -> Any:
    def refused(session: Session, checkout: Checkout, err_msg: str, now: datetime) -> None:
        fail(session, checkout, code, err_msg, now)

    return refused


def _settle_refused(session: Session, checkout: Checkout, err_msg: str, now: datetime) -> None:
    legs.release_self_pay(session, checkout, now)
    fail(session, checkout, "settlement_refused", err_msg, now)


def _revoke_refused(session: Session, checkout: Checkout, err_msg: str, now: datetime) -> None:
    """The platform keeps the settlement: the checkout stays as it was, with the reason."""
    if checkout.posted:
        move(checkout, CheckoutState.COMPLETED, now)
        checkout.failure_code, checkout.failure_message = "revoke_refused", err_msg[:ERROR_CHARS]
        note(session, checkout, "system", "checkout.revoke_refused", now)
    else:
        fail(session, checkout, "revoke_refused", err_msg, now)


_REFUSED: dict[str, Any] = {
    messages.PERSON_INFO: _not_identified,
    messages.REGISTER_VISIT: _failing("visit_refused"),
    messages.UPLOAD_FEES: _failing("fees_refused"),
    messages.PRE_SETTLE: _failing("pre_settlement_refused"),
    messages.SETTLE: _settle_refused,
    messages.REVOKE: _revoke_refused,
}
