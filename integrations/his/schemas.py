"""An itemised hospital bill as the hospital information system (HIS) hands it over.

Money is integer fen. A bill that does not hold together (no lines, a zero or negative line,
an unknown class, an amount that is not quantity x price) does not parse.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

PositiveFen = Annotated[int, Strict(), Field(gt=0)]


class Patient(BaseModel):
    model_config = ConfigDict(frozen=True)

    patient_no: str = Field(min_length=1)
    """The hospital's own patient number."""
    name: str
    certno: str = ""
    """Resident ID number when the hospital holds it."""


class BillLine(BaseModel):
    """One billed item: what, how many, at what price, ordered by whom."""

    model_config = ConfigDict(frozen=True)

    line_no: str = Field(min_length=1)
    item_code: str = Field(min_length=1)
    """The hospital's own item code."""
    national_code: str = Field(min_length=1)
    """The national catalogue code the item maps to (what the insurance platform reads)."""
    name: str
    item_class: Literal["A", "B", "C"]
    quantity: Decimal = Field(gt=0, max_digits=12, decimal_places=3)
    price_fen: PositiveFen
    amount_fen: PositiveFen
    dept_code: str
    dept_name: str
    doctor_code: str
    doctor_name: str

    @model_validator(mode="after")
    def _amount_is_quantity_times_price(self) -> Self:
        if self.amount_fen != line_amount(self.quantity, self.price_fen):
            raise ValueError("amount_fen is not quantity x price_fen")
        return self


class Bill(BaseModel):
    """An outpatient bill, ready for checkout."""

    model_config = ConfigDict(frozen=True)

    bill_no: str = Field(min_length=1)
    patient: Patient
    med_type: str = "11"
    """Medical type in the insurance platform's codes: 11 general outpatient."""
    created_at: datetime
    lines: list[BillLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _line_numbers_are_unique(self) -> Self:
        if len({line.line_no for line in self.lines}) != len(self.lines):
            raise ValueError("line numbers repeat")
        return self

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


def line_amount(quantity: Decimal, price_fen: int) -> int:
    """Quantity times unit price, rounded half up to the fen."""
    return int((quantity * price_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))
