"""Ed25519 request signing between a terminal and the hub.

Every terminal request carries four headers: the terminal id, a Unix timestamp, a random
nonce and an Ed25519 signature over the canonical string

    SSC1 \\n METHOD \\n path?query \\n terminal id \\n timestamp \\n nonce \\n sha256(body) hex

`path?query` is the request target exactly as it travels on the wire (`signed_target`):
percent-encoding kept, nothing decoded or re-encoded, so the client signs the bytes it sends
and the hub verifies the bytes it received (its server's raw path, not the decoded one it
routes on). Decoding is a function of those bytes, so the route is bound all the same.

The body's digest binds the payload; the timestamp bounds how long a captured request stays
usable, and the nonce lets the verifier refuse a second use inside that window. The hub holds
only public keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SCHEME = b"SSC1"
HEADER_TERMINAL = "X-SSC-Terminal"
HEADER_TIMESTAMP = "X-SSC-Timestamp"
HEADER_NONCE = "X-SSC-Nonce"
HEADER_SIGNATURE = "X-SSC-Signature"
MAX_SKEW_SECONDS = 300
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MAX_TERMINAL_ID = 2**63 - 1


class SignatureError(ValueError):
    """A request's signature headers are missing, malformed, stale or do not verify.

    `code` is the stable machine code the hub answers with.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SignedHeaders:
    """The parsed signature headers of one request (not yet verified)."""

    terminal_id: int
    timestamp: int
    nonce: str
    signature: bytes


def signed_target(raw_path: bytes, query: bytes = b"") -> str:
    """The `path?query` that is signed: the request target's bytes as sent (an HTTP client's
    raw path, or a server's raw path and query string).

    A request target is ASCII (anything else travels percent-encoded). Other bytes are refused
    (`signature_malformed`): decoded leniently, two different targets could share a signature."""
    target = raw_path + (b"?" + query if query else b"")
    try:
        return target.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureError("signature_malformed", "the request target is not ASCII") from None


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_message(
    method: str, path: str, terminal_id: int, timestamp: int, nonce: str, body: bytes
) -> bytes:
    """The exact bytes that are signed; `path` is the `signed_target` of the request."""
    parts = [
        SCHEME,
        method.upper().encode(),
        path.encode(),
        str(terminal_id).encode(),
        str(timestamp).encode(),
        nonce.encode(),
        body_digest(body).encode(),
    ]
    return b"\n".join(parts)


def new_nonce() -> str:
    return secrets.token_hex(16)


def sign_request(
    private_key: Ed25519PrivateKey,
    terminal_id: int,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign one request; returns the headers to send with it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = new_nonce() if nonce is None else nonce
    message = canonical_message(method, path, terminal_id, timestamp, nonce, body)
    signature = private_key.sign(message)
    return {
        HEADER_TERMINAL: str(terminal_id),
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: base64.b64encode(signature).decode(),
    }


def parse_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Read the four signature headers (names are case-insensitive)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    values = [
        lowered.get(name.lower())
        for name in (HEADER_TERMINAL, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
    ]
    terminal, timestamp, nonce, signature = values
    if terminal is None or timestamp is None or nonce is None or signature is None:
        raise SignatureError("signature_missing", "terminal signature headers are required")
    if not (terminal.isdigit() and 0 < int(terminal) <= _MAX_TERMINAL_ID):
        raise SignatureError("signature_malformed", f"{HEADER_TERMINAL} is not a terminal id")
    if not (timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureError("signature_malformed", f"{HEADER_TIMESTAMP} is not a Unix time")
    if not _NONCE.match(nonce):
        raise SignatureError("signature_malformed", f"{HEADER_NONCE} must be 16-64 URL-safe chars")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64:
        raise SignatureError(
            "signature_malformed", f"{HEADER_SIGNATURE} is not an Ed25519 signature"
        )
    return SignedHeaders(int(terminal), int(timestamp), nonce, raw)


def check_skew(timestamp: int, now: float, max_skew: int = MAX_SKEW_SECONDS) -> None:
    """Refuse a timestamp more than `max_skew` seconds away from the verifier's clock."""
    if abs(now - timestamp) > max_skew:
        raise SignatureError("clock_skew", f"request time is more than {max_skew} s off")


def verify_signature(
    public_key: Ed25519PublicKey, signed: SignedHeaders, method: str, path: str, body: bytes
) -> bool:
    """True when `signed.signature` was made by this key over this request."""
    message = canonical_message(
        method, path, signed.terminal_id, signed.timestamp, signed.nonce, body
    )
    try:
        public_key.verify(signed.signature, message)
    except InvalidSignature:
        return False
    return True


def verify_request(
    public_key: Ed25519PublicKey,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    now: float,
    max_skew: int = MAX_SKEW_SECONDS,
) -> SignedHeaders:
    """Parse, check the clock and verify in one call; raises SignatureError on any refusal.

    Nonce reuse is the caller's to check: only it knows which nonces it has seen.
    """
    signed = parse_signed_headers(headers)
    check_skew(signed.timestamp, now, max_skew)
    if not verify_signature(public_key, signed, method, path, body):
        raise SignatureError("signature_invalid", "signature does not verify")
    return signed


def public_key_text(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64: how keys travel in enrollment and rotation."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse a base64 raw Ed25519 public key; raises ValueError when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("public key is not base64") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key (SHA-256 of the raw key, 16 hex digits)."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
