"""What crosses the card registry's API. A PAN comes in; only its masked form goes out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.issuer.models import CardStatus


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_number: Annotated[str, Field(pattern=r"^[A-Z0-9]{6,20}$")]
    card_id_code: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{6,40}$")]
    holder_name: Annotated[str, Field(min_length=1, max_length=64)]
    # SecretStr: a validation error or a repr never prints them.
    id_number: SecretStr
    pan: SecretStr
    psn: Annotated[str, Field(pattern=r"^[0-9]{2}$")] = "01"
    expiry: date


class CardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    card_number: str
    card_id_code: str
    holder_name: str
    pan_masked: str
    psn: str
    expiry: date
    status: CardStatus
    account_id: int
    created_at: datetime


class CardStatusIn(BaseModel):
    status: CardStatus
