"""Server-side rendering for the console: templates, filters, flash notes, error pages.

Money is integer fen shown as CNY with two decimals; times are stored in UTC and shown in the
bank's local zone with UTC in a tooltip; anything that looks like a card number is masked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from hub.console.auth import clear_cookie, now_of, set_cookie
from hub.console.errors import SessionExpired, SignInRequired
from hub.console.models import Role
from hub.errors import HubError

log = structlog.get_logger()
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
FLASH_COOKIE = "sshub_flash"
PAN_LIKE = re.compile(r"\d{13,19}")


# Filters.


def cny(fen: int | None) -> str:
    """Integer fen as yuan with two decimals and thousands separators: 123456 -> 1,234.56."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, rest = divmod(abs(int(fen)), 100)
    return f"{sign}{yuan:,}.{rest:02d}"


def zone_of(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.settings.console_timezone)


def business_zone_of(request: Request) -> ZoneInfo:
    """Where the bank's day starts and ends: the days of money searches and figures, as the
    disbursement export and the insurance reconciliation count them."""
    return ZoneInfo(request.app.state.settings.business_timezone)


def local_time(value: datetime | None, zone: ZoneInfo, seconds: bool = True) -> Markup:
    if value is None:
        return Markup("—")
    utc = value.astimezone(UTC)
    shown = value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S"), shown
    )


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = int((now - value).total_seconds())
    if seconds < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


TONES = {
    "good": _words(
        "online succeeded ok posted completed active acknowledged delivered done captured"
        " settled enabled intact approved disbursed paid applied valid"
    ),
    "warn": _words(
        "stale pending queued sent running paused retrying in_progress created"
        " partially_refunded scheduled draft held accepted processing unused"
    ),
    "bad": _words(
        "offline failed error dead dead_lettered expired aborted disabled refused declined"
        " broken frozen revoked rejected invalid"
    ),
}


def tone_of(status: str) -> str:
    key = status.lower()
    return next((tone for tone, names in TONES.items() if key in names), "muted")


def pill(status: object) -> Markup:
    text = str(getattr(status, "value", status))
    words = text.replace("_", " ")
    return Markup('<span class="pill pill-{}">{}</span>').format(
        tone_of(text), words[:1].upper() + words[1:]
    )


def masked(value: str | None) -> str:
    """Defence in depth: a full card number never reaches a page, whatever a service returns."""
    if not value:
        return "—"
    return PAN_LIKE.sub(lambda m: m[0][:6] + "*" * (len(m[0]) - 10) + m[0][-4:], value)


def card_masked(value: str | None) -> str:
    """Any card number as a page may show it: a PAN 6+4, a social security card number 3+3."""
    if not value:
        return "—"
    if PAN_LIKE.fullmatch(value):
        return masked(value)
    if len(value) >= 8:
        return value[:3] + "*" * (len(value) - 6) + value[-3:]
    return "*" * len(value)


def owner_of(account: Any) -> str:
    """A ledger account's owner as a page may show it: a card account's card number masked."""
    owner = str(getattr(account, "owner_ref", "") or "")
    return card_masked(owner) if getattr(account, "kind", "") == "card" else masked(owner)


templates.env.filters.update(cny=cny, pill=pill, masked=masked, card=card_masked, owner=owner_of)


# Navigation: every entry names the least role that may open it.


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str
    role: Role
    section: str


NAV: list[NavItem] = []
# The menu's order, whatever order the page modules are imported in.
ORDER = [
    "dashboard", "units", "terminals", "configs", "rollouts",
    "payments", "checkouts", "disbursements", "ledger", "audit", "operators",
]  # fmt: skip


def register_nav(*items: NavItem) -> None:
    NAV.extend(item for item in items if item.key not in {n.key for n in NAV})
    NAV.sort(key=lambda n: ORDER.index(n.key) if n.key in ORDER else len(ORDER))


# Flash notes: one line, carried over a redirect in a signed cookie.


def _flash_mac(request: Request, text: str) -> str:
    key = request.app.state.settings.session_secret.get_secret_value().encode()
    return hmac.new(key, b"flash:" + text.encode(), hashlib.sha256).hexdigest()[:32]


def flash(request: Request, response: Response, text: str) -> None:
    set_cookie(request, response, FLASH_COOKIE, quote(text) + "." + _flash_mac(request, text))


def _take_flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE, "")
    quoted, _, mac = raw.rpartition(".")
    text = unquote(quoted)
    if raw and hmac.compare_digest(mac, _flash_mac(request, text)):
        return text
    return None


def redirect(request: Request, url: str, note: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if note:
        flash(request, response, note)
    return response


# Pages.


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    signed = getattr(request.state, "signed", None)
    zone = zone_of(request)
    now = now_of(request)
    note = _take_flash(request)
    base = {
        "signed": signed,
        "csrf": signed.csrf_token if signed else "",
        "nav": [n for n in NAV if signed and signed.may(n.role)],
        "active": (context or {}).get("active", ""),
        "now": now,
        "note": note,
        "when": lambda v, seconds=True: local_time(v, zone, seconds),
        "ago": lambda v: ago(v, now),
        "zone_name": str(zone),
        "Role": Role,
    }
    response = templates.TemplateResponse(request, name, {**base, **(context or {})}, status)
    if request.cookies.get(FLASH_COOKIE):
        clear_cookie(request, response, FLASH_COOKIE)
    return response


def _refusal_page(request: Request, exc: HubError) -> Response:
    if isinstance(exc, SignInRequired | SessionExpired) and request.method == "GET":
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        flag = "&expired=1" if isinstance(exc, SessionExpired) else ""
        return RedirectResponse(f"/console/login?next={target}{flag}", status_code=303)
    return render(
        request,
        "error.html",
        {"status": exc.status, "code": exc.code, "message": exc.message},
        status=exc.status,
    )


def _invalid_request(request: Request) -> HubError:
    if request.method == "GET":
        return HubError("not_found", "no such page", 404)
    return HubError("invalid_request", "the form was not filled in as expected", 422)


SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class ConsoleRoute(APIRoute):
    """Console routes answer refusals with an HTML page (or a sign-in redirect), not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except HubError as exc:
                response = _refusal_page(request, exc)
            except RequestValidationError:
                response = _refusal_page(request, _invalid_request(request))
            except HTTPException as exc:
                response = _refusal_page(
                    request, HubError("http_error", str(exc.detail), exc.status_code)
                )
            except Exception:
                # Logged with its trace (never secrets); the operator sees a calm page.
                log.exception("console_error", path=request.url.path)
                response = _refusal_page(
                    request, HubError("internal_error", "something went wrong on our side", 500)
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            if response.media_type == "text/html" or "text/html" in response.headers.get(
                "content-type", ""
            ):
                response.headers["Cache-Control"] = "no-store"
            return response

        return route_handler


FRIENDLY = {
    "string_pattern_mismatch": "not in the expected format",
    "string_too_short": "required",
    "missing": "required",
    "literal_error": "choose one of the listed values",
    "int_parsing": "a whole number",
    "greater_than_equal": "choose one",
}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A pydantic refusal as one short message per form field (never the input itself)."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "form"
        errors.setdefault(name, FRIENDLY.get(err["type"], str(err["msg"]).lower()))
    return errors


def options(values: list[tuple[str, str]], selected: str) -> Markup:
    """<option> tags for a select, with the chosen one marked."""
    return Markup("").join(
        Markup('<option value="{}"{}>{}</option>').format(
            v, Markup(" selected") if v == selected else "", label
        )
        for v, label in values
    )


templates.env.globals.update(options=options, escape=escape)
