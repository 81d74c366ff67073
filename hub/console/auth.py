"""Who is asking, and may they: session cookies, CSRF tokens and role checks for the console.

Every page depends on `page(role)` and every form post on `action(role)`; both check on the
server, whatever the page showed. A refused action is written to the audit trail.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from hub.console import service
from hub.console.errors import CsrfRefused, RoleRefused, SessionExpired, SignInRequired
from hub.console.models import Role
from hub.console.service import SessionPolicy, Signed
from hub.db import Database

SESSION_COOKIE = "sshub_session"
LOGIN_CSRF_COOKIE = "sshub_login_csrf"
COOKIE_PATH = "/console"


def policy_of(request: Request) -> SessionPolicy:
    """One policy per app: building it hashes a dummy password, so it is kept."""
    state = request.app.state
    policy: SessionPolicy | None = getattr(state, "console_policy", None)
    if policy is None:
        policy = SessionPolicy.from_settings(state.settings)
        state.console_policy = policy
    return policy


def db_of(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


def now_of(request: Request) -> datetime:
    return request.app.state.clock()  # type: ignore[no-any-return]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def cookie_secure(request: Request) -> bool:
    configured: bool | None = request.app.state.settings.console_cookie_secure
    return request.url.scheme == "https" if configured is None else configured


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="lax", secure=cookie_secure(request)
    )


def signed_in(request: Request) -> Signed | None:
    """The operator behind the session cookie, or None. Blocking: runs a short transaction."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    policy, now = policy_of(request), now_of(request)
    return db_of(request).transaction(
        lambda s: service.resolve_session(s, token, policy=policy, now=now)
    )


def _refuse(request: Request, actor: str, reason: str) -> None:
    now = now_of(request)
    db_of(request).transaction(
        lambda s: service.record_refusal(
            s, actor=actor, action=f"{request.method} {request.url.path}", reason=reason, now=now
        )
    )


def _require(request: Request, signed: Signed | None, needed: Role) -> Signed:
    if signed is None:
        if request.cookies.get(SESSION_COOKIE):
            raise SessionExpired(message="your session has ended; please sign in again")
        raise SignInRequired(message="please sign in")
    request.state.signed = signed  # a refusal page is still drawn inside the console
    if not signed.may(needed):
        _refuse(request, signed.actor, f"needs role {needed.value}, has {signed.role.value}")
        raise RoleRefused(message=f"this needs the {needed.value} role")
    return signed


def page(needed: Role) -> Callable[[Request], Signed]:
    """Dependency for a page: a signed-in operator holding at least `needed`."""

    def dependency(request: Request) -> Signed:
        return _require(request, signed_in(request), needed)

    return dependency


@dataclass(frozen=True)
class Action:
    """A checked form post: who sent it and its text fields (the CSRF token removed)."""

    signed: Signed
    form: dict[str, str]

    def field(self, name: str) -> str:
        return self.form.get(name, "").strip()


def csrf_matches(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def action(needed: Role) -> Callable[[Request], Awaitable[Action]]:
    """Dependency for a form post: signed in, a matching CSRF token, and the role."""

    async def dependency(request: Request) -> Action:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        signed = await run_in_threadpool(signed_in, request)
        request.state.signed = signed
        if signed is not None and not csrf_matches(fields.pop("csrf_token", ""), signed.csrf_token):
            await run_in_threadpool(_refuse, request, signed.actor, "csrf token missing or wrong")
            raise CsrfRefused(message="the form was stale or forged; reload the page and retry")
        checked = await run_in_threadpool(_require, request, signed, needed)
        return Action(checked, fields)

    return dependency
