"""The card registry: register cards, find them by number, chip code or PAN, check them.

Every card pays from its own ledger account (kind "card", never below zero). Callers hold a
`CardDataKeys` built once from settings (`CardDataKeys.from_settings`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from devices.emv.crypto import derive_icc_master_key
from hub.issuer import keys, pin
from hub.issuer import repository as repo
from hub.issuer.cryptogram import (
    IccData,
    arpc,
    atc_refusal,
    parse_icc_data,
    response_code,
    session_key_if_valid,
)
from hub.issuer.errors import CardExists, CardExpired, CardNotActive, CardNotFound, InvalidPan
from hub.issuer.keys import IssuerSecrets as IssuerSecrets  # re-exported for payments
from hub.issuer.models import Card, CardSecurity, CardStatus
from hub.issuer.protection import (
    CardDataKeys,
    decrypt_pan,
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


# Card taps: issuer keys, ARQC/ARPC, the ATC window and online PIN.
#
# Payments calls `authenticate_card_tap` with what the terminal read from the chip and gets a
# `CardAuthentication`: the card, a decline code (or None) and, once the cryptogram verified,
# `respond(decline)` for the ARC and ARPC that go back to the card. Keys stay inside the issuer.


@dataclass(frozen=True, repr=False)
class CardTap:
    """One first GENERATE AC as the terminal reported it. repr=False: it holds a PAN."""

    pan: str
    icc: IccData
    terminal_id: int
    card_number: str | None = None
    pin_block: bytes | None = None
    pin_key_version: int | None = None
    pin_required: bool = False


@dataclass(repr=False)
class CardAuthentication:
    """The issuer's verdict on a tap, before the money is looked at."""

    card: Card | None
    decline: str | None
    atc: int
    _session_key: bytes | None = None

    @property
    def cryptogram_verified(self) -> bool:
        return self._session_key is not None

    def respond(self, arqc: bytes, decline: str | None) -> tuple[str, bytes | None]:
        """The response code for the card and, when the ARQC verified, its ARPC."""
        code = response_code(decline)
        if self._session_key is None:
            return code, None
        return code, arpc(self._session_key, arqc, code)


def authenticate_card_tap(
    session: Session, tap: CardTap, secrets: IssuerSecrets, now: datetime, *, atc_window: int
) -> CardAuthentication:
    """Verify the ARQC, advance the ATC, check the card's state and the PIN.

    Declines are results, not errors: the ATC advance and a counted PIN try must be kept.
    """
    hashed = pan_hash(tap.pan, secrets.card_data)
    card, key = repo.by_pan_hash_with_key(session, hashed, keys.AC_KEYS, tap.icc.key_version)
    atc = tap.icc.atc
    if card is None or tap.card_number not in (None, card.card_number):
        return CardAuthentication(None, "card_unknown", atc)
    master = keys.open_key(secrets, key)
    session_key = master and session_key_if_valid(master, tap.pan, card.psn, tap.icc)
    if not session_key:
        return CardAuthentication(card, "cryptogram_invalid", atc)
    state = pin.security_state(session, card.id, now, lock=True)
    refusal = atc_refusal(state.last_atc, atc, atc_window)
    if refusal:
        return CardAuthentication(card, refusal, atc)
    state.last_atc, state.updated_at = atc, now
    decline = _card_refusal(card, now.date())
    if decline is None and (tap.pin_required or tap.pin_block is not None):
        decline = _pin_refusal(session, card, state, tap, secrets, now)
    session.flush()
    return CardAuthentication(card, decline, atc, session_key)


def _card_refusal(card: Card, today: date) -> str | None:
    if card.status == CardStatus.BLOCKED:
        return "card_blocked"
    if card.status != CardStatus.ACTIVE:
        return "card_not_active"
    return "card_expired" if card.expiry < today else None


def _pin_refusal(
    session: Session,
    card: Card,
    state: CardSecurity,
    tap: CardTap,
    secrets: IssuerSecrets,
    now: datetime,
) -> str | None:
    if tap.pin_block is None or tap.pin_key_version is None:
        return "pin_required"
    pin_key = pin.terminal_pin_key(session, tap.terminal_id, tap.pin_key_version, secrets)
    refusal = pin.check_pin_block(state, tap.pin_block, tap.pan, pin_key, secrets, now)
    if refusal == "pin_tries_exceeded":
        card.status = CardStatus.BLOCKED.value
    return refusal


def parse_chip_data(raw: bytes) -> IccData:
    """Parse a terminal's chip data (IccDataInvalid, 422, names what is wrong)."""
    return parse_icc_data(raw)


def set_pin(
    session: Session, card_number: str, new_pin: str, secrets: IssuerSecrets, now: datetime
) -> Card:
    """Set the card's PIN (at the branch, with the cardholder present); unblocks PIN tries
    but not a card the bank blocked."""
    card = card_by_number(session, card_number)
    pin.set_pin(session, card.id, new_pin, secrets, now)
    return card


def agree_pin_key(
    session: Session, terminal_id: int, public_key: str, secrets: IssuerSecrets, now: datetime
) -> pin.PinKeyAgreement:
    return pin.agree_pin_key(session, terminal_id, public_key, secrets, now)


def create_issuer_key(
    session: Session, secrets: IssuerSecrets, now: datetime, *, key: bytes | None = None
) -> keys.IssuerKeyInfo:
    return keys.create_key(session, secrets, now, key=key)


def rotate_issuer_key(
    session: Session, secrets: IssuerSecrets, now: datetime
) -> keys.IssuerKeyInfo:
    return keys.rotate_key(session, secrets, now)


def list_issuer_keys(session: Session) -> list[keys.IssuerKeyInfo]:
    return keys.list_keys(session)


def last_atc(session: Session, card_id: int) -> int | None:
    state = repo.card_security(session, card_id)
    return None if state is None else state.last_atc


def personalisation(
    session: Session, card_number: str, secrets: IssuerSecrets
) -> dict[str, object]:
    """The data preparation for one card under the active issuer key: what the personalisation
    bureau writes onto the chip, including the card's own key. For `sshub issuer personalise`
    only; it goes to a file, never to a log or an HTTP response."""
    card = card_by_number(session, card_number)
    version = keys.active_version(session)
    master = keys.master_key(session, secrets, version)
    assert master is not None
    pan = decrypt_pan(card.pan_encrypted, secrets.card_data)
    return {
        "card_number": card.card_number,
        "card_id_code": card.card_id_code,
        "holder_name": card.holder_name,
        "pan": pan,
        "psn": card.psn,
        "pan_expiry": card.expiry.isoformat(),
        "icc_master_key": derive_icc_master_key(master, pan, card.psn).hex().upper(),
        "key_index": version,
        "atc": last_atc(session, card.id) or 0,
    }
