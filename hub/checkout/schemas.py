"""What crosses the checkout API: terminal requests in, the checkout and its receipt out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, model_validator

EVOUCHER = re.compile(r"ECT[0-9]{6}[0-9A-Z]{8,64}")
ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
BillNo = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")]
CardNumber = Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")]
CardIdCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{6,40}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckoutIn(_In):
    bill_no: BillNo


class CardCredential(_In):
    """What the terminal read from the social-security application (EF05)."""

    card_number: CardNumber
    card_id_code: CardIdCode


class IdentifyIn(_In):
    """Exactly one credential: the card, an e-voucher code, or an ID number typed in."""

    card: CardCredential | None = None
    evoucher: SecretStr | None = None
    id_number: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [x for x in (self.card, self.evoucher, self.id_number) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of card, evoucher, id_number")
        # The values stay secret: a validation error names the field, never echoes it.
        if self.evoucher and not EVOUCHER.fullmatch(self.evoucher.get_secret_value()):
            raise ValueError("evoucher is not a medical insurance e-voucher code")
        if self.id_number and not ID_NUMBER.fullmatch(self.id_number.get_secret_value()):
            raise ValueError("id_number is not an 18-character resident ID number")
        return self


class SelfPayIn(_In):
    """How the patient pays the cash part.

    card: hold it on the card the patient was identified by.
    payment: a payment this unit's terminal already took for exactly the cash part (a card tap
    held, or a payment code or bill code paid).
    none: nothing to pay (the pre-settlement's cash part is zero).
    """

    method: Literal["card", "payment", "none"]
    payment_id: Annotated[StrictInt, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _payment_needs_its_id(self) -> Self:
        if (self.method == "payment") != (self.payment_id is not None):
            raise ValueError("payment_id goes with method 'payment' and only with it")
        return self


class SplitOut(BaseModel):
    """Who pays what, in fen: medfee = fund + account + cash."""

    medfee: int
    fund: int = Field(description="the medical insurance fund (fund_pay_sumamt)")
    account: int = Field(description="the personal medical account (acct_pay)")
    cash: int = Field(description="the patient, from the card or a code (psn_cash_pay)")


class LineOut(BaseModel):
    line_no: str
    name: str
    item_class: str
    quantity: str
    price_fen: int
    amount_fen: int


class CheckoutOut(BaseModel):
    checkout_id: int
    state: str
    in_flight: bool = Field(description="a platform message is still out; poll again")
    bill_no: str
    medfee: int
    patient_name: str | None
    credential: str | None = Field(description="the credential type and its masked number")
    pre_settlement: SplitOut | None
    settlement: SplitOut | None
    setl_id: str | None
    payment_id: int | None
    self_pay_method: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime


class ReceiptOut(BaseModel):
    """What the terminal prints."""

    checkout_id: int
    institution_code: str
    institution_name: str
    bill_no: str
    patient_name: str
    setl_id: str
    settled_at: datetime
    lines: list[LineOut]
    split: SplitOut
    card: str | None = Field(description="the paying card's masked PAN")
    revoked: bool
    revoke_setl_id: str | None
