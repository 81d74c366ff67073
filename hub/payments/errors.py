"""Refusals of the payments API, each with a stable code. Declines are not errors: an
authorisation that the issuer or the ledger refuses is a recorded payment with a decline code."""

from __future__ import annotations

from hub.errors import HubError


class PaymentError(HubError):
    code = "payment_error"
    status = 409


class PaymentNotFound(PaymentError):
    code = "payment_not_found"
    status = 404


class PaymentOfAnotherUnit(PaymentError):
    """A unit's terminals act only on that unit's payments."""

    code = "payment_of_another_unit"
    status = 403


class TransactionIdReused(PaymentError):
    code = "transaction_id_reused"


class TransactionReversed(PaymentError):
    code = "transaction_reversed"


class AmountMismatch(PaymentError):
    code = "amount_mismatch"
    status = 422


class CurrencyNotSupported(PaymentError):
    code = "currency_not_supported"
    status = 422


class PaymentNotAuthorized(PaymentError):
    """Capture or void of a payment that holds nothing (declined, voided, reversed...)."""

    code = "payment_not_authorized"


class AlreadyCaptured(PaymentError):
    code = "already_captured"


class AuthorizationExpired(PaymentError):
    code = "authorization_expired"


class CaptureExceedsAuthorized(PaymentError):
    code = "capture_exceeds_authorized"


class NotCaptured(PaymentError):
    code = "not_captured"


class RefundExceedsCaptured(PaymentError):
    code = "refund_exceeds_captured"


class RefundIdReused(PaymentError):
    code = "refund_id_reused"


class UnitUnknown(PaymentError):
    code = "unit_not_found"
    status = 404
