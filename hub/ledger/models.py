"""Ledger tables: accounts with four counters, immutable transfers, hold states, failed ids."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class TransferFlag(enum.IntFlag):
    NONE = 0
    PENDING = 1
    POST_PENDING = 2
    VOID_PENDING = 4
    LINKED = 8


class HoldState(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"  # refuses debits
    CLOSED = "closed"  # refuses everything


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0"
            " AND credits_pending >= 0",
            name="counters_not_negative",
        ),
        # The last line of defence: the database itself refuses an overdraft.
        CheckConstraint(
            "NOT debits_must_not_exceed_credits"
            " OR debits_posted + debits_pending <= credits_posted",
            name="debits_within_credits",
        ),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits"
            " OR credits_posted + credits_pending <= debits_posted",
            name="credits_within_debits",
        ),
        Index("uq_ledger_accounts_kind_owner", "kind", "owner_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_ref: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    debits_posted: Mapped[int] = mapped_column(default=0)
    credits_posted: Mapped[int] = mapped_column(default=0)
    debits_pending: Mapped[int] = mapped_column(default=0)
    credits_pending: Mapped[int] = mapped_column(default=0)
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(8), default=AccountStatus.ACTIVE.value)
    created_at: Mapped[datetime]


class Transfer(Base):
    """Immutable once written; corrections are new transfers."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        Index("ix_ledger_transfers_debit", "debit_account_id", "seq"),
        Index("ix_ledger_transfers_credit", "credit_account_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    debit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int]
    # A hold resolves at most once: the unique index refuses a second post or void.
    pending_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transfers.id"), unique=True, default=None
    )
    code: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    flags: Mapped[int] = mapped_column(Integer, default=0)
    timeout: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    created_at: Mapped[datetime]


class Hold(Base):
    """The one mutable fact about a pending transfer: whether it is still pending."""

    __tablename__ = "ledger_holds"
    __table_args__ = (Index("ix_ledger_holds_expiry", "state", "expires_at"),)

    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(8), default=HoldState.PENDING.value)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class FailedTransfer(Base):
    """A transfer refused for the state it met keeps failing under its id, like TigerBeetle."""

    __tablename__ = "ledger_failed_transfers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    result: Mapped[str] = mapped_column(String(48))
    created_at: Mapped[datetime]
