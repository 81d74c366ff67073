"""The hospital checkout: a persisted state machine per visit, and its rules.

    bill_received -> identifying (1101) -> identified (2201, 2204, 2206) -> pre_settled
      -> self_pay_collected (the cash part held; 2207) -> completed (ledger posted; receipt)
      -> revoking (2208) -> revoked
    and failed, from any step before money moved (or with every fen given back).

Every function takes a session and `now` and never commits. A step that needs the insurance
platform writes a `PlatformCall` (its msgid and exact request) and an outbox message in the
same transaction as the state change; the driver in flow.py sends it between transactions and
hands the answer back to answers.py, which moves the state on and may write the next call
(calls.py keeps the messages). Each answer is recorded once, under the call's row lock, so two
drivers (the request's own and the outbox's after a crash) can never move the checkout twice.

Other domains call:
    identify_by_evoucher(session, token, terminal_id=, unit_id=, now=) -> Checkout
        An e-voucher code scanned at a terminal identifies the patient of the terminal's
        checkout awaiting identification; the outbox worker sends 1101 and on.
    get_checkout(session, checkout_id, caller) -> Checkout; checkout_out(checkout) -> CheckoutOut
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hub.checkout import calls, legs, messages
from hub.checkout import repository as repo
from hub.checkout.calls import TOPIC, CallInFlight, Lease, Outbound
from hub.checkout.errors import (
    AlreadyRevoked,
    CardMismatch,
    CheckoutNotFound,
    NotSettled,
    SelfPayDeclined,
    SelfPayInvalid,
)
from hub.checkout.models import IN_FLIGHT, Checkout, CheckoutState, ReconciliationRun
from hub.checkout.schemas import CheckoutOut, LineOut, ReceiptOut, SelfPayIn, SplitOut
from hub.checkout.states import move, note, owned, require
from hub.config import Settings
from hub.db import day_bounds
from hub.gateway import service as gateway
from hub.issuer import service as issuer
from hub.issuer.errors import CardNotFound
from hub.payments import service as payments
from integrations.his.client import Bill
from integrations.medical_insurance.client import CertType

# What the flow, the endpoints and other domains use from here.
__all__ = ["TOPIC", "CallInFlight", "Caller", "Lease", "Outbound"]

Caller = payments.Caller
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class Rules:
    """Settings of the checkout."""

    hold_seconds: int  # how long the self-pay hold stands before settlement
    lease_seconds: float  # how long one driver may take to send a message and read its answer
    operator: str  # opter: who the hub says is at the window

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            settings.card_hold_seconds,
            settings.checkout_call_lease_seconds,
            settings.insurance_operator,
        )


@dataclass(frozen=True)
class Credential:
    """Who the patient is, as the terminal gave it. repr=False: it holds an ID number."""

    cert_type: CertType
    cert_no: str
    card_sn: str = ""

    def __repr__(self) -> str:
        return f"Credential({self.cert_type.name})"


# ---- opening -----------------------------------------------------------------------------------


def open_checkout(session: Session, bill: Bill, caller: Caller, now: datetime) -> Checkout:
    """Start the checkout of a HIS bill at the caller's unit; the same bill again returns it."""
    assert caller.unit_id is not None
    unit = gateway.get_unit(session, caller.unit_id)
    existing = repo.checkout_by_bill(session, unit.institution_code, bill.bill_no)
    if existing is not None:
        return existing
    checkout = Checkout(
        unit_id=unit.id,
        terminal_id=caller.terminal_id,
        institution_code=unit.institution_code,
        institution_name=unit.name,
        admin_division=unit.region_code,
        bill_no=bill.bill_no,
        bill=bill.model_dump(mode="json"),
        med_type=bill.med_type,
        medfee=bill.total_fen,
        state=CheckoutState.BILL_RECEIVED.value,
        posted=False,
        created_at=now,
        updated_at=now,
    )
    repo.add(session, checkout)
    note(session, checkout, caller.actor, "checkout.opened", now, medfee=checkout.medfee)
    return checkout


def get_checkout(session: Session, checkout_id: int, caller: Caller) -> Checkout:
    return owned(repo.checkout(session, checkout_id), caller)


def recent_checkouts(
    session: Session,
    *,
    unit_id: int | None = None,
    state: str | None = None,
    bill_no: str | None = None,
    day: date | None = None,
    zone: ZoneInfo = UTC_ZONE,
    limit: int = 100,
) -> list[Checkout]:
    """Newest first: by unit, state, part of the bill number, and the day opened in `zone`."""
    start, end = day_bounds(day, zone) if day else (None, None)
    return list(
        repo.recent(
            session,
            unit_id=unit_id,
            state=state,
            bill_no=bill_no,
            opened_from=start,
            opened_to=end,
            limit=limit,
        )
    )


