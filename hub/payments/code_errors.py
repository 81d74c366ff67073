"""Refusals of the QR flows, each with its HTTP status and a stable machine code.

Codec and frame errors from `devices.qr` keep their own codes (`qr_crc_mismatch`,
`frame_too_large`, ...) through `from_qr_error`.
"""

from __future__ import annotations

from devices.qr.errors import FrameTooLarge, QrError
from hub.errors import HubError


class CodeError(HubError):
    code = "qr_code_error"
    status = 400


class QrRefused(CodeError):
    """A payload or frame the QR library refused; the code is the library's."""


def from_qr_error(exc: QrError) -> QrRefused:
    status = 413 if isinstance(exc, FrameTooLarge) else 422
    return QrRefused(exc.code, str(exc), status)


class CardholderUnauthorized(CodeError):
    code = "cardholder_unauthorized"
    status = 401


class CardholderTokenNotFound(CodeError):
    code = "cardholder_token_not_found"
    status = 404


class PaymentCodeInvalid(CodeError):
    """The payload is a well-formed CPM payload but not one of this hub's payment codes."""

    code = "payment_code_invalid"
    status = 422


class PaymentCodeTampered(CodeError):
    code = "payment_code_mac_invalid"
    status = 422


class PaymentCodeUnknown(CodeError):
    code = "payment_code_unknown"
    status = 404


class PaymentCodeExpired(CodeError):
    code = "payment_code_expired"
    status = 410


class PaymentCodeUsed(CodeError):
    code = "payment_code_used"
    status = 409


class TransactionIdReused(CodeError):
    """The terminal's transaction id was already used for a different payment."""

    code = "transaction_id_reused"
    status = 409


class AmountInvalid(CodeError):
    code = "amount_invalid"
    status = 422


class InsufficientFunds(CodeError):
    code = "insufficient_funds"
    status = 402


class AccountNotUsable(CodeError):
    """The card's account is frozen or closed in the ledger."""

    code = "account_not_usable"
    status = 403


class BillInvalid(CodeError):
    """A well-formed MPM payload that is not a bill code of this hub (wrong GUID, currency...)."""

    code = "bill_code_invalid"
    status = 422


class BillNotFound(CodeError):
    code = "bill_not_found"
    status = 404


class BillMismatch(CodeError):
    """The bill code's amount or unit differs from the bill on record."""

    code = "bill_mismatch"
    status = 422


class BillExists(CodeError):
    code = "bill_exists"
    status = 409


class BillAlreadyPaid(CodeError):
    code = "bill_already_paid"
    status = 409


class BillCancelled(CodeError):
    code = "bill_cancelled"
    status = 409


class BillExpired(CodeError):
    code = "bill_expired"
    status = 410


class CodeNotRecognised(CodeError):
    code = "code_not_recognised"
    status = 422


class PaymentDetailsRequired(CodeError):
    """A payment code was scanned without the transaction id and amount to charge."""

    code = "payment_details_required"
    status = 422


class PaymentNotFound(CodeError):
    code = "payment_not_found"
    status = 404
