"""Every query of the checkout."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, func, or_, select
from sqlalchemy.orm import Session

from hub.checkout.models import (
    CallState,
    Checkout,
    CheckoutState,
    PlatformCall,
    ReconciliationRun,
)


def add(session: Session, row: Checkout | PlatformCall | ReconciliationRun) -> None:
    session.add(row)
    session.flush()


def checkout(session: Session, checkout_id: int, *, lock: bool = False) -> Checkout | None:
    stmt = select(Checkout).where(Checkout.id == checkout_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def checkout_by_bill(session: Session, institution_code: str, bill_no: str) -> Checkout | None:
    stmt = select(Checkout).where(
        Checkout.institution_code == institution_code, Checkout.bill_no == bill_no
    )
    return session.scalars(stmt).one_or_none()


def checkout_by_payment(session: Session, payment_id: int) -> Checkout | None:
    stmt = select(Checkout).where(Checkout.payment_id == payment_id)
    return session.scalars(stmt).one_or_none()


def awaiting_identification(session: Session, terminal_id: int) -> Checkout | None:
    """The terminal's newest checkout that has a bill and no patient yet."""
    stmt = (
        select(Checkout)
        .where(
            Checkout.terminal_id == terminal_id,
            Checkout.state == CheckoutState.BILL_RECEIVED.value,
        )
        .order_by(Checkout.id.desc())
        .limit(1)
        .with_for_update()
    )
    return session.scalars(stmt).one_or_none()


def call(session: Session, call_id: int, *, lock: bool = False) -> PlatformCall | None:
    stmt = select(PlatformCall).where(PlatformCall.id == call_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def open_calls(session: Session, checkout_id: int) -> Sequence[PlatformCall]:
    stmt = select(PlatformCall).where(
        PlatformCall.checkout_id == checkout_id, PlatformCall.state == CallState.PENDING.value
    )
    return session.scalars(stmt.order_by(PlatformCall.id)).all()


def calls_of(session: Session, checkout_id: int) -> Sequence[PlatformCall]:
    stmt = select(PlatformCall).where(PlatformCall.checkout_id == checkout_id)
    return session.scalars(stmt.order_by(PlatformCall.id)).all()


def booked_between(
    session: Session, institution_code: str, start: datetime, end: datetime
) -> Sequence[Checkout]:
    """Checkouts of a unit settled or revoked by the platform in [start, end)."""
    settled_in = (Checkout.settled_at >= start) & (Checkout.settled_at < end)
    revoked_in = (Checkout.revoked_at >= start) & (Checkout.revoked_at < end)
    stmt = select(Checkout).where(
        Checkout.institution_code == institution_code, or_(settled_in, revoked_in)
    )
    return session.scalars(stmt.order_by(Checkout.id)).all()


def in_doubt(session: Session, institution_code: str, before: datetime) -> Sequence[Checkout]:
    """Checkouts of a unit created before `before` still waiting for a platform answer."""
    stmt = select(Checkout).where(
        Checkout.institution_code == institution_code,
        Checkout.created_at < before,
        Checkout.state.in_([CheckoutState.SELF_PAY_COLLECTED.value, CheckoutState.REVOKING.value]),
    )
    return session.scalars(stmt.order_by(Checkout.id)).all()


def institutions_with_checkouts(session: Session) -> list[str]:
    stmt = select(Checkout.institution_code).distinct().order_by(Checkout.institution_code)
    return list(session.scalars(stmt))


def recent(
    session: Session,
    *,
    unit_id: int | None,
    state: str | None,
    bill_no: str | None = None,
    opened_from: datetime | None = None,
    opened_to: datetime | None = None,
    limit: int,
) -> Sequence[Checkout]:
    """Newest first; `bill_no` matches any part of the bill number, opened in [from, to)."""
    stmt = select(Checkout).order_by(Checkout.id.desc()).limit(limit)
    if unit_id is not None:
        stmt = stmt.where(Checkout.unit_id == unit_id)
    if state is not None:
        stmt = stmt.where(Checkout.state == state)
    if bill_no:
        stmt = stmt.where(Checkout.bill_no.contains(bill_no, autoescape=True))
    if opened_from is not None:
        stmt = stmt.where(Checkout.created_at >= opened_from)
    if opened_to is not None:
        stmt = stmt.where(Checkout.created_at < opened_to)
    return session.scalars(stmt).all()


def day_totals(session: Session, start: datetime, end: datetime) -> Row[Any]:
    """Every unit's checkouts in [start, end): opened (count), settled (count, medfee, self-pay
    cash), revoked (count, medfee), by the platform's settlement and revoke times."""
    settled = (Checkout.settled_at >= start) & (Checkout.settled_at < end)
    revoked = (Checkout.revoked_at >= start) & (Checkout.revoked_at < end)
    opened = (Checkout.created_at >= start) & (Checkout.created_at < end)

    def total(condition: Any, value: Any) -> Any:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    stmt = select(
        total(opened, 1),
        total(settled, 1),
        total(settled, Checkout.medfee),
        total(settled, func.coalesce(Checkout.setl_cash, 0)),
        total(revoked, 1),
        total(revoked, Checkout.medfee),
    ).where(or_(opened, settled, revoked))
    return session.execute(stmt).one()


def latest_reconciliation(session: Session) -> ReconciliationRun | None:
    stmt = select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1)
    return session.scalars(stmt).first()