@dataclass(frozen=True)
class CheckoutDay:
    """Every unit's checkouts on one local day, as the platform timed settlements and revokes."""

    day: date
    opened_count: int
    settled_count: int
    settled_medfee: int  # bill totals of the day's settlements
    settled_cash: int  # their self-pay part, paid from cards
    revoked_count: int
    revoked_medfee: int


def day_summary(session: Session, day: date, zone: ZoneInfo) -> CheckoutDay:
    start, end = day_bounds(day, zone)
    return CheckoutDay(day, *(int(n) for n in repo.day_totals(session, start, end)))


def latest_reconciliation(session: Session) -> ReconciliationRun | None:
    """The newest run of the daily reconciliation with the platform (`sshub reconcile`)."""
    return repo.latest_reconciliation(session)


# ---- identification ----------------------------------------------------------------------------


def identify(
    session: Session,
    checkout_id: int,
    credential: Credential,
    caller: Caller,
    lease: Lease | None,
    now: datetime,
) -> Outbound:
    """Take the patient's credential and write the 1101 person query (the first message)."""
    checkout = owned(repo.checkout(session, checkout_id, lock=True), caller)
    require(checkout, CheckoutState.BILL_RECEIVED)
    checkout.card_id = _card_of(session, credential)
    checkout.cert_type = credential.cert_type.value
    checkout.cert_no, checkout.card_sn = credential.cert_no, credential.card_sn or None
    checkout.failure_code = checkout.failure_message = None
    move(checkout, CheckoutState.IDENTIFYING, now)
    note(
        session,
        checkout,
        caller.actor,
        "checkout.identifying",
        now,
        credential=credential.cert_type.name.lower(),
    )
    return calls.write(
        session, checkout, messages.PERSON_INFO, messages.person_query(checkout), lease, now
    )


def identify_by_evoucher(
    session: Session, token: str, *, terminal_id: int, unit_id: int, now: datetime
) -> Checkout:
    """An e-voucher code scanned at a terminal (the payments scan routing calls this): it
    identifies the patient of that terminal's checkout awaiting identification. Nothing leaves
    the hub here; the outbox worker sends 1101 and the rest, and the terminal polls."""
    checkout = repo.awaiting_identification(session, terminal_id)
    if checkout is None or checkout.unit_id != unit_id:
        raise CheckoutNotFound(message="this terminal has no checkout waiting for a patient")
    caller = Caller(f"terminal:{terminal_id}", unit_id, checkout.institution_code, terminal_id)
    identify(session, checkout.id, Credential(CertType.E_VOUCHER, token), caller, None, now)
    return checkout


def _card_of(session: Session, credential: Credential) -> int | None:
    """The hub's card behind a card credential; the self-pay can be held on it."""
    if credential.cert_type is not CertType.SOCIAL_SECURITY_CARD:
        return None
    try:
        card = issuer.card_by_id_code(session, credential.card_sn)
    except CardNotFound:
        return None  # a card of another issuer still identifies the patient
    if card.card_number != credential.cert_no:
        raise CardMismatch(message="the card number does not belong to this card")
    return card.id


# ---- self-pay and settlement -------------------------------------------------------------------


def collect_self_pay(
    session: Session,
    checkout_id: int,
    self_pay: SelfPayIn,
    caller: Caller,
    lease: Lease | None,
    rules: Rules,
    now: datetime,
) -> Outbound:
    """Hold (or adopt) the cash part and write the 2207 settlement message."""
    checkout = owned(repo.checkout(session, checkout_id, lock=True), caller)
    require(checkout, CheckoutState.PRE_SETTLED)
    cash = checkout.pre_cash or 0
    if self_pay.method == "none" and cash:
        raise SelfPayInvalid(message=f"{cash} fen is the patient's to pay")
    if self_pay.method == "card":
        checkout.payment_id = _hold(session, checkout, cash, rules, now)
    if self_pay.method == "payment":
        assert self_pay.payment_id is not None
        checkout.payment_id = _adopt(session, checkout, self_pay.payment_id, cash, caller)
    checkout.self_pay_method = self_pay.method
    move(checkout, CheckoutState.SELF_PAY_COLLECTED, now)
    note(
        session,
        checkout,
        caller.actor,
        "checkout.self_pay_collected",
        now,
        method=self_pay.method,
        cash=cash,
        payment_id=checkout.payment_id,
    )
    request = messages.settlement_request(checkout)
    return calls.write(session, checkout, messages.SETTLE, request, lease, now)


def _hold(
    session: Session, checkout: Checkout, cash: int, rules: Rules, now: datetime
) -> int | None:
    if checkout.card_id is None:
        raise SelfPayInvalid(message="the patient was not identified by a card of this bank")
    if cash == 0:
        return None
    payment = legs.hold_on_card(
        session, checkout, checkout.card_id, cash, 1, hold_seconds=rules.hold_seconds, now=now
    )
    if payment.status != payments.PaymentStatus.AUTHORIZED:
        raise SelfPayDeclined(message=f"the card declined: {payment.decline_code}")
    return payment.id


