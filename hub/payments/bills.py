"""Bill codes: merchant-presented QR codes a unit shows for one bill, paid at most once.

A bill code is an EMVCo MPM payload:

    00 "01", 01 "12" (dynamic), 26 {00 GUID "CN.COM.SSCHUB", 01 institution code},
    52 "8062" (hospitals), 53 "156" (CNY), 54 amount, 58 "CN", 59 merchant name, 60 city,
    62 {01 bill number}, 64 {00 "ZH", 01 local name} (when the unit's name is not ASCII), 63 CRC

The hub's bill row is the truth; the payload only names it. Paying moves the money through
the payments service (channel `qr_code`, idempotent by the bill). A payload whose amount or unit
differs from the row is refused, so an edited code (with a recomputed CRC) pays nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from devices.qr.errors import QrError
from devices.qr.mpm import MpmField, decode_mpm, encode_mpm, field, subfield
from hub.gateway import service as gateway
from hub.issuer import service as issuer
from hub.payments import code_charges as charges
from hub.payments import code_repository as repo
from hub.payments import service as payments
from hub.payments.code_charges import Charge
from hub.payments.code_errors import (
    AmountInvalid,
    BillAlreadyPaid,
    BillCancelled,
    BillExists,
    BillExpired,
    BillInvalid,
    BillMismatch,
    BillNotFound,
    from_qr_error,
)
from hub.payments.code_models import Bill, BillStatus

MERCHANT_GUID = "CN.COM.SSCHUB"
MERCHANT_CATEGORY = "8062"  # hospitals
CURRENCY_CNY = "156"
COUNTRY = "CN"
MERCHANT_TEMPLATE_IDS = [f"{n:02d}" for n in range(26, 52)]
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,10})(\.[0-9]{1,2})?$")
_NAME_MAX, _CITY_MAX = 25, 15


@dataclass(frozen=True)
class BillSpec:
    """A bill to show as a code: which unit, which bill, how much, for how long."""

    institution_code: str
    bill_number: str
    amount: int
    valid_seconds: int
    created_by: str  # "terminal:42" or "his:<institution code>"


@dataclass(frozen=True)
class BillClaim:
    """What a bill code's payload names."""

    institution_code: str
    bill_number: str
    amount: int


def format_amount(fen: int) -> str:
    """Fen as an EMVCo amount: 2372 -> "23.72"."""
    return f"{fen // 100}.{fen % 100:02d}"


def parse_amount(text: str) -> int:
    """An EMVCo amount ("23.72", "100", "99.5") in fen; AmountInvalid when malformed."""
    match = _AMOUNT.match(text)
    if match is None:
        raise AmountInvalid(message="bill code amount is malformed")
    whole, fraction = match.group(1), (match.group(2) or ".")[1:]
    return int(whole) * 100 + int(fraction.ljust(2, "0"))


def _ascii_name(name: str, fallback: str, limit: int) -> str:
    printable = name.isascii() and name.isprintable() and name.strip()
    return (name.strip() if printable else fallback)[:limit]


def bill_payload(bill: Bill, unit_name: str, region_code: str) -> str:
    """The MPM text of a bill (what the unit's screen or receipt shows)."""
    fields = [
        MpmField("00", "01"),
        MpmField("01", "12"),
        MpmField("26", (MpmField("00", MERCHANT_GUID), MpmField("01", bill.institution_code))),
        MpmField("52", MERCHANT_CATEGORY),
        MpmField("53", CURRENCY_CNY),
        MpmField("54", format_amount(bill.amount)),
        MpmField("58", COUNTRY),
        MpmField("59", _ascii_name(unit_name, bill.institution_code, _NAME_MAX)),
        MpmField("60", _ascii_name(region_code, "CN", _CITY_MAX)),
        MpmField("62", (MpmField("01", bill.bill_number),)),
    ]
    if not unit_name.isascii():
        local = (MpmField("00", "ZH"), MpmField("01", unit_name[:_NAME_MAX]))
        fields.append(MpmField("64", local))
    return encode_mpm(fields)


@dataclass(frozen=True)
class UnitLabel:
    """The unit a bill is for, and how it is named on its codes."""

    id: int
    name: str
    region_code: str


def unit_label(session: Session, *, unit_id: int) -> UnitLabel:
    unit = gateway.get_unit(session, unit_id)
    return UnitLabel(unit.id, unit.name, unit.region_code)


def unit_label_by_code(session: Session, institution_code: str) -> UnitLabel:
    """For bills the HIS creates, which name the unit by its institution code."""
    for unit in gateway.list_units(session):
        if unit.institution_code == institution_code:
            return UnitLabel(unit.id, unit.name, unit.region_code)
    raise BillInvalid("unit_not_found", f"no unit {institution_code}", 404)


