"""Payment codes: one-time consumer-presented QR codes that pay from a card's account.

A code is an EMVCo CPM payload (base64 BER-TLV):

    85 "CPV01"
    61  4F A000000333010101 (the card's debit application), 50 "SSC PAY"
    62  64  DF50 key version, DF51 one-time token (16 random bytes),
            DF52 expiry (Unix seconds, 4 bytes), DF53 MAC (16 bytes)

The MAC is HMAC-SHA256 under a hub key derived from the key-encryption key, over the version,
token and expiry, truncated to 128 bits. The hub keeps only the token's SHA-256 with the card it
pays from, so a code is worth nothing without the hub's row, and the row nothing without the code.
A terminal pays with a code once; its transaction id makes the submission idempotent, and a
retry of a payment that went through gets the first answer even after the code expired. The
money moves through the payments service (hold and capture at once, channel `qr_code`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from devices.emv import tlv
from devices.emv.tlv import Tlv
from devices.qr.cpm import ConsumerPayload, decode_cpm, encode_cpm
from devices.qr.errors import QrError
from hub.config import Settings
from hub.issuer import service as issuer
from hub.payments import code_charges as charges
from hub.payments import code_repository as repo
from hub.payments import service as payments
from hub.payments.code_charges import Charge
from hub.payments.code_errors import (
    PaymentCodeExpired,
    PaymentCodeInvalid,
    PaymentCodeTampered,
    PaymentCodeUnknown,
    PaymentCodeUsed,
    PaymentNotFound,
    TransactionIdReused,
    from_qr_error,
)
from hub.payments.code_models import CodePayment, PaymentCode

PAYMENT_CODE_AID = bytes.fromhex("A000000333010101")
LABEL = b"SSC PAY"
KEY_VERSION = 1
TAG_AID, TAG_LABEL, TAG_TRANSPARENT = 0x4F, 0x50, 0x64
TAG_KEY_VERSION, TAG_TOKEN, TAG_EXPIRY, TAG_MAC = 0xDF50, 0xDF51, 0xDF52, 0xDF53
TOKEN_BYTES, MAC_BYTES = 16, 16
MAC_CONTEXT = b"sshub/payment-code-mac/v1"
_MAC_LABEL = b"sshub/payment-code/v1"


@dataclass(frozen=True, repr=False)
class PaymentCodeKey:
    """The MAC key of payment codes; repr=False keeps it out of tracebacks and logs."""

    mac: bytes
    version: int = KEY_VERSION

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentCodeKey:
        kek = settings.key_encryption_key.get_secret_value().encode()
        return cls(hmac.new(kek, MAC_CONTEXT, hashlib.sha256).digest())


@dataclass(frozen=True)
class CodePolicy:
    """How long a code lives, and how long the hold behind a payment may stand."""

    validity_seconds: int = 60
    hold_seconds: int = 300

    @classmethod
    def from_settings(cls, settings: Settings) -> CodePolicy:
        return cls(
            settings.payment_code_validity_seconds, settings.payment_code_hold_timeout_seconds
        )


@dataclass(frozen=True, repr=False)
class IssuedCode:
    code_id: int
    payload: str
    expires_at: datetime


@dataclass(frozen=True, repr=False)
class CodeClaim:
    """What a payment code's payload claims, after its MAC was verified."""

    token_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class CodePaymentRequest:
    """A scanned payment code submitted by a terminal for an amount."""

    terminal_id: int
    unit_id: int
    institution_code: str
    transaction_id: str
    amount: int
    payload: str


# Issuing.


def _mac(key: PaymentCodeKey, token: bytes, expires: int) -> bytes:
    message = _MAC_LABEL + bytes([key.version]) + token + struct.pack(">I", expires)
    return hmac.new(key.mac, message, hashlib.sha256).digest()[:MAC_BYTES]


def _payload(key: PaymentCodeKey, token: bytes, expires: int) -> str:
    application = (Tlv(TAG_AID, PAYMENT_CODE_AID), Tlv(TAG_LABEL, LABEL))
    proprietary = (
        Tlv(TAG_KEY_VERSION, bytes([key.version])),
        Tlv(TAG_TOKEN, token),
        Tlv(TAG_EXPIRY, struct.pack(">I", expires)),
        Tlv(TAG_MAC, _mac(key, token, expires)),
    )
    common = (Tlv(TAG_TRANSPARENT, tlv.encode(proprietary)),)
    return encode_cpm(ConsumerPayload((application,), common))


def issue_code(
    session: Session, card_id: int, key: PaymentCodeKey, policy: CodePolicy, now: datetime
) -> IssuedCode:
    """A new one-time code for a usable card, valid for `policy.validity_seconds`."""
    card = issuer.usable_card(issuer.card_by_id(session, card_id), now.date())
    token = secrets.token_bytes(TOKEN_BYTES)
    expires = int(now.timestamp()) + policy.validity_seconds
    expires_at = datetime.fromtimestamp(expires, UTC)
    row = repo.add(
        session,
        PaymentCode(
            token_hash=_token_hash(token), card_id=card.id, issued_at=now, expires_at=expires_at
        ),
    )
    return IssuedCode(row.id, _payload(key, token, expires), expires_at)