def _adopt(session: Session, checkout: Checkout, payment_id: int, cash: int, caller: Caller) -> int:
    """A payment the unit's terminal took for the cash part (card tap, payment or bill code)."""
    payment = payments.get_payment(session, payment_id, caller)
    if payment.unit_id != checkout.unit_id:
        raise SelfPayInvalid(message="the payment belongs to another unit")
    if repo.checkout_by_payment(session, payment_id) is not None:
        raise SelfPayInvalid(message="the payment already pays another checkout")
    usable = (payments.PaymentStatus.AUTHORIZED, payments.PaymentStatus.CAPTURED)
    if payment.status not in usable or legs.paid_so_far(payment) != cash:
        raise SelfPayInvalid(message=f"the payment must hold or have taken exactly {cash} fen")
    return payment.id


# ---- revoke ------------------------------------------------------------------------------------


def request_revoke(
    session: Session, checkout_id: int, caller: Caller, lease: Lease | None, now: datetime
) -> Outbound:
    """Write the 2208 revoke of a completed checkout (its message)."""
    checkout = owned(repo.checkout(session, checkout_id, lock=True), caller)
    if checkout.state in (CheckoutState.REVOKING, CheckoutState.REVOKED):
        raise AlreadyRevoked(message="the settlement is revoked or being revoked")
    if checkout.state != CheckoutState.COMPLETED:
        raise NotSettled(message=f"only a completed checkout can be revoked ({checkout.state})")
    checkout.failure_code = checkout.failure_message = None
    move(checkout, CheckoutState.REVOKING, now)
    note(session, checkout, caller.actor, "checkout.revoking", now, setl_id=checkout.setl_id)
    request = messages.revoke_request(checkout)
    return calls.write(session, checkout, messages.REVOKE, request, lease, now)


# ---- views -------------------------------------------------------------------------------------


def checkout_out(checkout: Checkout) -> CheckoutOut:
    return CheckoutOut(
        checkout_id=checkout.id,
        state=checkout.state,
        in_flight=CheckoutState(checkout.state) in IN_FLIGHT,
        bill_no=checkout.bill_no,
        medfee=checkout.medfee,
        patient_name=checkout.psn_name,
        credential=_masked_credential(checkout),
        pre_settlement=_split(
            checkout.medfee, checkout.pre_fund, checkout.pre_account, checkout.pre_cash
        ),
        settlement=_split(
            checkout.medfee, checkout.setl_fund, checkout.setl_account, checkout.setl_cash
        ),
        setl_id=checkout.setl_id,
        payment_id=checkout.payment_id,
        self_pay_method=checkout.self_pay_method,
        failure_code=checkout.failure_code,
        failure_message=checkout.failure_message,
        created_at=checkout.created_at,
        updated_at=checkout.updated_at,
    )


def receipt(session: Session, checkout_id: int, caller: Caller) -> ReceiptOut:
    """The printed receipt of a settled (and perhaps since revoked) checkout."""
    checkout = get_checkout(session, checkout_id, caller)
    if checkout.setl_id is None or not checkout.posted or checkout.settled_at is None:
        raise NotSettled(message="the checkout has no settlement to print")
    card = None
    if checkout.payment_id is not None:
        card = payments.get_payment(session, checkout.payment_id, caller).pan_masked
    split = _split(checkout.medfee, checkout.setl_fund, checkout.setl_account, checkout.setl_cash)
    assert split is not None
    bill = Bill.model_validate(checkout.bill)
    return ReceiptOut(
        checkout_id=checkout.id,
        institution_code=checkout.institution_code,
        institution_name=checkout.institution_name,
        bill_no=checkout.bill_no,
        patient_name=checkout.psn_name or "",
        setl_id=checkout.setl_id,
        settled_at=checkout.settled_at,
        lines=[
            LineOut(
                line_no=line.line_no,
                name=line.name,
                item_class=line.item_class,
                quantity=str(line.quantity),
                price_fen=line.price_fen,
                amount_fen=line.amount_fen,
            )
            for line in bill.lines
        ],
        split=split,
        card=card,
        revoked=checkout.state == CheckoutState.REVOKED,
        revoke_setl_id=checkout.revoke_setl_id,
    )


def _split(medfee: int, fund: int | None, account: int | None, cash: int | None) -> SplitOut | None:
    if fund is None or account is None or cash is None:
        return None
    return SplitOut(medfee=medfee, fund=fund, account=account, cash=cash)


def _masked_credential(checkout: Checkout) -> str | None:
    if checkout.cert_type is None or checkout.cert_no is None:
        return None
    number = checkout.cert_no
    shown = number[:4] + "*" * max(0, len(number) - 8) + number[-4:] if len(number) > 8 else "****"
    return f"{CertType(checkout.cert_type).name.lower()} {shown}"
