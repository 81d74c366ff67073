"""Operators, sign-in with throttling, and console sessions.

Passwords are kept only as argon2id hashes. A session cookie holds a random token; the table
keeps its HMAC under the session secret, so a copy of the table opens no session. Every change
to an operator and every sign-in, failed or not, is written to the audit trail in the same
transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.config import Settings
from hub.console import repository as repo
from hub.console.errors import FormInvalid, LastAdmin, OperatorExists, OperatorNotFound
from hub.console.models import LoginThrottle, Operator, OperatorSession, Role

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
# How often a session's last-seen time is written: a page view need not always be a write.
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class SessionPolicy:
    secret: bytes
    idle_timeout: timedelta
    max_age: timedelta
    max_failures: int
    lock: timedelta
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    # Verified against when the user name is unknown, so both paths cost the same time.
    dummy_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dummy_hash", self.hasher.hash(secrets.token_urlsafe(16)))

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            secret=settings.session_secret.get_secret_value().encode(),
            idle_timeout=timedelta(seconds=settings.console_idle_timeout_seconds),
            max_age=timedelta(seconds=settings.console_session_max_seconds),
            max_failures=settings.console_login_max_failures,
            lock=timedelta(seconds=settings.console_login_lock_seconds),
            hasher=PasswordHasher(
                time_cost=settings.console_argon2_time_cost,
                memory_cost=settings.console_argon2_memory_kib,
            ),
        )

    def token_hash(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    """The operator behind one request, as the session found them."""

    operator_id: int
    username: str
    display_name: str
    role: Role
    csrf_token: str
    token_hash: str

    @property
    def actor(self) -> str:
        return f"operator:{self.username}"

    def may(self, needed: Role) -> bool:
        return self.role.allows(needed)


@dataclass(frozen=True)
class SignInResult:
    """`token` is set on success; otherwise `refusal` says why (never shown verbatim)."""

    token: str | None = None
    csrf_token: str | None = None
    refusal: str | None = None


# Operators.


def _check_new_operator(username: str, display_name: str, password: str) -> None:
    fields = {}
    if not USERNAME.match(username):
        fields["username"] = "2–64 characters: lower-case letters, digits, dot, dash, underscore"
    if not display_name.strip() or len(display_name) > 128:
        fields["display_name"] = "a name of 1–128 characters"
    if len(password) < MIN_PASSWORD:
        fields["password"] = f"at least {MIN_PASSWORD} characters"
    if fields:
        raise FormInvalid(fields)


def create_operator(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    role: Role,
    policy: SessionPolicy,
    actor: str,
    now: datetime,
) -> Operator:
    """A new operator; the password is kept only as an argon2id hash."""
    username = username.strip().lower()
    _check_new_operator(username, display_name, password)
    if repo.operator_by_username(session, username) is not None:
        raise OperatorExists(message=f"operator {username} exists")
    operator = Operator(
        username=username,
        display_name=display_name.strip(),
        password_hash=policy.hasher.hash(password),
        role=role.value,
        created_at=now,
    )
    repo.add(session, operator)
    audit.record(
        session,
        actor=actor,
        action="operator.created",
        subject=f"operator:{username}",
        now=now,
        details={"role": role.value},
    )
    return operator


def list_operators(session: Session) -> Sequence[Operator]:
    return repo.all_operators(session)


def get_operator(session: Session, username: str) -> Operator:
    operator = repo.operator_by_username(session, username.strip().lower())
    if operator is None:
        raise OperatorNotFound(message=f"no operator {username}")
    return operator


def _active_admins(session: Session) -> int:
    return sum(1 for o in repo.all_operators(session) if o.role == Role.ADMIN and not o.disabled)


def set_role(session: Session, username: str, role: Role, *, actor: str, now: datetime) -> Operator:
    """Change a role; the last active admin cannot be demoted."""
    operator = get_operator(session, username)
    previous = operator.role
    if previous == role:
        return operator
    if previous == Role.ADMIN and not operator.disabled and _active_admins(session) <= 1:
        raise LastAdmin(message="the last active admin cannot be demoted")
    operator.role = role.value
    audit.record(
        session,
        actor=actor,
        action="operator.role_changed",
        subject=f"operator:{operator.username}",
        now=now,
        details={"from": previous, "to": role.value},
    )
    session.flush()
    return operator


def set_disabled(
    session: Session, username: str, disabled: bool, *, actor: str, now: datetime
) -> Operator:
    """Disable (ending every session at once) or enable an operator."""
    operator = get_operator(session, username)
    if operator.disabled == disabled:
        return operator
    last_admin = operator.role == Role.ADMIN and _active_admins(session) <= 1
    if disabled and last_admin:
        raise LastAdmin(message="the last active admin cannot be disabled")
    operator.disabled = disabled
    if disabled:
        repo.drop_sessions_of(session, operator.id)
    audit.record(
        session,
        actor=actor,
        action="operator.disabled" if disabled else "operator.enabled",
        subject=f"operator:{operator.username}",
        now=now,
    )
    session.flush()
    return operator


# Sign-in and its throttle.


def _throttle_keys(username: str, client: str) -> list[tuple[str, int]]:
    """Each key with its own failure factor: an address gets 4x a user name's allowance."""
    return [(f"user:{username[:64]}", 1), (f"ip:{client[:64]}", 4)]


