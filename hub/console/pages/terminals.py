"""Terminals: search, a terminal's story with its presence chart, enrolment, commands."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.charts import presence_spans, presence_timeline
from hub.console.models import Role
from hub.console.rendering import (
    ConsoleRoute,
    NavItem,
    field_errors,
    redirect,
    register_nav,
    render,
    zone_of,
)
from hub.console.service import Signed
from hub.db import PathId
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalFilter, TerminalIn

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("terminals", "Terminals", "/console/terminals", Role.VIEWER, "Fleet"))
PAGE_SIZE = 50
# Presence chart windows; a terminal enrolled within the hour is shown over the last hour.
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
COMMANDS = [
    ("reboot", "Reboot"),
    ("apply_config", "Apply configuration"),
    ("rotate_key", "Rotate key"),
    ("collect_diagnostics", "Collect diagnostics"),
    ("disable", "Disable on the device"),
]
KINDS = [
    ("", "Any kind"),
    ("card_reader", "Card reader"),
    ("qr_scanner", "QR scanner"),
    ("combo", "Combo terminal"),
]
PRESENCES = [("", "Any presence"), ("online", "Online"), ("stale", "Stale"), ("offline", "Offline")]
STATUSES = [
    ("", "Any status"),
    ("registered", "Registered, not enrolled"),
    ("active", "Active"),
    ("disabled", "Disabled"),
]


def _filter(params: dict[str, str]) -> tuple[TerminalFilter, dict[str, str]]:
    """The search form's terms; a value that is not one of the choices is dropped."""
    raw = {k: v.strip() for k, v in params.items() if v and v.strip()}
    terms: dict[str, Any] = {"limit": PAGE_SIZE}
    for name in ("kind", "presence", "status", "text", "model"):
        if name in raw:
            terms[name] = raw[name]
    for name in ("unit_id", "offset"):
        if raw.get(name, "").isdigit():
            terms[name] = int(raw[name])
    try:
        return TerminalFilter(**terms), raw
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors()}
        kept = {k: v for k, v in terms.items() if k not in bad}
        return TerminalFilter(**kept), {k: v for k, v in raw.items() if k not in bad}


