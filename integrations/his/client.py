"""The hospital information system as SSC Hub sees it: one interface, one HTTP client."""

from __future__ import annotations

from typing import Protocol

import httpx
from pydantic import ValidationError

from integrations.his.errors import BillNotFound, HisError, HisUnavailable, InvalidBill
from integrations.his.schemas import Bill, BillLine, Patient, line_amount

__all__ = [
    "Bill",
    "BillLine",
    "BillNotFound",
    "HisError",
    "HisUnavailable",
    "HospitalInformationSystem",
    "HttpHospitalInformationSystem",
    "InvalidBill",
    "Patient",
    "line_amount",
]


class HospitalInformationSystem(Protocol):
    """Where the itemised bills come from."""

    def bill(self, bill_no: str) -> Bill:
        """The bill, checked; raises BillNotFound, InvalidBill or HisUnavailable."""
        ...


class HttpHospitalInformationSystem:
    """HospitalInformationSystem over the HIS's JSON API (`GET /bills/{bill_no}`)."""

    def __init__(
        self, base_url: str, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpHospitalInformationSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bill(self, bill_no: str) -> Bill:
        try:
            response = self._http.get(f"/bills/{bill_no}")
        except httpx.TransportError as exc:
            raise HisUnavailable(type(exc).__name__) from exc
        if response.status_code == httpx.codes.NOT_FOUND:
            raise BillNotFound(bill_no)
        if response.status_code != httpx.codes.OK:
            raise HisUnavailable(f"HTTP {response.status_code}")
        try:
            bill = Bill.model_validate_json(response.content)
        except ValidationError as exc:
            raise InvalidBill(bill_no, _problems(exc)) from None
        if bill.bill_no != bill_no:
            raise InvalidBill(bill_no, "the HIS answered with another bill")
        return bill


def _problems(exc: ValidationError) -> str:
    """Where and what, never the values (a bill carries the patient's ID number)."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'bill'}: {error['msg']}" for error in exc.errors()
    )
