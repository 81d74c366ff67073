"""Refusals of the hospital checkout, each with its HTTP status and a stable code.

A refusal by the insurance platform in the middle of a checkout is not an error of the request
that drove it: it is recorded on the checkout (`failure_code`) and the checkout ends in a clear
state. These errors are for requests the hub refuses itself.
"""

from __future__ import annotations

from hub.errors import HubError


class CheckoutError(HubError):
    code = "checkout_error"
    status = 409


class CheckoutNotFound(CheckoutError):
    code = "checkout_not_found"
    status = 404


class CheckoutOfAnotherUnit(CheckoutError):
    """A unit's terminals act only on that unit's checkouts."""

    code = "checkout_of_another_unit"
    status = 403


class WrongState(CheckoutError):
    """The step asked for does not follow from where the checkout stands."""

    code = "checkout_wrong_state"


class AlreadyRevoked(CheckoutError):
    code = "checkout_already_revoked"


class NotSettled(CheckoutError):
    code = "checkout_not_settled"


class BillInvalid(CheckoutError):
    """The HIS bill does not hold together (no lines, a zero or negative line, an unknown class)."""

    code = "bill_invalid"
    status = 422


class BillNotFound(CheckoutError):
    code = "bill_not_found"
    status = 404


class HisUnavailable(CheckoutError):
    code = "his_unavailable"
    status = 503


class CardMismatch(CheckoutError):
    """The card number read does not belong to the card's identification code."""

    code = "card_mismatch"
    status = 422


class SelfPayInvalid(CheckoutError):
    """The self-pay offered cannot carry this checkout's cash part."""

    code = "self_pay_invalid"
    status = 422


class SelfPayDeclined(CheckoutError):
    """The card could not hold the cash part (insufficient funds, a frozen account...)."""

    code = "self_pay_declined"
    status = 402


class UnitUnknown(CheckoutError):
    code = "unit_not_found"
    status = 404


class PlatformUnavailable(CheckoutError):
    """No answer from the insurance platform (for reconciliation, which is asked directly)."""

    code = "insurance_unavailable"
    status = 503
