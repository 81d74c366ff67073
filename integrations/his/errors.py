"""What can go wrong fetching a bill from the hospital information system."""

from __future__ import annotations


class HisError(Exception):
    """Base of the HIS client's errors."""


class BillNotFound(HisError):
    def __init__(self, bill_no: str) -> None:
        super().__init__(f"the HIS has no bill {bill_no}")
        self.bill_no = bill_no


class InvalidBill(HisError):
    """The HIS sent a bill that does not hold together; it cannot be checked out."""

    def __init__(self, bill_no: str, reason: str) -> None:
        super().__init__(f"bill {bill_no} is not valid: {reason}")
        self.bill_no = bill_no
        self.reason = reason


class HisUnavailable(HisError):
    """No usable answer from the HIS (timeout, connection, server error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the HIS did not answer: {reason}")
        self.reason = reason
