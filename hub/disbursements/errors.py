"""Disbursement refusals, each with a stable code and its HTTP status."""

from __future__ import annotations

from hub.errors import HubError


class DisbursementError(HubError):
    pass


# Refusals of the request itself: nothing is recorded, a corrected order may use the same id.


class AmountNotPositive(DisbursementError):
    code = "amount_not_positive"
    status = 422


class AmountOverCap(DisbursementError):
    code = "amount_over_cap"
    status = 422


class ValueDateInvalid(DisbursementError):
    code = "value_date_invalid"
    status = 422


class ExternalIdReused(DisbursementError):
    code = "external_id_reused"
    status = 409


class InFlight(DisbursementError):
    code = "disbursement_in_flight"
    status = 409


class FundingAccountMissing(DisbursementError):
    code = "funding_account_missing"
    status = 503


# Refusals for the state met: recorded as the final result of the external id, called back.
REJECTION_STATUS = {
    "card_not_found": 422,
    "card_blocked": 409,
    "card_expired": 409,
    "card_account_not_active": 409,
    "identity_mismatch": 422,
    "daily_limit_exceeded": 409,
    "funding_insufficient": 409,
    "funding_unavailable": 409,
}


class Rejected(DisbursementError):
    """A recorded rejection, raised again for every retry of the same order."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, REJECTION_STATUS.get(code, 409))


# Undo and look-ups.


class DisbursementNotFound(DisbursementError):
    code = "disbursement_not_found"
    status = 404


class NotUndoable(DisbursementError):
    code = "not_undoable"
    status = 409


class UndoNotCovered(DisbursementError):
    code = "undo_not_covered"
    status = 409


# Loan clients and request signatures.


class ClientUnauthorized(DisbursementError):
    status = 401


class ClientExists(DisbursementError):
    code = "loan_client_exists"
    status = 409


class ClientNotFound(DisbursementError):
    code = "loan_client_not_found"
    status = 404
