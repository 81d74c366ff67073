"""Online PIN: terminal PIN keys, format 4 PIN blocks, the salted verifier and the tries counter.

The hub keeps no PIN, only HMAC-SHA256(pepper, salt || card id || PIN) with a per-card random
salt and a pepper derived from the key-encryption key. A PIN has at most a million values, so
a slow hash would not stop anyone holding the table; the pepper, which is not in the database,
does. Three wrong PINs in a row block the card.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy.orm import Session

from devices.emv.errors import PinBlockError
from devices.emv.pinblock import decipher_pinblock_iso4
from devices.protocol.pin_key import PinKeyError, derive_pin_key, load_public_key, public_key_text
from hub.issuer import repository as repo
from hub.issuer.errors import PinFormatInvalid, PinKeyInvalid, PinKeyUnknown
from hub.issuer.keys import IssuerSecrets, unwrap, wrap
from hub.issuer.models import CardSecurity, KeyStatus, TerminalPinKey

PIN_TRIES = 3


def pin_verifier(secrets: IssuerSecrets, salt: bytes, card_id: int, pin: str) -> str:
    message = salt + card_id.to_bytes(8, "big") + pin.encode("ascii")
    return hmac.new(secrets.pin_verifier, message, hashlib.sha256).hexdigest()


def security_state(session: Session, card_id: int, now: datetime, *, lock: bool) -> CardSecurity:
    """The card's ATC and PIN state, created on first use."""
    row = repo.card_security(session, card_id, lock=lock)
    if row is None:
        row = repo.add_card_security(session, CardSecurity(card_id=card_id, updated_at=now))
    return row


def set_pin(
    session: Session, card_id: int, pin: str, secrets: IssuerSecrets, now: datetime
) -> None:
    """Set (or reset) a card's PIN: a new salt, a new verifier, the tries counter back to 0."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise PinFormatInvalid(message="a PIN is 4 to 12 digits")
    state = security_state(session, card_id, now, lock=True)
    salt = os.urandom(16)
    state.pin_salt = salt.hex()
    state.pin_verifier = pin_verifier(secrets, salt, card_id, pin)
    state.pin_tries = 0
    state.updated_at = now
    session.flush()


def check_pin_block(
    state: CardSecurity,
    pin_block: bytes,
    pan: str,
    pin_key: bytes,
    secrets: IssuerSecrets,
    now: datetime,
) -> str | None:
    """None when the PIN is right; else the decline code. Counts tries on `state`."""
    if state.pin_verifier is None or state.pin_salt is None:
        return "pin_not_set"
    if state.pin_tries >= PIN_TRIES:
        return "pin_tries_exceeded"
    try:
        pin = decipher_pinblock_iso4(pin_key, pin_block, pan)
    except PinBlockError:
        pin = ""  # a block that does not open is a wrong PIN, not a hint for the sender
    given = pin_verifier(secrets, bytes.fromhex(state.pin_salt), state.card_id, pin)
    state.updated_at = now
    if pin and hmac.compare_digest(given, state.pin_verifier):
        state.pin_tries = 0
        return None
    state.pin_tries += 1
    return "pin_tries_exceeded" if state.pin_tries >= PIN_TRIES else "pin_incorrect"


# Terminal PIN keys.


@dataclass(frozen=True)
class PinKeyAgreement:
    """The hub's half of the exchange: its public key and the version to quote in PIN blocks."""

    hub_public_key: str
    version: int


def _label(terminal_id: int, version: int) -> str:
    return f"terminal:{terminal_id}:pin-key:v{version}"


def agree_pin_key(
    session: Session,
    terminal_id: int,
    terminal_public_key: str,
    secrets: IssuerSecrets,
    now: datetime,
) -> PinKeyAgreement:
    """Agree a new PIN key with the terminal; earlier versions are retired."""
    try:
        peer = load_public_key(terminal_public_key)
    except PinKeyError as exc:
        raise PinKeyInvalid(message=str(exc)) from None
    rows = repo.terminal_pin_keys(session, terminal_id)
    version = rows[-1].version + 1 if rows else 1
    own = X25519PrivateKey.generate()  # ephemeral: forgotten as soon as the key is derived
    try:
        key = derive_pin_key(own, peer, terminal_id, version)
    except PinKeyError as exc:
        raise PinKeyInvalid(message=str(exc)) from None
    for row in rows:
        row.status = KeyStatus.RETIRED.value
    repo.add_terminal_pin_key(
        session,
        TerminalPinKey(
            terminal_id=terminal_id,
            version=version,
            key_wrapped=wrap(secrets, key, _label(terminal_id, version)),
            status=KeyStatus.ACTIVE.value,
            created_at=now,
        ),
    )
    return PinKeyAgreement(public_key_text(own), version)


def terminal_pin_key(
    session: Session, terminal_id: int, version: int, secrets: IssuerSecrets
) -> bytes:
    """The terminal's active PIN key of this version; a retired or unknown one is refused."""
    row = repo.terminal_pin_key(session, terminal_id, version)
    if row is None or row.status != KeyStatus.ACTIVE:
        raise PinKeyUnknown(message="no active PIN key of this version for this terminal")
    return unwrap(secrets, row.key_wrapped, _label(terminal_id, version))