def _locked(session: Session, keys: list[tuple[str, int]], now: datetime) -> bool:
    for key, _ in keys:
        row = repo.throttle(session, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return True
    return False


def _count_failure(
    session: Session, keys: list[tuple[str, int]], policy: SessionPolicy, now: datetime
) -> None:
    for key, factor in keys:
        row = repo.throttle(session, key)
        stale = row is not None and (
            (row.locked_until is not None and row.locked_until <= now)
            or row.first_failure_at + policy.lock <= now
        )
        if row is None or stale:
            repo.drop_throttle(session, key)
            row = LoginThrottle(key=key, failures=0, first_failure_at=now)
            repo.add(session, row)
        row.failures += 1
        if row.failures >= policy.max_failures * factor:
            row.locked_until = now + policy.lock
    session.flush()


def _password_matches(operator: Operator | None, password: str, policy: SessionPolicy) -> bool:
    stored = operator.password_hash if operator else policy.dummy_hash
    try:
        return policy.hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    client: str,
    policy: SessionPolicy,
    now: datetime,
) -> SignInResult:
    """Check a password under the throttle; on success open a session.

    Failures are returned, not raised, so the caller's transaction keeps the throttle count and
    the audit entry. The reason is for the audit trail; the page says only "not signed in".
    """
    username = username.strip().lower()[:64]
    keys = _throttle_keys(username, client)
    subject = f"operator:{username or '-'}"
    if _locked(session, keys, now):
        return _refuse(session, subject, "throttled", client, now)
    operator = repo.operator_by_username(session, username) if username else None
    if not _password_matches(operator, password, policy):
        _count_failure(session, keys, policy, now)
        return _refuse(session, subject, "bad_credentials", client, now)
    assert operator is not None
    if operator.disabled:
        return _refuse(session, subject, "disabled", client, now)
    if policy.hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = policy.hasher.hash(password)
    repo.drop_throttle(session, keys[0][0])
    operator.last_login_at = now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    repo.add(
        session,
        OperatorSession(
            token_hash=policy.token_hash(token),
            operator_id=operator.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        ),
    )
    audit.record(
        session,
        actor=f"operator:{operator.username}",
        action="operator.login",
        subject=subject,
        now=now,
        details={"client": client},
    )
    return SignInResult(token=token, csrf_token=csrf)


def _refuse(
    session: Session, subject: str, reason: str, client: str, now: datetime
) -> SignInResult:
    audit.record(
        session,
        actor="anonymous",
        action="operator.login_failed",
        subject=subject,
        now=now,
        details={"reason": reason, "client": client},
    )
    return SignInResult(refusal=reason)


# Sessions.


def resolve_session(
    session: Session, token: str, *, policy: SessionPolicy, now: datetime
) -> Signed | None:
    """The operator behind a session token, or None when it is unknown, expired or disabled.

    An expired session is deleted here, so it can never come back.
    """
    token_hash = policy.token_hash(token)
    row = repo.session_by_hash(session, token_hash)
    if row is None:
        return None
    expired = (
        row.last_seen_at + policy.idle_timeout <= now or row.created_at + policy.max_age <= now
    )
    operator = repo.operator_by_id(session, row.operator_id)
    if expired or operator is None or operator.disabled:
        repo.drop_session(session, token_hash)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return Signed(
        operator_id=operator.id,
        username=operator.username,
        display_name=operator.display_name,
        role=Role(operator.role),
        csrf_token=row.csrf_token,
        token_hash=token_hash,
    )


def sign_out(session: Session, signed: Signed, now: datetime) -> None:
    repo.drop_session(session, signed.token_hash)
    audit.record(
        session, actor=signed.actor, action="operator.logout", subject=signed.actor, now=now
    )


def record_refusal(
    session: Session, *, actor: str, action: str, reason: str, now: datetime
) -> None:
    """An action the console refused (role, CSRF): written so someone can look into it."""
    audit.record(
        session,
        actor=actor,
        action="console.refused",
        subject=f"console:{action}"[:128],
        now=now,
        details={"reason": reason},
    )


def sweep_sessions(session: Session, idle_seconds: int, now: datetime) -> int:
    """Delete sessions idle past the timeout (they are refused anyway); returns how many."""
    return repo.drop_sessions_seen_before(session, now - timedelta(seconds=idle_seconds))
