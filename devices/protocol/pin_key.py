"""Agreeing a terminal's PIN key with the hub: X25519, then HKDF-SHA256 to an AES-128 key.

The terminal sends its ephemeral X25519 public key in a signed request; the hub answers with
its own ephemeral public key and the key version. Both sides derive the same PIN key and the
key itself never travels. The terminal enciphers PINs under it as ISO 9564 format 4 blocks.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PIN_KEY_PATH = "/api/terminal/pin-key"
PIN_KEY_BYTES = 16
_SALT = b"SSC1 terminal PIN key"


class PinKeyError(ValueError):
    """A public key in the exchange is malformed."""


def public_key_text(key: X25519PrivateKey) -> str:
    """The raw 32-byte public key, base64, as it travels."""
    return base64.b64encode(key.public_key().public_bytes_raw()).decode()


def load_public_key(text: str) -> X25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise PinKeyError("not a base64 X25519 public key") from None


def derive_pin_key(
    own: X25519PrivateKey, peer: X25519PublicKey, terminal_id: int, version: int
) -> bytes:
    """The PIN key both sides compute; bound to the terminal and the key version."""
    try:
        shared = own.exchange(peer)
    except ValueError:  # OpenSSL refuses a low-order point (an all-zero shared secret)
        raise PinKeyError("the peer's public key is a low-order point") from None
    info = f"terminal:{terminal_id}:pin-key:v{version}".encode()
    return HKDF(hashes.SHA256(), PIN_KEY_BYTES, _SALT, info).derive(shared)
