"""The card registry: the bank's social security cards and the account each one pays from."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"  # PIN tries exhausted or blocked by the bank
    LOST = "lost"
    CLOSED = "closed"


class Card(Base):
    __tablename__ = "issuer_cards"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    card_number: Mapped[str] = mapped_column(String(20), unique=True)  # printed on the card
    card_id_code: Mapped[str] = mapped_column(String(40), unique=True)  # chip identification code
    holder_name: Mapped[str] = mapped_column(String(64))
    id_number_hash: Mapped[str] = mapped_column(String(64), index=True)
    pan_encrypted: Mapped[str] = mapped_column(String(128))
    pan_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pan_masked: Mapped[str] = mapped_column(String(19))
    psn: Mapped[str] = mapped_column(String(2))
    expiry: Mapped[date]
    status: Mapped[str] = mapped_column(String(8), default=CardStatus.ACTIVE.value)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    created_at: Mapped[datetime]
