"""Every query of the payments tables (card taps and the shared money operations)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, select
from sqlalchemy.orm import Session

from hub.payments.code_models import Bill
from hub.payments.models import (
    Channel,
    OperationKind,
    Payment,
    PaymentOperation,
    PaymentStatus,
    UnitPaymentSettings,
)


def add(session: Session, row: Payment | PaymentOperation) -> None:
    session.add(row)
    session.flush()


def payment(session: Session, payment_id: int, *, lock: bool = False) -> Payment | None:
    """One payment; `lock` serialises operations on it (PostgreSQL row lock)."""
    stmt = select(Payment).where(Payment.id == payment_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def payment_by_key(session: Session, key: str, *, lock: bool = False) -> Payment | None:
    stmt = select(Payment).where(Payment.idempotency_key == key)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def operation(
    session: Session, payment_id: int, kind: str, operation_key: str
) -> PaymentOperation | None:
    stmt = select(PaymentOperation).where(
        PaymentOperation.payment_id == payment_id,
        PaymentOperation.kind == kind,
        PaymentOperation.operation_key == operation_key,
    )
    return session.scalars(stmt).one_or_none()


def operations(session: Session, payment_id: int) -> Sequence[PaymentOperation]:
    stmt = (
        select(PaymentOperation)
        .where(PaymentOperation.payment_id == payment_id)
        .order_by(PaymentOperation.id)
    )
    return session.scalars(stmt).all()


def unit_settings(session: Session, unit_id: int) -> UnitPaymentSettings | None:
    return session.get(UnitPaymentSettings, unit_id)


def save_unit_settings(session: Session, row: UnitPaymentSettings) -> UnitPaymentSettings:
    merged = session.merge(row)
    session.flush()
    return merged


# Search and daily figures. A bill-code payment is a QR payment that a bill names; any other
# QR payment was paid with a payment code.

BILLED = Bill.id.is_not(None)
CHANNEL_FILTERS: dict[str, ColumnElement[bool]] = {
    "card_tap": Payment.channel == Channel.CARD_TAP.value,
    "payment_code": and_(Payment.channel == Channel.QR_CODE.value, Bill.id.is_(None)),
    "bill_code": BILLED,
    "checkout": Payment.channel == Channel.CHECKOUT.value,
}


def search(
    session: Session,
    *,
    card: tuple[str, str] | None,
    status: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    unit_id: int | None,
    bill_number: str | None,
    channel: str | None,
    before: int | None,
    limit: int,
) -> Sequence[Row[tuple[Payment, str | None]]]:
    """(payment, bill number) newest first; `card` is (first digits, last digits) of the
    masked number, `bill_number` a part of it, created in [created_from, created_to)."""
    stmt = (
        select(Payment, Bill.bill_number)
        .outerjoin(Bill, Bill.payment_id == Payment.id)
        .order_by(Payment.id.desc())
        .limit(limit)
    )
    conditions: list[ColumnElement[bool]] = []
    if card is not None:
        head, tail = card
        if head:
            conditions.append(Payment.pan_masked.startswith(head, autoescape=True))
        if tail:
            conditions.append(Payment.pan_masked.endswith(tail, autoescape=True))
    if status:
        conditions.append(Payment.status == status)
    if created_from is not None:
        conditions.append(Payment.created_at >= created_from)
    if created_to is not None:
        conditions.append(Payment.created_at < created_to)
    if unit_id is not None:
        conditions.append(Payment.unit_id == unit_id)
    if bill_number:
        conditions.append(Bill.bill_number.contains(bill_number, autoescape=True))
    if channel:
        conditions.append(CHANNEL_FILTERS[channel])
    if before is not None:
        conditions.append(Payment.id < before)
    return session.execute(stmt.where(*conditions)).all()


def operation_totals(
    session: Session, start: datetime, end: datetime
) -> Sequence[Row[tuple[str, bool, str, int, int]]]:
    """(payment channel, billed, kind, count, sum) of captures and refunds made in [start, end)."""
    billed = BILLED.label("billed")
    stmt = (
        select(
            Payment.channel,
            billed,
            PaymentOperation.kind,
            func.count(),
            func.coalesce(func.sum(PaymentOperation.amount), 0),
        )
        .join(Payment, Payment.id == PaymentOperation.payment_id)
        .outerjoin(Bill, Bill.payment_id == Payment.id)
        .where(
            PaymentOperation.created_at >= start,
            PaymentOperation.created_at < end,
            PaymentOperation.kind.in_([OperationKind.CAPTURE.value, OperationKind.REFUND.value]),
        )
        .group_by(Payment.channel, BILLED, PaymentOperation.kind)
    )
    return session.execute(stmt).all()  # type: ignore[return-value]


def declined_totals(
    session: Session, start: datetime, end: datetime
) -> Sequence[Row[tuple[str, bool, int]]]:
    """(payment channel, billed, count) of payments declined that were opened in [start, end)."""
    stmt = (
        select(Payment.channel, BILLED.label("billed"), func.count())
        .outerjoin(Bill, Bill.payment_id == Payment.id)
        .where(
            Payment.created_at >= start,
            Payment.created_at < end,
            Payment.status == PaymentStatus.DECLINED.value,
        )
        .group_by(Payment.channel, BILLED)
    )
    return session.execute(stmt).all()  # type: ignore[return-value]


def captures_per_hour(session: Session, hours: Sequence[datetime]) -> list[int]:
    """Captures made in each [hours[i], hours[i + 1]); one query, portable to both databases."""
    at = PaymentOperation.created_at
    counts: list[Any] = [func.count().filter(and_(at >= lo, at < hi)) for lo, hi in pairwise(hours)]
    row = session.execute(
        select(*counts).where(
            PaymentOperation.kind == OperationKind.CAPTURE.value,
            at >= hours[0],
            at < hours[-1],
        )
    ).one()
    return [int(n) for n in row]
