"""What crosses the API boundary of the QR flows (cardholder app, terminals, ops/HIS)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# The terminal's own id for a sale; it makes the submission idempotent (and names the transfer).
TransactionId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9._-]+$")]
Fen = Annotated[StrictInt, Field(gt=0, le=10_000_000_000)]
QrText = Annotated[str, Field(min_length=1, max_length=4096)]
BillNumber = Annotated[str, Field(min_length=1, max_length=25, pattern=r"^[A-Za-z0-9._-]+$")]
InstitutionCode = Annotated[str, Field(min_length=4, max_length=20, pattern=r"^[A-Z0-9]+$")]
ValidSeconds = Annotated[StrictInt, Field(ge=60, le=7 * 24 * 3600)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Cardholder app.


class CardholderTokenIn(_In):
    card_number: Annotated[str, Field(min_length=1, max_length=20)]


class CardholderTokenOut(BaseModel):
    token_id: int
    card_number: str
    token: str = Field(description="shown once; the hub keeps only its hash")


class PaymentCodeOut(BaseModel):
    payload: str = Field(description="the QR text: base64 of the EMVCo CPM payload")
    expires_at: datetime
    valid_seconds: int


class BillPayIn(_In):
    payload: QrText


# Terminals.


class CodePaymentIn(_In):
    transaction_id: TransactionId
    amount_fen: Fen
    payload: QrText


class CodePaymentOut(BaseModel):
    transaction_id: str
    status: Literal["paid"] = "paid"
    amount_fen: int
    payment_id: int = Field(description="the payment (payments service), e.g. for a refund")
    card: str = Field(description="the paying card's masked PAN, for the receipt")
    paid_at: datetime


class BillIn(_In):
    bill_number: BillNumber
    amount_fen: Fen
    valid_seconds: ValidSeconds | None = None


class HisBillIn(BillIn):
    institution_code: InstitutionCode


class BillOut(BaseModel):
    institution_code: str
    bill_number: str
    amount_fen: int
    status: Literal["open", "paid", "cancelled", "expired"]
    payload: str = Field(description="the QR text: the EMVCo MPM payload")
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None
    payment_id: int | None = None


class ScanIn(_In):
    """A code as the scan engine read it; a payment code also needs the sale's id and amount."""

    text: QrText
    transaction_id: TransactionId | None = None
    amount_fen: Fen | None = None


class ScanOut(BaseModel):
    kind: Literal["payment_code", "bill_code", "evoucher"]
    payment: CodePaymentOut | None = None
    bill: BillOut | None = None
    checkout_id: int | None = None  # an e-voucher: the checkout it identified the patient of
