"""Route a scanned code, from a scan engine's text or a decoded camera frame, by what it is.

- a payment code (EMVCo CPM: base64 that starts with 85 05 "CPV01") pays the sale;
- a bill code (EMVCo MPM: starts with 00 02 "01") shows that bill's status to the cashier;
- a medical insurance e-voucher code (its token: "ECT", the six-digit admin division, then
  letters and digits) identifies the patient of the terminal's waiting hospital checkout, as
  credential type 01.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from devices.qr.errors import QrError
from devices.qr.frames import decode_frame
from hub.checkout import service as checkout
from hub.payments import bills, codes
from hub.payments.code_errors import (
    BillMismatch,
    BillNotFound,
    CodeNotRecognised,
    PaymentDetailsRequired,
    from_qr_error,
)
from hub.payments.code_models import Bill, CodePayment

CPM_PREFIX = "hQVDUFYwM"  # base64 of 85 05 "CPV0": every CPM payload starts so
MPM_PREFIX = "000201"
EVOUCHER = re.compile(r"^ECT[0-9]{6}[0-9A-Z]{8,64}$")


class CodeKind(enum.StrEnum):
    PAYMENT_CODE = "payment_code"
    BILL_CODE = "bill_code"
    EVOUCHER = "evoucher"
    UNKNOWN = "unknown"


def kind_of(text: str) -> CodeKind:
    """What a scanned text is, by its form alone (nothing is decoded or looked up)."""
    if text.startswith(MPM_PREFIX):
        return CodeKind.BILL_CODE
    if text.startswith(CPM_PREFIX):
        return CodeKind.PAYMENT_CODE
    if EVOUCHER.match(text):
        return CodeKind.EVOUCHER
    return CodeKind.UNKNOWN


@dataclass(frozen=True)
class ScanContext:
    """Who scanned, and for a sale, its id and amount."""

    terminal_id: int
    unit_id: int
    institution_code: str
    transaction_id: str | None = None
    amount: int | None = None


@dataclass(frozen=True)
class Routed:
    kind: CodeKind
    payment: CodePayment | None = None
    bill: Bill | None = None
    checkout_id: int | None = None


def frame_text(data: bytes, *, max_bytes: int, max_pixels: int) -> str:
    """The text of the one QR code in a camera frame; a CodeError when there is not exactly one."""
    try:
        return decode_frame(data, max_bytes=max_bytes, max_pixels=max_pixels)
    except QrError as exc:
        raise from_qr_error(exc) from None


def route_scan(
    session: Session,
    text: str,
    context: ScanContext,
    key: codes.PaymentCodeKey,
    policy: codes.CodePolicy,
    now: datetime,
) -> Routed:
    """Hand a scanned text to its flow; raises a CodeError for anything not handled."""
    kind = kind_of(text)
    if kind is CodeKind.PAYMENT_CODE:
        return Routed(kind, payment=_pay(session, text, context, key, policy, now))
    if kind is CodeKind.BILL_CODE:
        return Routed(kind, bill=_bill_for_cashier(session, text, context))
    if kind is CodeKind.EVOUCHER:
        identified = checkout.identify_by_evoucher(
            session, text, terminal_id=context.terminal_id, unit_id=context.unit_id, now=now
        )
        return Routed(kind, checkout_id=identified.id)
    raise CodeNotRecognised(message="not a payment code, bill code or e-voucher code")


def _pay(
    session: Session,
    text: str,
    context: ScanContext,
    key: codes.PaymentCodeKey,
    policy: codes.CodePolicy,
    now: datetime,
) -> CodePayment:
    codes.read_code(text, key)  # a malformed or forged code says so before anything else
    if context.transaction_id is None or context.amount is None:
        raise PaymentDetailsRequired(message="a payment code needs transaction_id and amount_fen")
    request = codes.CodePaymentRequest(
        context.terminal_id,
        context.unit_id,
        context.institution_code,
        context.transaction_id,
        context.amount,
        text,
    )
    return codes.pay_with_code(session, request, key, policy, now)


def _bill_for_cashier(session: Session, text: str, context: ScanContext) -> Bill:
    claim = bills.read_bill_code(text)
    if claim.institution_code != context.institution_code:
        # Another unit's bills are not this terminal's business; do not confirm they exist.
        raise BillNotFound(message="no such bill at this unit")
    bill = bills.get_bill(session, claim.institution_code, claim.bill_number)
    if bill.amount != claim.amount:
        raise BillMismatch(message="the bill code's amount differs from the bill")
    return bill
