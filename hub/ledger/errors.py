"""Ledger result codes and their HTTP statuses."""

from __future__ import annotations

from hub.errors import HubError

OK = frozenset({"ok", "exists"})

# Refusals that depend on the state met, not on the request alone. Like TigerBeetle, such a
# transfer id stays failed: a retry gets the same answer even if the state has changed since.
STATE_DEPENDENT = frozenset(
    {
        "debit_account_not_found",
        "credit_account_not_found",
        "debit_account_frozen",
        "debit_account_closed",
        "credit_account_closed",
        "exceeds_credits",
        "exceeds_debits",
        "overflows_debits",
        "overflows_credits",
        "pending_transfer_not_found",
        "pending_transfer_not_pending",
        "pending_transfer_already_posted",
        "pending_transfer_already_voided",
        "pending_transfer_expired",
        "exceeds_pending_transfer_amount",
        "pending_transfer_has_different_amount",
        "pending_transfer_has_different_debit_account",
        "pending_transfer_has_different_credit_account",
        "accounts_must_have_the_same_currency",
        "transfer_currency_mismatch",
    }
)

_STATUS = {
    "debit_account_not_found": 404,
    "credit_account_not_found": 404,
    "pending_transfer_not_found": 404,
    "account_not_found": 404,
    "transfer_not_found": 404,
    "exists_with_different_fields": 409,
    "account_exists": 409,
}


def status_for(code: str) -> int:
    if code in _STATUS:
        return _STATUS[code]
    return 409 if code in STATE_DEPENDENT else 422


class LedgerError(HubError):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code, message, status_for(code))
