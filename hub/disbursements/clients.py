"""Loan clients: keys stored only as hashes, signed requests, rotation, where callbacks go."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.disbursements import repository as repo
from hub.disbursements.errors import ClientExists, ClientNotFound, ClientUnauthorized
from hub.disbursements.models import LoanClient, LoanClientKey
from hub.disbursements.schemas import IssuedKey
from hub.disbursements.service import Rules
from integrations.loans.client import ClientKey, signature_valid, timestamp_fresh


def client_secret(key_root: bytes, key_id: str) -> str:
    """The secret of a key, derived from the root key and the key id.

    The hub must know a client's secret to check an HMAC, yet stores only a hash of it: the
    secret is re-derived from a root key in settings whenever it is needed. A copy of the
    database alone can neither sign nor verify.
    """
    label = f"sshub/loan-client-key/v1:{key_id}".encode()
    return hmac.new(key_root, label, hashlib.sha256).hexdigest()


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _issue_key(session: Session, client: LoanClient, rules: Rules, now: datetime) -> IssuedKey:
    key_id = f"lk_{secrets.token_hex(12)}"
    secret = client_secret(rules.key_root, key_id)
    repo.add(
        session,
        LoanClientKey(
            key_id=key_id, client_id=client.id, secret_hash=_secret_hash(secret), created_at=now
        ),
    )
    return IssuedKey(client=client.name, key_id=key_id, secret=secret)


def create_client(
    session: Session, name: str, callback_url: str, rules: Rules, now: datetime, *, actor: str
) -> IssuedKey:
    """Register a loan system and issue its first key (the secret is shown once)."""
    if repo.client_by_name(session, name) is not None:
        raise ClientExists(message=f"loan client {name!r} exists")
    client = repo.add(session, LoanClient(name=name, callback_url=callback_url, created_at=now))
    issued = _issue_key(session, client, rules, now)
    audit.record(
        session,
        actor=actor,
        action="loan_client.created",
        subject=f"loan_client:{name}",
        now=now,
        details={"key_id": issued.key_id, "callback_url": callback_url},
    )
    return issued


def rotate_key(
    session: Session, name: str, rules: Rules, now: datetime, *, actor: str
) -> IssuedKey:
    """Issue a new key; the older ones keep working for the grace period, then stop."""
    client = get_client(session, name)
    repo.expire_keys(session, client.id, now + timedelta(seconds=rules.key_grace_seconds))
    issued = _issue_key(session, client, rules, now)
    audit.record(
        session,
        actor=actor,
        action="loan_client.key_rotated",
        subject=f"loan_client:{name}",
        now=now,
        details={"key_id": issued.key_id, "grace_seconds": rules.key_grace_seconds},
    )
    return issued


def get_client(session: Session, name: str) -> LoanClient:
    client = repo.client_by_name(session, name)
    if client is None:
        raise ClientNotFound(message=f"no loan client {name!r}")
    return client


def set_client_active(
    session: Session, name: str, active: bool, now: datetime, *, actor: str
) -> LoanClient:
    """Stop (or allow again) every request of a loan client, whatever key it signs with."""
    client = get_client(session, name)
    client.active = active
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="loan_client.enabled" if active else "loan_client.disabled",
        subject=f"loan_client:{name}",
        now=now,
    )
    return client


@dataclass(frozen=True)
class SignedRequest:
    method: str
    target: str  # path and query, as on the wire
    body: bytes
    key_id: str
    timestamp: str
    signature: str


def authenticate(
    session: Session, request: SignedRequest, rules: Rules, now: datetime
) -> LoanClient:
    """The loan client that signed this request, or a 401 with a stable code."""
    if not (request.key_id and request.timestamp and request.signature):
        raise ClientUnauthorized("signature_missing", "key id, timestamp and signature required")
    try:
        timestamp = int(request.timestamp)
    except ValueError:
        raise ClientUnauthorized("timestamp_stale", "timestamp must be Unix seconds") from None
    if not timestamp_fresh(timestamp, now.timestamp(), rules.max_skew_seconds):
        raise ClientUnauthorized("timestamp_stale", "timestamp too far from the hub's clock")
    found = repo.key_and_client(session, request.key_id)
    secret = client_secret(rules.key_root, request.key_id)
    if found is None or not hmac.compare_digest(found[0].secret_hash, _secret_hash(secret)):
        raise ClientUnauthorized("key_unknown", "unknown key id")
    key, client = found
    if key.expires_at is not None and key.expires_at <= now:
        raise ClientUnauthorized("key_expired", "this key was replaced; use the newer key")
    if not client.active:
        raise ClientUnauthorized("client_disabled", "this loan client is disabled", 403)
    if not signature_valid(
        secret, request.method, request.target, timestamp, request.body, request.signature
    ):
        raise ClientUnauthorized("signature_invalid", "signature does not match the request")
    return client


def callback_target(session: Session, client_id: int, rules: Rules) -> tuple[str, ClientKey]:
    """Where a client's callbacks go and the key that signs them (its newest)."""
    client = repo.client_by_id(session, client_id)
    key = repo.newest_key(session, client_id)
    if client is None or key is None:
        raise ClientNotFound(message=f"loan client {client_id} has no current key")
    return client.callback_url, ClientKey(key.key_id, client_secret(rules.key_root, key.key_id))
