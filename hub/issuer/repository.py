"""Queries of the card registry."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from hub.issuer.models import Card, CardSecurity, IssuerKey, TerminalPinKey


def add(session: Session, card: Card) -> Card:
    session.add(card)
    session.flush()
    return card


def by_id(session: Session, card_id: int) -> Card | None:
    return session.get(Card, card_id)


def by_number(session: Session, card_number: str) -> Card | None:
    return session.scalars(select(Card).where(Card.card_number == card_number)).one_or_none()


def by_pan_hash(session: Session, pan_hash: str) -> Card | None:
    return session.scalars(select(Card).where(Card.pan_hash == pan_hash)).one_or_none()


def by_pan_hash_with_key(
    session: Session, pan_hash: str, purpose: str, version: int
) -> tuple[Card | None, IssuerKey | None]:
    """The card and, in the same query, the issuer key of the version its chip names."""
    key_of_version = and_(IssuerKey.purpose == purpose, IssuerKey.version == version)
    stmt = (
        select(Card, IssuerKey)
        .outerjoin(IssuerKey, key_of_version)
        .where(Card.pan_hash == pan_hash)
    )
    row = session.execute(stmt).one_or_none()
    return (None, None) if row is None else (row[0], row[1])


def by_card_id_code(session: Session, code: str) -> Card | None:
    return session.scalars(select(Card).where(Card.card_id_code == code)).one_or_none()


def by_account(session: Session, account_id: int) -> Card | None:
    return session.scalars(select(Card).where(Card.account_id == account_id)).one_or_none()


def exists(session: Session, card_number: str, card_id_code: str, pan_hash: str) -> bool:
    stmt = select(Card.id).where(
        (Card.card_number == card_number)
        | (Card.card_id_code == card_id_code)
        | (Card.pan_hash == pan_hash)
    )
    return session.scalars(stmt).first() is not None


# Issuer keys, card security state, terminal PIN keys.


def issuer_keys(session: Session, purpose: str) -> Sequence[IssuerKey]:
    stmt = select(IssuerKey).where(IssuerKey.purpose == purpose).order_by(IssuerKey.version)
    return session.scalars(stmt).all()


def issuer_key(session: Session, purpose: str, version: int) -> IssuerKey | None:
    stmt = select(IssuerKey).where(IssuerKey.purpose == purpose, IssuerKey.version == version)
    return session.scalars(stmt).one_or_none()


def add_issuer_key(session: Session, key: IssuerKey) -> IssuerKey:
    session.add(key)
    session.flush()
    return key


def card_security(session: Session, card_id: int, *, lock: bool = False) -> CardSecurity | None:
    """The card's counters and PIN state; `lock` serialises taps of one card (PostgreSQL)."""
    stmt = select(CardSecurity).where(CardSecurity.card_id == card_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def add_card_security(session: Session, row: CardSecurity) -> CardSecurity:
    session.add(row)
    session.flush()
    return row


def terminal_pin_key(session: Session, terminal_id: int, version: int) -> TerminalPinKey | None:
    stmt = select(TerminalPinKey).where(
        TerminalPinKey.terminal_id == terminal_id, TerminalPinKey.version == version
    )
    return session.scalars(stmt).one_or_none()


def terminal_pin_keys(session: Session, terminal_id: int) -> Sequence[TerminalPinKey]:
    stmt = (
        select(TerminalPinKey)
        .where(TerminalPinKey.terminal_id == terminal_id)
        .order_by(TerminalPinKey.version)
    )
    return session.scalars(stmt).all()


def add_terminal_pin_key(session: Session, row: TerminalPinKey) -> TerminalPinKey:
    session.add(row)
    session.flush()
    return row
