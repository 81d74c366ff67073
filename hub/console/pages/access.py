"""Signing in and out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.concurrency import run_in_threadpool

from hub.console import service
from hub.console.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Action,
    action,
    clear_cookie,
    client_of,
    csrf_matches,
    db_of,
    now_of,
    policy_of,
    set_cookie,
    signed_in,
)
from hub.console.errors import CsrfRefused
from hub.console.models import Role
from hub.console.rendering import ConsoleRoute, redirect, render

router = APIRouter(route_class=ConsoleRoute)

REFUSALS = {
    "throttled": ("Too many failed attempts. Sign-in is locked for a while; try again later.", 429),
    "disabled": ("The user name or password is not right.", 401),
    "bad_credentials": ("The user name or password is not right.", 401),
}


def _safe_next(target: str) -> str:
    """Only a path inside the console: never another site, never a scheme-relative URL."""
    if target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


def _login_form(
    request: Request, next_url: str, *, error: str = "", username: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    notice = (
        "Your session has ended. Please sign in again."
        if request.query_params.get("expired")
        else ""
    )
    response = render(
        request,
        "login.html",
        {"token": token, "next": next_url, "error": error, "username": username, "notice": notice},
        status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token)
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/console") -> Response:
    if signed_in(request) is not None:
        return redirect(request, _safe_next(next))
    return _login_form(request, _safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    if not csrf_matches(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        raise CsrfRefused(message="the sign-in form was stale; reload the page and retry")
    policy, now, client = policy_of(request), now_of(request), client_of(request)
    result = await run_in_threadpool(
        db_of(request).transaction,
        lambda s: service.sign_in(s, username, password, client=client, policy=policy, now=now),
    )
    if result.token is None:
        message, status = REFUSALS[result.refusal or "bad_credentials"]
        return _login_form(
            request, _safe_next(next), error=message, username=username, status=status
        )
    response = redirect(request, _safe_next(next))
    set_cookie(request, response, SESSION_COOKIE, result.token)
    clear_cookie(request, response, LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, act: Annotated[Action, Depends(action(Role.VIEWER))]) -> Response:
    now = now_of(request)
    db_of(request).transaction(lambda s: service.sign_out(s, act.signed, now))
    response = redirect(request, "/console/login")
    clear_cookie(request, response, SESSION_COOKIE)
    return response
