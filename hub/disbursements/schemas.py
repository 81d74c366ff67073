"""What crosses the disbursement API: orders in, disbursements out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from hub.disbursements.models import DisbursementStatus

ExternalId = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")]


class DisbursementIn(BaseModel):
    """One approved loan. `external_id` is the loan system's idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: ExternalId
    loan_ref: Annotated[str, Field(min_length=1, max_length=64)]
    # Strict integer fen: a float or a string is refused at the edge; the service gives zero,
    # negative and over-the-cap amounts their own codes.
    amount: StrictInt
    card_number: Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")]
    # HMAC-SHA256 hex of the borrower's upper-cased ID number under the shared ID hash key.
    id_number_hash: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{64}$")]
    purpose: Annotated[str, Field(min_length=1, max_length=64)]
    value_date: date

    @field_validator("id_number_hash")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UndoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=128)] | None = None


class DisbursementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    external_id: str
    loan_ref: str
    amount: int
    currency: str = "CNY"
    card_number: str
    purpose: str
    value_date: date
    status: DisbursementStatus
    reason: str | None
    reason_message: str | None
    transfer_id: str | None
    reversal_transfer_id: str | None
    created_at: datetime
    posted_at: datetime | None
    undone_at: datetime | None


class DisbursementPage(BaseModel):
    items: list[DisbursementOut]
    next_cursor: int | None


class IssuedKey(BaseModel):
    """Shown once, when a key is created: the secret is not stored and cannot be shown again."""

    client: str
    key_id: str
    secret: str
