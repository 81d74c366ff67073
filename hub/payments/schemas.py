"""What crosses the card-tap API. A PAN and a PIN block come in; neither ever goes out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, field_validator

TransactionId = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9._-]+$")]
Fen = Annotated[StrictInt, Field(gt=0, le=10**11)]  # up to a billion yuan; 12 BCD digits on card
HexData = Annotated[str, Field(min_length=2, max_length=1024, pattern=r"^([0-9A-Fa-f]{2})+$")]


class CardIn(BaseModel):
    """What the terminal read from the card's debit and social-security applications."""

    model_config = ConfigDict(extra="forbid")

    pan: SecretStr  # SecretStr: never in a repr or a validation error
    psn: Annotated[str, Field(pattern=r"^[0-9]{2}$")] = "01"
    card_number: Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")] | None = None

    @field_validator("pan")
    @classmethod
    def _digits(cls, value: SecretStr) -> SecretStr:
        pan = value.get_secret_value()
        if not (pan.isascii() and pan.isdigit() and 13 <= len(pan) <= 19):
            raise ValueError("a PAN is 13 to 19 digits")
        return value


class CardTapIn(BaseModel):
    """An authorisation request: the card, its chip data and, when asked, the PIN block."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: TransactionId
    amount: Fen
    currency: Literal["CNY"] = "CNY"
    card: CardIn
    icc_data: HexData  # BER-TLV of the first GENERATE AC and the terminal data it covers
    pin_block: SecretStr | None = None  # ISO 9564 format 4 under the terminal's PIN key, hex
    pin_key_version: Annotated[StrictInt, Field(ge=1)] | None = None

    @field_validator("pin_block")
    @classmethod
    def _pin_block(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            block = value.get_secret_value()
            if len(block) != 32 or any(c not in "0123456789ABCDEFabcdef" for c in block):
                raise ValueError("a format 4 PIN block is 16 bytes of hex")
        return value


class AuthorizationOut(BaseModel):
    """The issuer's answer. `response_code` and `arpc` go to the card (EXTERNAL AUTHENTICATE)."""

    payment_id: int
    transaction_id: str | None
    status: str
    approved: bool
    decline_code: str | None
    response_code: str | None
    arpc: str | None
    amount: int
    pan_masked: str | None
    hold_expires_at: datetime | None


class CaptureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Fen | None = None  # None captures the whole authorised amount


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund_id: TransactionId
    amount: Fen


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction_id: TransactionId


class PaymentOut(BaseModel):
    payment_id: int
    transaction_id: str | None
    channel: str
    status: str
    amount: int
    captured: int
    refunded: int
    decline_code: str | None
    pan_masked: str | None
    terminal_id: int | None
    created_at: datetime
    updated_at: datetime


class RefundOut(BaseModel):
    payment_id: int
    refund_id: str
    amount: int
    payment: PaymentOut


class UnitSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin_threshold_fen: Annotated[StrictInt, Field(ge=0, le=100_000_000)]


class UnitSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    unit_id: int
    pin_threshold_fen: int
    updated_at: datetime
