"""Loan clients and their keys, disbursements, and the programme's running daily totals."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class DisbursementStatus(enum.StrEnum):
    PROCESSING = "processing"  # accepted, being checked and posted (or its request died)
    CREDITED = "credited"
    REJECTED = "rejected"  # refused for the state it met; final under its external id
    UNDONE = "undone"  # credited, then reversed


class LoanClient(Base):
    """A loan system allowed to send orders; its callbacks go to `callback_url`."""

    __tablename__ = "loan_clients"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    callback_url: Mapped[str] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class LoanClientKey(Base):
    """A key of a loan client. Only a hash of the secret is stored (see service.issue_secret)."""

    __tablename__ = "loan_client_keys"

    key_id: Mapped[str] = mapped_column(String(48), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("loan_clients.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # Set when a newer key replaces this one: it keeps working until then, for the changeover.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class Disbursement(Base):
    __tablename__ = "disbursements"
    __table_args__ = (
        Index("ix_disbursements_posted", "posted_on", "status"),
        Index("ix_disbursements_undone", "undone_on"),
        Index("ix_disbursements_client", "client_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("loan_clients.id"))
    external_id: Mapped[str] = mapped_column(String(48), unique=True)  # the loan system's key
    request_hash: Mapped[str] = mapped_column(String(64))  # tells a retry from a reused id
    loan_ref: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]
    card_number: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(64))
    value_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(48), default=None)
    reason_message: Mapped[str | None] = mapped_column(String(255), default=None)
    card_account_id: Mapped[int | None] = mapped_column(default=None)
    transfer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # While processing: a duplicate before this instant is "in flight"; after it, it takes over.
    lease_until: Mapped[datetime]
    created_at: Mapped[datetime]
    posted_at: Mapped[datetime | None] = mapped_column(default=None)
    posted_on: Mapped[date | None] = mapped_column(default=None)  # business day of the outcome
    reversal_transfer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    undo_reason: Mapped[str | None] = mapped_column(String(128), default=None)
    undone_at: Mapped[datetime | None] = mapped_column(default=None)
    undone_on: Mapped[date | None] = mapped_column(default=None)


class DailyTotal(Base):
    """What the programme has disbursed on one business day; its row lock orders the limit check."""

    __tablename__ = "disbursement_daily_totals"

    business_day: Mapped[date] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[int] = mapped_column(default=0)
