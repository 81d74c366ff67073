"""Enrollment: one-time codes, binding a terminal to the key it generated, key rotation.

The hub never holds a terminal's private key. A code is kept only as its SHA-256, works once,
expires, and is withdrawn by a newer code or by disabling the terminal. Enrolling again (with a
new code) revokes the old key in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlencode

import qrcode
from sqlalchemy.orm import Session

from devices.protocol.messages import (
    EnrolmentRequest,
    EnrolmentResponse,
    KeyRotation,
    KeyRotationReceipt,
)
from devices.protocol.signing import key_fingerprint, load_public_key
from hub.audit import service as audit
from hub.gateway import firmware
from hub.gateway import repository as repo
from hub.gateway.changes import note_change
from hub.gateway.errors import (
    EnrollmentCodeExpired,
    EnrollmentCodeInvalid,
    EnrollmentCodeUsed,
    InvalidPublicKey,
    ModelMismatch,
    PublicKeyInUse,
    TerminalDisabled,
    TerminalNotFound,
    UnitDisabled,
)
from hub.gateway.models import (
    EnrollmentCode,
    KeyStatus,
    Presence,
    Terminal,
    TerminalKey,
    TerminalStatus,
    UnitStatus,
)
from hub.gateway.presence import deadlines
from hub.gateway.schemas import EnrollmentCodeOut

ENROLLMENT_CODE_TTL = timedelta(hours=24)
# Crockford base32: no I, L, O or U, so a code read aloud or typed survives.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 80 bits


def _terminal(session: Session, terminal_id: int, *, lock: bool = False) -> Terminal:
    terminal = repo.get_terminal(session, terminal_id, lock=lock)
    if terminal is None:
        raise TerminalNotFound(message=f"no terminal {terminal_id}")
    return terminal


def _normalise_code(code: str) -> str:
    cleaned = code.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def _code_hash(code: str) -> str:
    return hashlib.sha256(_normalise_code(code).encode()).hexdigest()


def _qr_png(payload: str) -> str:
    image = qrcode.make(payload, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def create_enrollment_code(
    session: Session,
    terminal_id: int,
    *,
    actor: str,
    now: datetime,
    hub_url: str,
    ttl: timedelta = ENROLLMENT_CODE_TTL,
) -> EnrollmentCodeOut:
    """A one-time code for this serial, shown once as text and as a PNG QR code.

    A newer code withdraws older unused ones. Only the code's SHA-256 is stored.
    """
    terminal = _terminal(session, terminal_id, lock=True)
    if terminal.status == TerminalStatus.DISABLED:
        raise TerminalDisabled(message="enable the terminal before enrolling it")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    code = "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))
    repo.withdraw_codes(session, terminal.id, now)
    row = EnrollmentCode(
        terminal_id=terminal.id,
        code_hash=_code_hash(code),
        created_at=now,
        expires_at=now + ttl,
        created_by=actor,
    )
    repo.add(session, row)
    audit.record(
        session,
        actor=actor,
        action="terminal.enrollment_code_created",
        subject=f"terminal:{terminal.id}",
        now=now,
        details={"serial": terminal.serial, "expires_at": row.expires_at},
    )
    payload = "sshub-enrol:1?" + urlencode(
        {"hub": hub_url, "serial": terminal.serial, "code": code}
    )
    return EnrollmentCodeOut(
        terminal_id=terminal.id,
        serial=terminal.serial,
        code=code,
        expires_at=row.expires_at,
        qr_payload=payload,
        qr_png_base64=_qr_png(payload),
    )


def enrol(
    session: Session, request: EnrolmentRequest, *, now: datetime, interval: float
) -> EnrolmentResponse:
    """Bind a terminal to the public key it generated, with a one-time code.

    Re-enrollment (a new code for an enrolled serial) revokes the old key.
    """
    code = repo.code_by_hash(session, _code_hash(request.code))
    terminal = repo.get_terminal(session, code.terminal_id, lock=True) if code else None
    if code is None or terminal is None or terminal.serial != request.serial:
        raise EnrollmentCodeInvalid(message="no such enrollment code for this serial")
    _check_code(code, now)
    firmware.terminal_model(request.model)
    if request.model != terminal.model:
        raise ModelMismatch(message=f"serial {terminal.serial} is registered as {terminal.model}")
    unit = repo.get_unit(session, terminal.unit_id)
    assert unit is not None  # foreign key
    if terminal.status == TerminalStatus.DISABLED:
        raise TerminalDisabled(message="the terminal is disabled")
    if unit.status == UnitStatus.DISABLED:
        raise UnitDisabled(message="the terminal's unit is disabled")
    fingerprint = _parse_key(session, request.public_key)
    revoked = repo.revoke_keys(session, terminal.id, now, "re-enrolled")
    _add_key(session, terminal.id, request.public_key, fingerprint, now)
    code.used_at = now
    _mark_enrolled(session, terminal, request, now, interval)
    audit.record(
        session,
        actor=f"terminal:{terminal.id}",
        action="terminal.enrolled",
        subject=f"terminal:{terminal.id}",
        now=now,
        details={"serial": terminal.serial, "key": fingerprint, "revoked_keys": revoked},
    )
    note_change(session, now, terminal_id=terminal.id)
    return EnrolmentResponse(
        terminal_id=terminal.id,
        unit_id=unit.id,
        institution_code=unit.institution_code,
        kind=terminal.kind,  # type: ignore[arg-type]
        heartbeat_interval_seconds=interval,
        hub_time=now,
    )


def _check_code(code: EnrollmentCode, now: datetime) -> None:
    if code.used_at is not None:
        raise EnrollmentCodeUsed(message="this enrollment code was already used")
    if code.withdrawn_at is not None:
        raise EnrollmentCodeInvalid(message="this enrollment code was replaced by a newer one")
    if code.expires_at <= now:
        raise EnrollmentCodeExpired(message="this enrollment code has expired")


def _parse_key(session: Session, public_key: str) -> str:
    """Check the key and that no terminal ever used it; returns its fingerprint."""
    try:
        fingerprint = key_fingerprint(load_public_key(public_key))
    except ValueError as exc:
        raise InvalidPublicKey(message=str(exc)) from exc
    if repo.key_exists(session, public_key):
        raise PublicKeyInUse(message="this public key is already registered")
    return fingerprint


def _add_key(
    session: Session, terminal_id: int, public_key: str, fingerprint: str, now: datetime
) -> None:
    row = TerminalKey(
        terminal_id=terminal_id,
        public_key=public_key,
        fingerprint=fingerprint,
        status=KeyStatus.ACTIVE,
        created_at=now,
    )
    repo.add(session, row)


def _mark_enrolled(
    session: Session, terminal: Terminal, request: EnrolmentRequest, now: datetime, interval: float
) -> None:
    # Enrolling is contact: the terminal is online now, and goes stale if it never beats.
    if terminal.presence != Presence.ONLINE:
        repo.add_presence_events(
            session,
            [
                {
                    "terminal_id": terminal.id,
                    "from_presence": terminal.presence,
                    "to_presence": Presence.ONLINE,
                    "at": now,
                }
            ],
        )
    terminal.status = TerminalStatus.ACTIVE
    terminal.enrolled_at = now
    terminal.firmware_version = request.firmware_version
    terminal.hardware_revision = request.hardware_revision or terminal.hardware_revision
    terminal.presence = Presence.ONLINE
    terminal.last_seen_at = now
    terminal.heartbeat_interval = interval
    terminal.stale_after, terminal.offline_after = deadlines(now, interval)


def rotate_key(
    session: Session, terminal_id: int, rotation: KeyRotation, *, now: datetime
) -> KeyRotationReceipt:
    """Replace a terminal's key by the one it just generated (the request was signed by the
    old key); the old key is revoked in the same transaction."""
    terminal = _terminal(session, terminal_id, lock=True)
    fingerprint = _parse_key(session, rotation.public_key)
    revoked = repo.revoke_keys(session, terminal.id, now, "rotated")
    _add_key(session, terminal.id, rotation.public_key, fingerprint, now)
    audit.record(
        session,
        actor=f"terminal:{terminal.id}",
        action="terminal.key_rotated",
        subject=f"terminal:{terminal.id}",
        now=now,
        details={"key": fingerprint, "revoked_keys": revoked, "command_id": rotation.command_id},
    )
    note_change(session, now, terminal_id=terminal.id)
    return KeyRotationReceipt(terminal_id=terminal.id, key_fingerprint=fingerprint)
