"""Payments from card accounts to units: one row per payment, one per operation on it.

A payment moves money card account -> the unit's settlement account through the ledger: a hold
(pending transfer) at authorisation, a post (full or partial) at capture, a void, and refunds
as new transfers back. The rows here say who asked for what; the ledger holds the money.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class PaymentStatus(enum.StrEnum):
    AUTHORIZED = "authorized"  # money held on the card account
    DECLINED = "declined"  # nothing held; decline_code says why
    CAPTURED = "captured"  # posted to the unit (perhaps less than authorised)
    VOIDED = "voided"  # hold released by the unit
    REVERSED = "reversed"  # hold released because the terminal lost the answer
    REFUNDED = "refunded"  # everything captured has gone back


class OperationKind(enum.StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    REVERSAL = "reversal"


class Channel(enum.StrEnum):
    CARD_TAP = "card_tap"
    QR_CODE = "qr_code"
    CHECKOUT = "checkout"


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    # The caller's idempotency key, e.g. "tap:{terminal}:{transaction id}".
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("gateway_units.id"), index=True)
    institution_code: Mapped[str] = mapped_column(String(20))
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_terminals.id"))
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("issuer_cards.id"), index=True)
    card_account_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    settlement_account_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_accounts.id"))
    pan_masked: Mapped[str | None] = mapped_column(String(19))
    amount: Mapped[int]
    captured: Mapped[int] = mapped_column(default=0)
    refunded: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16))
    decline_code: Mapped[str | None] = mapped_column(String(32))
    response_code: Mapped[str | None] = mapped_column(String(2))
    arpc: Mapped[str | None] = mapped_column(String(16))  # a cryptogram, not a secret
    atc: Mapped[int | None] = mapped_column(Integer)
    hold_transfer_id: Mapped[str | None] = mapped_column(String(64))
    hold_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)  # the search by day
    updated_at: Mapped[datetime]


class PaymentOperation(Base):
    """A capture, void, refund or reversal; (payment, kind, key) is applied once."""

    __tablename__ = "payment_operations"
    __table_args__ = (UniqueConstraint("payment_id", "kind", "operation_key"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"))
    kind: Mapped[str] = mapped_column(String(16))
    operation_key: Mapped[str] = mapped_column(String(64))  # refund id; "" for the others
    amount: Mapped[int]
    transfer_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(index=True)  # the day's captures and refunds


class UnitPaymentSettings(Base):
    """Per-unit payment rules set by bank ops; a unit without a row uses the defaults."""

    __tablename__ = "payment_unit_settings"

    unit_id: Mapped[int] = mapped_column(ForeignKey("gateway_units.id"), primary_key=True)
    # Online PIN is required at or above this amount (as the terminals' firmware config says).
    pin_threshold_fen: Mapped[int]
    updated_at: Mapped[datetime]
