"""Card data at rest: PANs encrypted (AES-GCM under a key from the key-encryption key), found by
a keyed hash, and masked everywhere else; ID numbers kept only as a keyed hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.config import Settings

PAN_CONTEXT = b"sshub/pan/v1"


@dataclass(frozen=True, repr=False)
class CardDataKeys:
    """Keys that protect card data; repr=False keeps them out of tracebacks and logs."""

    pan_encryption: bytes
    pan_hash: bytes
    id_hash: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> CardDataKeys:
        kek = settings.key_encryption_key.get_secret_value().encode()
        return cls(
            pan_encryption=hmac.new(kek, PAN_CONTEXT, hashlib.sha256).digest(),
            pan_hash=settings.pan_hash_key.get_secret_value().encode(),
            id_hash=settings.id_hash_key.get_secret_value().encode(),
        )


def encrypt_pan(pan: str, keys: CardDataKeys) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(keys.pan_encryption).encrypt(nonce, pan.encode(), PAN_CONTEXT)
    return base64.b64encode(nonce + sealed).decode()


def decrypt_pan(token: str, keys: CardDataKeys) -> str:
    raw = base64.b64decode(token)
    return AESGCM(keys.pan_encryption).decrypt(raw[:12], raw[12:], PAN_CONTEXT).decode()


def pan_hash(pan: str, keys: CardDataKeys) -> str:
    return hmac.new(keys.pan_hash, pan.encode(), hashlib.sha256).hexdigest()


def mask_pan(pan: str) -> str:
    """First six and last four digits, as on a receipt: 623170******7515."""
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


def id_number_hash(id_number: str, key: bytes) -> str:
    """HMAC-SHA256 hex of the upper-cased ID number; the loan system computes the same."""
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()


def with_check_digit(digits: str) -> str:
    """`digits` followed by its Luhn check digit (for test and demo PANs)."""
    total = 0
    for position, digit in enumerate(int(c) for c in reversed(digits)):
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return digits + str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    total = 0
    for position, digit in enumerate(int(c) for c in reversed(pan)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
