"""The cardholder app's credential: a bearer token the bank issues for one card.

The bank's mobile app is enrolled out of band (at the branch or through the bank's own app
login); enrolment ends with the bank issuing this token, shown once. The hub keeps only its
SHA-256 (the token is 256 random bits, so a plain hash cannot be searched), and a revoked token
or a card that is no longer usable refuses at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from hub.issuer import service as issuer
from hub.payments import code_repository as repo
from hub.payments.code_errors import CardholderTokenNotFound, CardholderUnauthorized
from hub.payments.code_models import CardholderToken

TOKEN_PREFIX = "cht_"


@dataclass(frozen=True, repr=False)
class IssuedToken:
    token_id: int
    token: str  # shown to the cardholder app once
    card_number: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, card_number: str, now: datetime) -> IssuedToken:
    """Issue an app token for a registered, usable card."""
    card = issuer.usable_card(issuer.card_by_number(session, card_number), now.date())
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = repo.add(
        session, CardholderToken(card_id=card.id, token_hash=token_hash(token), created_at=now)
    )
    return IssuedToken(row.id, token, card.card_number)


def revoke_token(session: Session, token_id: int, now: datetime) -> CardholderToken:
    row = repo.cardholder_token_by_id(session, token_id)
    if row is None:
        raise CardholderTokenNotFound(message="no such cardholder token")
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


def authenticate(session: Session, token: str) -> issuer.Card:
    """The card behind a cardholder app token (not yet checked as usable today)."""
    if not token.startswith(TOKEN_PREFIX):
        raise CardholderUnauthorized(message="a cardholder app token is required")
    row = repo.cardholder_token(session, token_hash(token))
    if row is None or row.revoked_at is not None:
        raise CardholderUnauthorized(message="the cardholder app token is not valid")
    return issuer.card_by_id(session, row.card_id)
