"""Tables of the QR flows: cardholder app tokens, payment codes and their payments, bills."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class CardholderToken(Base):
    """The credential of a cardholder's app, issued by the bank; only its SHA-256 is kept."""

    __tablename__ = "payment_cardholder_tokens"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("issuer_cards.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class PaymentCode(Base):
    """A one-time payment code; the token itself travels only in the QR payload."""

    __tablename__ = "payment_codes"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("issuer_cards.id"), index=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]


class CodePayment(Base):
    """A sale paid with a payment code: one per code, one per terminal transaction, and the
    payment (payments service) that moved the money."""

    __tablename__ = "payment_code_payments"
    __table_args__ = (UniqueConstraint("terminal_id", "transaction_id"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    terminal_id: Mapped[int]
    transaction_id: Mapped[str] = mapped_column(String(40))
    code_id: Mapped[int] = mapped_column(ForeignKey("payment_codes.id"), unique=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("issuer_cards.id"))
    institution_code: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int]
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    created_at: Mapped[datetime]


class BillStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # never stored: an open bill past expires_at reads as expired


class Bill(Base):
    """A bill a unit shows as a merchant-presented QR code; paid at most once."""

    __tablename__ = "payment_bills"
    __table_args__ = (
        UniqueConstraint("institution_code", "bill_number"),
        Index("ix_payment_bills_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("gateway_units.id"))
    institution_code: Mapped[str] = mapped_column(String(20))
    bill_number: Mapped[str] = mapped_column(String(25))
    amount: Mapped[int]
    payload: Mapped[str] = mapped_column(String(512))  # the MPM text, kept to show it again
    status: Mapped[str] = mapped_column(String(16), default=BillStatus.OPEN.value)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    paid_card_id: Mapped[int | None] = mapped_column(ForeignKey("issuer_cards.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(64))
