"""What crosses the card-tap API. A PAN and a PIN block come in; neither ever goes out."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictInt,
    field_validator,
    model_validator,
)

from hub.payments.models import PaymentStatus

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
    # The version column is a 32-bit integer: a larger number is a 422, not a database error.
    pin_key_version: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None

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


# Search and daily figures for bank operations.


class SearchChannel(enum.StrEnum):
    """How the card paid, as bank staff tell payments apart."""

    CARD_TAP = "card_tap"  # the card at a reader (EMV)
    PAYMENT_CODE = "payment_code"  # the cardholder's one-time code, scanned by the unit
    BILL_CODE = "bill_code"  # the unit's bill code, scanned by the cardholder's app
    CHECKOUT = "checkout"  # the self-pay part of a hospital checkout


# What an operator may type for a card: the last four, the first six, or both around stars.
_CARD_QUERY = re.compile(r"^(?P<head>\d{0,6})(?P<stars>\*+)?(?P<tail>\d{0,4})$")
CARD_HELP = "the last four digits, the first six, or both as 623170*7510"


def card_pattern(text: str) -> tuple[str, str]:
    """(first digits, last digits) of a masked-card query; ValueError for anything else,
    a full card number included (it is never searched for, nor echoed)."""
    typed = re.sub(r"[\s-]", "", text)
    if typed.isdigit() and len(typed) == 10:  # first six and last four, run together
        return typed[:6], typed[6:]
    found = _CARD_QUERY.match(typed)
    if found is None or not (found["head"] or found["tail"]):
        raise ValueError(CARD_HELP)
    if found["stars"]:
        return found["head"], found["tail"]
    if len(typed) <= 4:
        return "", typed
    if len(typed) == 6:
        return typed, ""
    raise ValueError(CARD_HELP)


class PaymentSearch(BaseModel):
    """Filters of a payment search; empty form fields count as absent. Days are the bank's
    local days, both ends included. `before` is the cursor of the next page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: Annotated[str, Field(max_length=24)] | None = None
    status: PaymentStatus | None = None
    day_from: date | None = None
    day_to: date | None = None
    unit_id: Annotated[int, Field(ge=1)] | None = None
    bill_number: Annotated[str, Field(max_length=25)] | None = None
    channel: SearchChannel | None = None
    before: Annotated[int, Field(ge=1)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("card")
    @classmethod
    def _card(cls, value: str | None) -> str | None:
        if value is None:
            return None
        head, tail = card_pattern(value)
        return f"{head}*{tail}"

    @field_validator("bill_number")
    @classmethod
    def _bill(cls, value: str | None) -> str | None:
        return value.strip() if value else None

    @model_validator(mode="after")
    def _days_in_order(self) -> PaymentSearch:
        if self.day_from and self.day_to and self.day_from > self.day_to:
            raise ValueError("the first day comes after the last")
        return self


class PaymentRow(BaseModel):
    """One payment as a search lists it; the card only masked."""

    id: int
    created_at: datetime
    channel: SearchChannel
    unit_id: int
    institution_code: str
    terminal_id: int | None
    transaction_id: str | None
    bill_number: str | None
    pan_masked: str | None
    amount: int
    captured: int
    refunded: int
    status: str
    decline_code: str | None


class PaymentPage(BaseModel):
    items: list[PaymentRow]
    next_before: int | None  # pass as `before` for the next page; None: no more


class ChannelDay(BaseModel):
    """One channel's day: captures and refunds made that day, payments declined that day."""

    channel: SearchChannel
    captured_count: int = 0
    captured: int = 0
    refunded_count: int = 0
    refunded: int = 0
    declined_count: int = 0


class PaymentDay(BaseModel):
    day: date
    channels: list[ChannelDay]  # every channel, in SearchChannel order
    captures_per_hour: list[int]  # captures in each local hour of the day (24, or 23/25 on DST)

    def of(self, *channels: SearchChannel) -> ChannelDay:
        """The named channels added together."""
        rows = [c for c in self.channels if c.channel in channels]
        return ChannelDay(
            channel=channels[0],
            **{
                name: sum(getattr(r, name) for r in rows)
                for name in ChannelDay.model_fields
                if name != "channel"
            },
        )
