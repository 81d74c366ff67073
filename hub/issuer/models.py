"""The card registry: the bank's social security cards and the account each one pays from."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
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


# Issuer cryptography (card taps): master keys, per-card counters and PIN, terminal PIN keys.


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"  # personalises new cards and verifies
    RETIRED = "retired"  # verifies the cards made under it, personalises nothing new


class IssuerKey(Base):
    """An issuer master key, wrapped (AES-GCM) under the key-encryption key. Never shown."""

    __tablename__ = "issuer_keys"
    __table_args__ = (UniqueConstraint("purpose", "version"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "ac": application cryptograms
    version: Mapped[int] = mapped_column(Integer)  # the DKI the card reports in 9F10
    key_wrapped: Mapped[str] = mapped_column(String(128))
    kcv: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(8), default=KeyStatus.ACTIVE.value)
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class CardSecurity(Base):
    """What the issuer tracks per card beyond the registry: the last online ATC and the PIN."""

    __tablename__ = "issuer_card_security"

    card_id: Mapped[int] = mapped_column(ForeignKey("issuer_cards.id"), primary_key=True)
    last_atc: Mapped[int | None] = mapped_column(Integer, default=None)
    # HMAC-SHA256 under a key from the KEK over salt, card and PIN: the PIN itself is not kept.
    pin_verifier: Mapped[str | None] = mapped_column(String(64), default=None)
    pin_salt: Mapped[str | None] = mapped_column(String(32), default=None)
    pin_tries: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class TerminalPinKey(Base):
    """A terminal's PIN key (agreed by X25519 + HKDF), wrapped under the key-encryption key."""

    __tablename__ = "issuer_terminal_pin_keys"
    __table_args__ = (UniqueConstraint("terminal_id", "version"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("gateway_terminals.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    key_wrapped: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(8), default=KeyStatus.ACTIVE.value)
    created_at: Mapped[datetime]
