"""Every query of the payments tables (card taps and the shared money operations)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.payments.models import Payment, PaymentOperation, UnitPaymentSettings


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
