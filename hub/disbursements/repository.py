"""Every query of the disbursements domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.disbursements.models import (
    DailyTotal,
    Disbursement,
    DisbursementStatus,
    LoanClient,
    LoanClientKey,
)

T = TypeVar("T")
totals = DailyTotal.__table__


def add(session: Session, row: T) -> T:
    session.add(row)
    session.flush()
    return row


# Loan clients and keys.


def client_by_name(session: Session, name: str) -> LoanClient | None:
    return session.scalars(select(LoanClient).where(LoanClient.name == name)).one_or_none()


def client_by_id(session: Session, client_id: int) -> LoanClient | None:
    return session.get(LoanClient, client_id)


def key_and_client(session: Session, key_id: str) -> tuple[LoanClientKey, LoanClient] | None:
    stmt = (
        select(LoanClientKey, LoanClient)
        .join(LoanClient, LoanClient.id == LoanClientKey.client_id)
        .where(LoanClientKey.key_id == key_id)
    )
    row = session.execute(stmt).one_or_none()
    return (row[0], row[1]) if row else None


def newest_key(session: Session, client_id: int) -> LoanClientKey | None:
    stmt = (
        select(LoanClientKey)
        .where(LoanClientKey.client_id == client_id, LoanClientKey.expires_at.is_(None))
        .order_by(LoanClientKey.created_at.desc(), LoanClientKey.key_id)
        .limit(1)
    )
    return session.scalars(stmt).first()


def expire_keys(session: Session, client_id: int, at: datetime) -> None:
    """Every key of the client that would outlive `at` now ends at `at`."""
    session.execute(
        update(LoanClientKey)
        .where(
            LoanClientKey.client_id == client_id,
            or_(LoanClientKey.expires_at.is_(None), LoanClientKey.expires_at > at),
        )
        .values(expires_at=at)
    )


# Disbursements.


def by_external_id(session: Session, external_id: str) -> Disbursement | None:
    stmt = select(Disbursement).where(Disbursement.external_id == external_id)
    return session.scalars(stmt).one_or_none()


def lock_by_external_id(session: Session, external_id: str) -> Disbursement | None:
    return lock_by_external_ids(session, [external_id]).get(external_id)


def lock_by_external_ids(session: Session, external_ids: Sequence[str]) -> dict[str, Disbursement]:
    """The rows under locks held to the end of the transaction, read fresh, locked in id order."""
    stmt = (
        select(Disbursement)
        .where(Disbursement.external_id.in_(list(external_ids)))
        .order_by(Disbursement.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {d.external_id: d for d in session.scalars(stmt)}


def listing(
    session: Session,
    client_id: int,
    *,
    status: str | None,
    posted_on: date | None,
    cursor: int,
    limit: int,
) -> Sequence[Disbursement]:
    stmt = (
        select(Disbursement)
        .where(Disbursement.client_id == client_id, Disbursement.id > cursor)
        .order_by(Disbursement.id)
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Disbursement.status == status)
    if posted_on:
        stmt = stmt.where(Disbursement.posted_on == posted_on)
    return session.scalars(stmt).all()


def credited_on(session: Session, day: date, client_id: int | None) -> Sequence[Disbursement]:
    """Disbursements credited on `day`, including those undone since."""
    money_moved = (DisbursementStatus.CREDITED.value, DisbursementStatus.UNDONE.value)
    stmt = (
        select(Disbursement)
        .where(Disbursement.posted_on == day, Disbursement.status.in_(money_moved))
        .order_by(Disbursement.posted_at, Disbursement.id)
    )
    if client_id is not None:
        stmt = stmt.where(Disbursement.client_id == client_id)
    return session.scalars(stmt).all()


def undone_on(session: Session, day: date, client_id: int | None) -> Sequence[Disbursement]:
    stmt = (
        select(Disbursement)
        .where(Disbursement.undone_on == day)
        .order_by(Disbursement.undone_at, Disbursement.id)
    )
    if client_id is not None:
        stmt = stmt.where(Disbursement.client_id == client_id)
    return session.scalars(stmt).all()


def search(
    session: Session,
    *,
    external_id: str | None,
    status: str | None,
    posted_from: date | None,
    posted_to: date | None,
    before: int | None,
    limit: int,
) -> Sequence[Disbursement]:
    """Every client's disbursements, newest first; `external_id` matches as a prefix."""
    stmt = select(Disbursement).order_by(Disbursement.id.desc()).limit(limit)
    if external_id:
        stmt = stmt.where(Disbursement.external_id.startswith(external_id, autoescape=True))
    if status:
        stmt = stmt.where(Disbursement.status == status)
    if posted_from:
        stmt = stmt.where(Disbursement.posted_on >= posted_from)
    if posted_to:
        stmt = stmt.where(Disbursement.posted_on <= posted_to)
    if before is not None:
        stmt = stmt.where(Disbursement.id < before)
    return session.scalars(stmt).all()


def day_counts(session: Session, day: date) -> tuple[int, int, int, int, int]:
    """(credited count, credited sum, rejected count, undone count, undone sum) of one business
    day: a loan credited and undone the same day counts in both."""
    money_moved = (DisbursementStatus.CREDITED.value, DisbursementStatus.UNDONE.value)
    posted = session.execute(
        select(
            func.count().filter(Disbursement.status.in_(money_moved)),
            func.coalesce(
                func.sum(case((Disbursement.status.in_(money_moved), Disbursement.amount))), 0
            ),
            func.count().filter(Disbursement.status == DisbursementStatus.REJECTED.value),
        ).where(Disbursement.posted_on == day)
    ).one()
    undone = session.execute(
        select(func.count(), func.coalesce(func.sum(Disbursement.amount), 0)).where(
            Disbursement.undone_on == day
        )
    ).one()
    return int(posted[0]), int(posted[1]), int(posted[2]), int(undone[0]), int(undone[1])


def all_clients(session: Session) -> Sequence[LoanClient]:
    return session.scalars(select(LoanClient).order_by(LoanClient.name)).all()


# The programme's daily totals.


def lock_daily_total(session: Session, day: date) -> DailyTotal:
    """The day's totals under a row lock held to commit: posting batches take turns on it."""
    stmt = (
        select(DailyTotal)
        .where(DailyTotal.business_day == day)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = session.scalars(stmt).one_or_none()
    if row is not None:
        return row
    dialect_insert: Any = postgresql.insert if _is_postgres(session) else sqlite.insert
    session.execute(
        dialect_insert(totals)
        .values(business_day=day, count=0, amount=0)
        .on_conflict_do_nothing(index_elements=["business_day"])
    )
    return session.scalars(stmt).one()


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