def _token_hash(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


# Reading.


def _proprietary(payload: ConsumerPayload) -> dict[int, bytes]:
    if not any(Tlv(TAG_AID, PAYMENT_CODE_AID) in app for app in payload.applications):
        raise PaymentCodeInvalid(message="not a payment code of this bank")
    transparent = next((item for item in payload.common if item.tag == TAG_TRANSPARENT), None)
    if transparent is None:
        raise PaymentCodeInvalid(message="payment code carries no token")
    return {item.tag: item.value for item in transparent.children}


def read_code(text: str, key: PaymentCodeKey) -> CodeClaim:
    """Decode a payment code and verify its MAC; raises a CodeError (nothing is looked up)."""
    try:
        fields = _proprietary(decode_cpm(text))
    except QrError as exc:
        raise from_qr_error(exc) from None
    token, expiry = fields.get(TAG_TOKEN, b""), fields.get(TAG_EXPIRY, b"")
    mac, version = fields.get(TAG_MAC, b""), fields.get(TAG_KEY_VERSION, b"")
    if len(token) != TOKEN_BYTES or len(expiry) != 4 or len(mac) != MAC_BYTES:
        raise PaymentCodeInvalid(message="payment code token, expiry or MAC is malformed")
    if version != bytes([key.version]):
        raise PaymentCodeInvalid(message="payment code key version is not known")
    (expires,) = struct.unpack(">I", expiry)
    if not hmac.compare_digest(mac, _mac(key, token, expires)):
        raise PaymentCodeTampered(message="payment code MAC does not verify")
    return CodeClaim(_token_hash(token), datetime.fromtimestamp(expires, UTC))


# Paying.


def pay_with_code(
    session: Session,
    request: CodePaymentRequest,
    key: PaymentCodeKey,
    policy: CodePolicy,
    now: datetime,
) -> CodePayment:
    """Take `request.amount` from the code's card for the terminal's unit, exactly once.

    Refusals (expired, used, tampered, card blocked, insufficient funds...) raise a CodeError
    or an issuer error before anything is written; the caller's boundary rolls back.
    """
    claim = read_code(request.payload, key)
    earlier = repo.code_payment(session, request.terminal_id, request.transaction_id)
    if earlier is not None:
        return _same_payment(session, earlier, claim, request)
    if claim.expires_at <= now:
        raise PaymentCodeExpired(message="the payment code has expired; show a new one")
    code = repo.payment_code(session, claim.token_hash, lock=True)
    if code is None:
        raise PaymentCodeUnknown(message="no such payment code")
    if code.used_at is not None:
        raise PaymentCodeUsed(message="the payment code was already used")
    card = issuer.usable_card(issuer.card_by_id(session, code.card_id), now.date())
    spec = _charge(request, claim, card)
    payment = charges.charge(session, spec, now, hold_seconds=policy.hold_seconds)
    code.used_at = now
    return repo.add(
        session,
        CodePayment(
            terminal_id=request.terminal_id,
            transaction_id=request.transaction_id,
            code_id=code.id,
            card_id=card.id,
            institution_code=request.institution_code,
            amount=request.amount,
            payment_id=payment.id,
            created_at=now,
        ),
    )


def sale(session: Session, terminal_id: int, transaction_id: str) -> CodePayment:
    """The code payment a terminal made under this transaction id (its lost answer)."""
    payment = repo.code_payment(session, terminal_id, transaction_id)
    if payment is None:
        raise PaymentNotFound(message="no payment with this transaction id")
    return payment


def _same_payment(
    session: Session, earlier: CodePayment, claim: CodeClaim, request: CodePaymentRequest
) -> CodePayment:
    """A retry returns the first payment; the same transaction id for anything else is refused."""
    code = repo.payment_code(session, claim.token_hash)
    if code is None or code.id != earlier.code_id or earlier.amount != request.amount:
        raise TransactionIdReused(message="this transaction id was used for another payment")
    return earlier


def _charge(request: CodePaymentRequest, claim: CodeClaim, card: issuer.Card) -> Charge:
    caller = payments.Caller.terminal(
        request.terminal_id, request.unit_id, request.institution_code
    )
    return Charge(
        key=f"qr:{request.terminal_id}:{request.transaction_id}",
        fingerprint=hashlib.sha256(f"{claim.token_hash}:{request.amount}".encode()).hexdigest(),
        card_id=card.id,
        card_account_id=card.account_id,
        pan_masked=card.pan_masked,
        amount=request.amount,
        caller=caller,
        transaction_id=request.transaction_id,
    )


def purge_unused_codes(session: Session, now: datetime, *, keep_days: int = 1) -> int:
    """Forget codes that expired unused more than `keep_days` ago (a periodic job)."""
    return repo.purge_unused_codes(session, now - timedelta(days=keep_days), limit=5000)
