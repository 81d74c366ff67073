"""Queries of the card registry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.issuer.models import Card


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
