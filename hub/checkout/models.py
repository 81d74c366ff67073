"""Tables of the hospital checkout: one row per visit's checkout, one per platform message.

A checkout is a persisted state machine; every platform message it sends is a `PlatformCall`
row written (with its msgid and exact request) before it is sent, so a resend after a crash or
a timeout is byte-identical and the platform answers it with its first answer.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class CheckoutState(enum.StrEnum):
    BILL_RECEIVED = "bill_received"  # the HIS bill is here; nobody identified yet
    IDENTIFYING = "identifying"  # 1101 person information in flight
    IDENTIFIED = "identified"  # 2201 registration, 2204 fee upload, 2206 pre-settlement in flight
    PRE_SETTLED = "pre_settled"  # the split is shown to the cashier
    SELF_PAY_COLLECTED = "self_pay_collected"  # the cash part is held; 2207 settlement in flight
    COMPLETED = "completed"  # settled with the platform, ledger posted, receipt ready
    REVOKING = "revoking"  # 2208 revoke in flight
    REVOKED = "revoked"  # every leg reversed, the self-pay refunded
    FAILED = "failed"  # stopped before any money moved (or with all of it given back)


# Where a platform message is still out: the driver (or the outbox) must finish it.
IN_FLIGHT = frozenset(
    {
        CheckoutState.IDENTIFYING,
        CheckoutState.IDENTIFIED,
        CheckoutState.SELF_PAY_COLLECTED,
        CheckoutState.REVOKING,
    }
)


class CallState(enum.StrEnum):
    PENDING = "pending"  # written, maybe sent; the outcome is not known
    ANSWERED = "answered"
    REFUSED = "refused"  # the platform said no (infcode != 0): the message did nothing


class Checkout(Base):
    __tablename__ = "checkouts"
    __table_args__ = (
        UniqueConstraint("institution_code", "bill_no"),
        Index("ix_checkouts_institution_settled", "institution_code", "settled_at"),
    )

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("gateway_units.id"), index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_terminals.id"))
    # The unit as the platform knows it (fixmedins_code, fixmedins_name, mdtrtarea_admvs).
    institution_code: Mapped[str] = mapped_column(String(20))
    institution_name: Mapped[str] = mapped_column(String(120))
    admin_division: Mapped[str] = mapped_column(String(12))
    bill_no: Mapped[str] = mapped_column(String(40))
    bill: Mapped[dict[str, Any]] = mapped_column(JSON)  # as the HIS sent it, checked
    med_type: Mapped[str] = mapped_column(String(4))
    medfee: Mapped[int]
    state: Mapped[str] = mapped_column(String(24), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    # The credential (01 e-voucher token, 02 ID number, 03 card number): resent in every
    # message of the visit, never logged and never shown in full.
    cert_type: Mapped[str | None] = mapped_column(String(2))
    cert_no: Mapped[str | None] = mapped_column(String(64))
    card_sn: Mapped[str | None] = mapped_column(String(40))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("issuer_cards.id"))
    psn_no: Mapped[str | None] = mapped_column(String(30))
    psn_name: Mapped[str | None] = mapped_column(String(64))
    insutype: Mapped[str | None] = mapped_column(String(6))
    insured_division: Mapped[str | None] = mapped_column(String(12))  # insuplc_admdvs
    mdtrt_id: Mapped[str | None] = mapped_column(String(40))
    chrg_bchno: Mapped[str | None] = mapped_column(String(40))
    # The pre-settlement (2206): what the cashier showed.
    pre_fund: Mapped[int | None]
    pre_account: Mapped[int | None]
    pre_cash: Mapped[int | None]
    # The payment that carries the cash part (a hold until settlement, then captured).
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    self_pay_method: Mapped[str | None] = mapped_column(String(16))
    # The settlement (2207), as the platform booked it.
    setl_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    setl_fund: Mapped[int | None]
    setl_account: Mapped[int | None]
    setl_cash: Mapped[int | None]
    settled_at: Mapped[datetime | None] = mapped_column(index=True)  # platform's setl_time
    posted: Mapped[bool] = mapped_column(Boolean, default=False)  # the ledger legs exist
    revoke_setl_id: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)  # its revoke setl_time
    created_at: Mapped[datetime] = mapped_column(index=True)  # the day's figures and filters
    updated_at: Mapped[datetime]


class PlatformCall(Base):
    """One message to the insurance platform, written before it is sent."""

    __tablename__ = "checkout_platform_calls"
    __table_args__ = (Index("ix_checkout_platform_calls_open", "checkout_id", "state"),)

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    checkout_id: Mapped[int | None] = mapped_column(ForeignKey("checkouts.id"))
    institution_code: Mapped[str] = mapped_column(String(20))
    infno: Mapped[str] = mapped_column(String(4))
    # Institution code + time + id % 10000: restart-safe. Set right after the row is inserted.
    msgid: Mapped[str | None] = mapped_column(String(40), unique=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)  # the model's dump, resent as is
    state: Mapped[str] = mapped_column(String(12))
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Whoever sends holds the lease; a driver that died lets it run out and the outbox resends.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]


class ReconciliationRun(Base):
    """What one run of the daily reconciliation (`sshub reconcile`) found, kept so the console
    can say whether the latest one balanced; the full report stays in its CSV file."""

    __tablename__ = "checkout_reconciliation_runs"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    day: Mapped[date]  # the business day reconciled
    ran_at: Mapped[datetime]
    units: Mapped[int] = mapped_column(Integer)
    differing_units: Mapped[int] = mapped_column(Integer)
    unreachable_units: Mapped[int] = mapped_column(Integer)
    discrepancies: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)  # Report.summary(): counts and every difference
