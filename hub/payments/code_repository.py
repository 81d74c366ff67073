"""Every query of the QR flows (cardholder tokens, payment codes, code payments, bills)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.db import Base
from hub.payments.code_models import Bill, CardholderToken, CodePayment, PaymentCode

T = TypeVar("T", bound=Base)


def add(session: Session, row: T) -> T:
    session.add(row)
    session.flush()
    return row


def cardholder_token(session: Session, token_hash: str) -> CardholderToken | None:
    return session.scalar(select(CardholderToken).where(CardholderToken.token_hash == token_hash))


def cardholder_token_by_id(session: Session, token_id: int) -> CardholderToken | None:
    return session.get(CardholderToken, token_id)


def payment_code(session: Session, token_hash: str, *, lock: bool = False) -> PaymentCode | None:
    query = select(PaymentCode).where(PaymentCode.token_hash == token_hash)
    # The row lock makes two terminals racing on one code take turns; the second sees it used.
    return session.scalar(query.with_for_update() if lock else query)


def code_payment(session: Session, terminal_id: int, transaction_id: str) -> CodePayment | None:
    return session.scalar(
        select(CodePayment).where(
            CodePayment.terminal_id == terminal_id, CodePayment.transaction_id == transaction_id
        )
    )


def purge_unused_codes(session: Session, expired_before: datetime, limit: int) -> int:
    """Delete payment codes that expired unused before `expired_before`."""
    ids = session.scalars(
        select(PaymentCode.id)
        .where(PaymentCode.expires_at < expired_before, PaymentCode.used_at.is_(None))
        .limit(limit)
    ).all()
    if ids:
        session.execute(delete(PaymentCode).where(PaymentCode.id.in_(ids)))
    return len(ids)


def bill(
    session: Session, institution_code: str, bill_number: str, *, lock: bool = False
) -> Bill | None:
    query = select(Bill).where(
        Bill.institution_code == institution_code, Bill.bill_number == bill_number
    )
    return session.scalar(query.with_for_update() if lock else query)
