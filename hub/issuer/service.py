"""The card registry: register cards, find them by number, chip code or PAN, check them.

Every card pays from its own ledger account (kind "card", never below zero). Callers hold a
`CardDataKeys` built once from settings (`CardDataKeys.from_settings`).
"""

from __future__ import annotations

import hmac
from datetime import date, datetime

from sqlalchemy.orm import Session

from hub.issuer import repository as repo
from hub.issuer.errors import CardExists, CardExpired, CardNotActive, CardNotFound, InvalidPan
from hub.issuer.models import Card, CardStatus
from hub.issuer.protection import (
    CardDataKeys,
    encrypt_pan,
    id_number_hash,
    luhn_valid,
    mask_pan,
    pan_hash,
)
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn


def card_account_spec(card_number: str) -> AccountIn:
    return AccountIn(kind="card", owner_ref=card_number, debits_must_not_exceed_credits=True)


def register_card(session: Session, spec: CardIn, keys: CardDataKeys, now: datetime) -> Card:
    """Register a card and open its account."""
    pan = spec.pan.get_secret_value()
    if not (pan.isdigit() and 13 <= len(pan) <= 19 and luhn_valid(pan)):
        raise InvalidPan(message="PAN must be 13-19 digits with a valid check digit")
    hashed = pan_hash(pan, keys)
    if repo.exists(session, spec.card_number, spec.card_id_code, hashed):
        raise CardExists(message="a card with this number, chip code or PAN is registered")
    account = ledger.ensure_account(session, card_account_spec(spec.card_number), now)
    card = Card(
        card_number=spec.card_number,
        card_id_code=spec.card_id_code,
        holder_name=spec.holder_name,
        id_number_hash=id_number_hash(spec.id_number.get_secret_value(), keys.id_hash),
        pan_encrypted=encrypt_pan(pan, keys),
        pan_hash=hashed,
        pan_masked=mask_pan(pan),
        psn=spec.psn,
        expiry=spec.expiry,
        status=CardStatus.ACTIVE.value,
        account_id=account.id,
        created_at=now,
    )
    return repo.add(session, card)


def _found(card: Card | None) -> Card:
    if card is None:
        raise CardNotFound(message="no such card")
    return card


def card_by_id(session: Session, card_id: int) -> Card:
    return _found(repo.by_id(session, card_id))


def card_by_number(session: Session, card_number: str) -> Card:
    return _found(repo.by_number(session, card_number))


def find_card(session: Session, card_number: str) -> Card | None:
    return repo.by_number(session, card_number)


def card_by_pan(session: Session, pan: str, keys: CardDataKeys) -> Card:
    return _found(repo.by_pan_hash(session, pan_hash(pan, keys)))


def card_by_id_code(session: Session, card_id_code: str) -> Card:
    return _found(repo.by_card_id_code(session, card_id_code))


def card_by_account(session: Session, account_id: int) -> Card:
    return _found(repo.by_account(session, account_id))


def usable_card(card: Card, today: date) -> Card:
    """The card if it may pay or be paid today; otherwise a refusal with a stable code."""
    if card.status != CardStatus.ACTIVE:
        raise CardNotActive(message=f"card is {card.status}")
    if card.expiry < today:
        raise CardExpired(message="card has expired")
    return card


def identity_matches(card: Card, id_number_hash_given: str) -> bool:
    return hmac.compare_digest(card.id_number_hash, id_number_hash_given.lower())


def set_card_status(session: Session, card_id: int, status: CardStatus) -> Card:
    card = card_by_id(session, card_id)
    card.status = status.value
    session.flush()
    return card
