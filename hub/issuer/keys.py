"""Issuer master keys: made at random, stored only wrapped under the key-encryption key.

A key is identified by its version, which is also the derivation key index (DKI) that cards
personalised under it report in their issuer application data (9F10 byte 2). Rotation makes a
new active version; retired versions keep verifying the cards made under them. Keys never
leave this module in a response, a log line or an error: callers see versions and check values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from devices.emv.crypto import key_check_value
from hub.config import Settings
from hub.issuer import repository as repo
from hub.issuer.errors import IssuerKeyMissing, IssuerKeysExhausted
from hub.issuer.models import IssuerKey, KeyStatus
from hub.issuer.protection import CardDataKeys

AC_KEYS = "ac"  # application cryptogram master keys (ARQC/ARPC)
MAX_VERSION = 0xFF  # the DKI is one byte
_WRAP_CONTEXT = b"sshub/issuer/key-wrap/v1"
_PIN_CONTEXT = b"sshub/issuer/pin-verifier/v1"


@dataclass(frozen=True, repr=False)
class IssuerSecrets:
    """Keys derived from the key-encryption key; repr=False keeps them out of tracebacks."""

    card_data: CardDataKeys
    key_wrapping: bytes
    pin_verifier: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> IssuerSecrets:
        kek = settings.key_encryption_key.get_secret_value().encode()
        return cls(
            card_data=CardDataKeys.from_settings(settings),
            key_wrapping=hmac.new(kek, _WRAP_CONTEXT, hashlib.sha256).digest(),
            pin_verifier=hmac.new(kek, _PIN_CONTEXT, hashlib.sha256).digest(),
        )


def wrap(secrets: IssuerSecrets, key: bytes, label: str) -> str:
    """AES-256-GCM under the wrapping key; `label` (what the key is for) is authenticated."""
    nonce = os.urandom(12)
    sealed = AESGCM(secrets.key_wrapping).encrypt(nonce, key, label.encode())
    return base64.b64encode(nonce + sealed).decode()


def unwrap(secrets: IssuerSecrets, token: str, label: str) -> bytes:
    raw = base64.b64decode(token)
    try:
        return AESGCM(secrets.key_wrapping).decrypt(raw[:12], raw[12:], label.encode())
    except InvalidTag:
        # Wrong KEK or a row moved to another label: never say more than that.
        raise IssuerKeyMissing(message="a stored key does not open under this KEK") from None


def _label(purpose: str, version: int) -> str:
    return f"issuer:{purpose}:v{version}"


@dataclass(frozen=True)
class IssuerKeyInfo:
    """What may be shown about a key: never the key."""

    purpose: str
    version: int
    kcv: str
    status: str
    created_at: datetime


def _info(row: IssuerKey) -> IssuerKeyInfo:
    return IssuerKeyInfo(row.purpose, row.version, row.kcv, row.status, row.created_at)


def list_keys(session: Session, purpose: str = AC_KEYS) -> list[IssuerKeyInfo]:
    return [_info(row) for row in repo.issuer_keys(session, purpose)]


def create_key(
    session: Session,
    secrets: IssuerSecrets,
    now: datetime,
    *,
    purpose: str = AC_KEYS,
    key: bytes | None = None,
) -> IssuerKeyInfo:
    """Add a new active version (random unless `key` is given, e.g. imported from an HSM
    ceremony or a test vector); earlier versions are retired but keep verifying."""
    rows = repo.issuer_keys(session, purpose)
    version = (rows[-1].version + 1) if rows else 1
    if version > MAX_VERSION:
        raise IssuerKeysExhausted(message="all 255 key versions are used")
    material = key if key is not None else os.urandom(16)
    if len(material) != 16:
        raise ValueError("an issuer master key is a 16-byte double-length 3DES key")
    for row in rows:
        if row.status == KeyStatus.ACTIVE:
            row.status, row.retired_at = KeyStatus.RETIRED.value, now
    row = IssuerKey(
        purpose=purpose,
        version=version,
        key_wrapped=wrap(secrets, material, _label(purpose, version)),
        kcv=key_check_value(material, 3),
        status=KeyStatus.ACTIVE.value,
        created_at=now,
    )
    return _info(repo.add_issuer_key(session, row))


def rotate_key(
    session: Session, secrets: IssuerSecrets, now: datetime, *, purpose: str = AC_KEYS
) -> IssuerKeyInfo:
    """A new version for new cards; refuses when there is nothing to rotate yet."""
    if not repo.issuer_keys(session, purpose):
        raise IssuerKeyMissing(message="no issuer key to rotate: create one first")
    return create_key(session, secrets, now, purpose=purpose)


def master_key(
    session: Session, secrets: IssuerSecrets, version: int, purpose: str = AC_KEYS
) -> bytes | None:
    """The clear key of one version, for this process's computation only; None if unknown."""
    return open_key(secrets, repo.issuer_key(session, purpose, version))


def open_key(secrets: IssuerSecrets, row: IssuerKey | None) -> bytes | None:
    """The clear key of a stored row (None for none), for this process's computation only."""
    return (
        None if row is None else unwrap(secrets, row.key_wrapped, _label(row.purpose, row.version))
    )


def active_version(session: Session, purpose: str = AC_KEYS) -> int:
    active = [r for r in repo.issuer_keys(session, purpose) if r.status == KeyStatus.ACTIVE]
    if not active:
        raise IssuerKeyMissing(message="no active issuer key: run `sshub keys create`")
    return active[-1].version
