"""Every query of the console: operators, sessions and the login throttle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.console.models import LoginThrottle, Operator, OperatorSession


def add(session: Session, row: Operator | OperatorSession | LoginThrottle) -> None:
    session.add(row)
    session.flush()


def operator_by_username(session: Session, username: str) -> Operator | None:
    return session.scalars(select(Operator).where(Operator.username == username)).first()


def operator_by_id(session: Session, operator_id: int) -> Operator | None:
    return session.get(Operator, operator_id)


def all_operators(session: Session) -> Sequence[Operator]:
    return session.scalars(select(Operator).order_by(Operator.username)).all()


def session_by_hash(session: Session, token_hash: str) -> OperatorSession | None:
    return session.get(OperatorSession, token_hash)


def drop_session(session: Session, token_hash: str) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_hash))


def drop_sessions_of(session: Session, operator_id: int) -> None:
    session.execute(delete(OperatorSession).where(OperatorSession.operator_id == operator_id))


def drop_sessions_seen_before(session: Session, cutoff: datetime) -> int:
    result = session.execute(delete(OperatorSession).where(OperatorSession.last_seen_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def throttle(session: Session, key: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, key)


def drop_throttle(session: Session, key: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