def _terminals_page(
    request: Request,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    terms, shown = _filter(dict(request.query_params))
    with db_of(request).session() as s:
        found = gateway.search_terminals(s, terms)
        units = {u.id: u for u in gateway.list_units(s)}
    return render(
        request,
        "terminals.html",
        {
            "active": "terminals",
            "found": found,
            "units": units,
            "q": shown,
            "base_query": urlencode({k: v for k, v in shown.items() if k != "offset"}),
            "offset": terms.offset,
            "page_size": PAGE_SIZE,
            "kinds": KINDS,
            "presences": PRESENCES,
            "statuses": STATUSES,
            "unit_choices": [("", "Any unit")] + [(str(u.id), u.name) for u in units.values()],
            "form": form or {},
            "errors": errors or {},
        },
        status,
    )


@router.get("/terminals")
def terminals(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    return _terminals_page(request)


@router.post("/terminals")
def register_terminal(
    request: Request, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    """Pre-register a shipped serial, ready for an enrolment code."""
    now, settings = now_of(request), request.app.state.settings
    interval = settings.gateway_heartbeat_interval_seconds
    try:
        spec = TerminalIn(
            unit_id=int(act.field("unit_id")) if act.field("unit_id").isdigit() else 0,
            serial=act.field("serial"),
            model=act.field("model").upper(),
        )
        made = db_of(request).transaction(
            lambda s: gateway.preregister_terminal(
                s, spec, actor=act.signed.actor, now=now, interval=interval
            )
        )
    except ValidationError as exc:
        return _terminals_page(request, act.form, field_errors(exc), 422)
    except HubError as exc:
        where = "model" if "model" in exc.code or "kind" in exc.code else "serial"
        where = "unit_id" if "unit" in exc.code else where
        return _terminals_page(request, act.form, {where: exc.message}, exc.status)
    return redirect(
        request, f"/console/terminals/{made.id}", f"Serial {made.serial} registered; enrol it next."
    )


def _window(request: Request, enrolled_at: datetime | None, now: datetime) -> str:
    chosen = request.query_params.get("window", "")
    if chosen in WINDOWS:
        return chosen
    recent = enrolled_at is not None and now - enrolled_at < WINDOWS["1h"]
    return "1h" if recent else "24h"


def _terminal_context(request: Request, terminal_id: int) -> dict[str, Any]:
    now, zone = now_of(request), zone_of(request)
    with db_of(request).session() as s:
        detail = gateway.get_terminal_detail(s, terminal_id, recent=500)
        configs = gateway.list_configs(s, detail.terminal.model)
    window = _window(request, detail.terminal.enrolled_at, now)
    start = now - WINDOWS[window]
    events = [(e.at, e.to_presence) for e in detail.presence_events]
    before = [e for e in detail.presence_events if e.at <= start]
    older = [e for e in detail.presence_events if e.at > start]
    first = (
        before[0].to_presence
        if before
        else (older[-1].from_presence if older else detail.terminal.presence)
    )
    spans = presence_spans(events, start, now, first, since=detail.terminal.enrolled_at)
    return {
        "active": "terminals",
        "d": detail,
        "t": detail.terminal,
        "timeline": presence_timeline(spans, start, now, zone),
        "window": window,
        "configs": configs,
        "config_choices": [(str(c.id), f"v{c.version} · {c.hash[:10]}") for c in configs],
        "commands": COMMANDS,
        "desired": next((c for c in configs if c.id == detail.terminal.desired_config_id), None),
        "reported": next(
            (c for c in configs if c.hash == detail.terminal.reported_config_hash), None
        ),
    }


@router.get("/terminals/{terminal_id}")
def terminal_page(
    request: Request, terminal_id: PathId, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    return render(request, "terminal.html", _terminal_context(request, terminal_id))


@router.post("/terminals/{terminal_id}/enrollment-code")
def enrollment_code(
    request: Request, terminal_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    """A one-time code, shown once as text and QR for the technician at the unit."""
    now, settings = now_of(request), request.app.state.settings
    ttl = timedelta(seconds=settings.gateway_enrollment_code_ttl_seconds)
    code = db_of(request).transaction(
        lambda s: gateway.create_enrollment_code(
            s,
            terminal_id,
            actor=act.signed.actor,
            now=now,
            hub_url=settings.gateway_public_url,
            ttl=ttl,
        )
    )
    context = _terminal_context(request, terminal_id)
    return render(request, "enrol.html", {**context, "code": code})


@router.post("/terminals/{terminal_id}/disable")
def disable_terminal(
    request: Request, terminal_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    db_of(request).transaction(
        lambda s: gateway.disable_terminal(s, terminal_id, actor=act.signed.actor, now=now)
    )
    return redirect(
        request, f"/console/terminals/{terminal_id}", "Terminal disabled: the hub refuses it."
    )


@router.post("/terminals/{terminal_id}/enable")
def enable_terminal(
    request: Request, terminal_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    db_of(request).transaction(
        lambda s: gateway.enable_terminal(s, terminal_id, actor=act.signed.actor, now=now)
    )
    return redirect(request, f"/console/terminals/{terminal_id}", "Terminal enabled.")


@router.post("/terminals/{terminal_id}/commands")
def queue_command(
    request: Request, terminal_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    now = now_of(request)
    kind = act.field("kind")
    if kind not in dict(COMMANDS):
        raise HubError("invalid_request", "choose one of the listed commands", 422)
    config = act.field("config_id")
    # Past 18 digits it is no config id (it may not fit 64 bits): refused as missing.
    whole = config.isdigit() and len(config) < 19
    config_id = int(config) if kind == "apply_config" and whole else None
    settings = request.app.state.settings
    ttl = timedelta(seconds=settings.gateway_command_ttl_seconds)
    command = db_of(request).transaction(
        lambda s: gateway.queue_command(
            s,
            terminal_id,
            kind,  # type: ignore[arg-type]
            actor=act.signed.actor,
            now=now,
            config_id=config_id,
            ttl=ttl,
            max_attempts=settings.gateway_command_max_attempts,
        )
    )
    label = dict(COMMANDS)[command.kind]
    return redirect(
        request,
        f"/console/terminals/{terminal_id}",
        f"{label} queued; it goes out with the next heartbeat.",
    )