def create_bill(session: Session, spec: BillSpec, unit: UnitLabel, now: datetime) -> Bill:
    """Register a bill and make its code; the same bill again (same amount) returns it."""
    existing = repo.bill(session, spec.institution_code, spec.bill_number)
    if existing is not None:
        if existing.amount != spec.amount or existing.status != BillStatus.OPEN:
            raise BillExists(message="this bill number is already in use")
        return existing
    bill = Bill(
        unit_id=unit.id,
        institution_code=spec.institution_code,
        bill_number=spec.bill_number,
        amount=spec.amount,
        payload="",
        status=BillStatus.OPEN.value,
        created_by=spec.created_by,
        created_at=now,
        expires_at=now + timedelta(seconds=spec.valid_seconds),
    )
    bill.payload = bill_payload(bill, unit.name, unit.region_code)
    return repo.add(session, bill)


def status_of(bill: Bill, now: datetime) -> BillStatus:
    """The bill's status as the cashier sees it: an open bill past its time is expired."""
    if bill.status == BillStatus.OPEN and bill.expires_at <= now:
        return BillStatus.EXPIRED
    return BillStatus(bill.status)


def get_bill(session: Session, institution_code: str, bill_number: str) -> Bill:
    bill = repo.bill(session, institution_code, bill_number)
    if bill is None:
        raise BillNotFound(message="no such bill")
    return bill


def cancel_bill(
    session: Session, institution_code: str, bill_number: str, actor: str, now: datetime
) -> Bill:
    """Withdraw an unpaid bill; cancelling twice is harmless, a paid bill cannot be cancelled."""
    bill = repo.bill(session, institution_code, bill_number, lock=True)
    if bill is None:
        raise BillNotFound(message="no such bill")
    if bill.status == BillStatus.PAID:
        raise BillAlreadyPaid(message="the bill is paid; refund it instead")
    if bill.status == BillStatus.OPEN:
        bill.status = BillStatus.CANCELLED.value
        bill.cancelled_at = now
        bill.cancelled_by = actor
        session.flush()
    return bill


def read_bill_code(text: str) -> BillClaim:
    """Decode and check a bill code's payload; raises a CodeError (nothing is looked up)."""
    try:
        fields = decode_mpm(text)
        merchant = next(
            (
                subfield(fields, tid, "01")
                for tid in MERCHANT_TEMPLATE_IDS
                if subfield(fields, tid, "00") == MERCHANT_GUID
            ),
            None,
        )
        currency, country, amount = field(fields, "53"), field(fields, "58"), field(fields, "54")
        bill_number = subfield(fields, "62", "01")
    except QrError as exc:
        raise from_qr_error(exc) from None
    if merchant is None:
        raise BillInvalid(message="not a bill code of this bank")
    if currency != CURRENCY_CNY or country != COUNTRY:
        raise BillInvalid(message="bill code is not in CNY for China")
    if amount is None or bill_number is None:
        raise BillInvalid(message="bill code has no amount or no bill number")
    return BillClaim(merchant, bill_number, parse_amount(amount))


def pay_bill(
    session: Session, text: str, card_id: int, now: datetime, *, hold_seconds: int
) -> Bill:
    """Pay the bill a code names from the card's account, once.

    The same card paying again gets the paid bill back (an app retrying after a timeout);
    any other payment of a paid, cancelled or expired bill is refused and moves nothing.
    """
    claim = read_bill_code(text)
    bill = repo.bill(session, claim.institution_code, claim.bill_number, lock=True)
    if bill is None:
        raise BillNotFound(message="no such bill")
    if bill.amount != claim.amount:
        raise BillMismatch(message="the bill code's amount differs from the bill")
    if bill.status == BillStatus.PAID:
        if bill.paid_card_id == card_id:
            return bill
        raise BillAlreadyPaid(message="the bill is already paid")
    if bill.status == BillStatus.CANCELLED:
        raise BillCancelled(message="the bill was cancelled")
    if bill.expires_at <= now:
        raise BillExpired(message="the bill code has expired; ask for a new one")
    card = issuer.usable_card(issuer.card_by_id(session, card_id), now.date())
    payment = charges.charge(session, _charge(bill, card), now, hold_seconds=hold_seconds)
    bill.status = BillStatus.PAID.value
    bill.paid_at = now
    bill.paid_card_id = card.id
    bill.payment_id = payment.id
    session.flush()
    return bill


def _charge(bill: Bill, card: issuer.Card) -> Charge:
    caller = payments.Caller(f"cardholder:{card.card_number}", bill.unit_id, bill.institution_code)
    return Charge(
        key=f"bill:{bill.id}",
        fingerprint=f"{bill.id}:{card.id}:{bill.amount}",
        card_id=card.id,
        card_account_id=card.account_id,
        pan_masked=card.pan_masked,
        amount=bill.amount,
        caller=caller,
    )
