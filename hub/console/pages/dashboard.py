"""The dashboard: the fleet's presence, today's money and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.checkout import service as checkout
from hub.console.auth import db_of, now_of, page
from hub.console.charts import column_chart
from hub.console.models import Role
from hub.console.pages.payments import CHANNEL_NAMES
from hub.console.pages.units import presence_bar
from hub.console.rendering import ConsoleRoute, NavItem, business_zone_of, register_nav, render
from hub.console.service import Signed
from hub.db import day_bounds
from hub.disbursements import service as disbursements
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalFilter
from hub.outbox import service as outbox
from hub.payments import service as payments
from hub.payments.schemas import SearchChannel

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("dashboard", "Dashboard", "/console/", Role.VIEWER, "Overview"))
ALERT_LIMIT = 8


@dataclass(frozen=True)
class Alert:
    tone: str  # bad, warn
    title: str
    detail: str
    href: str


def _fleet(s: Session) -> dict[str, Any]:
    units = gateway.list_units(s)
    totals = {
        name: sum(getattr(u, name) for u in units)
        for name in ("terminals", "online", "stale", "offline", "not_enrolled")
    }
    # Units with terminals missing come first: that is where someone has to call.
    units.sort(key=lambda u: (-(u.offline + u.stale), u.name))
    return {"units": units, "totals": totals}


def _alerts(s: Session) -> list[Alert]:
    alerts: list[Alert] = []
    offline = gateway.search_terminals(
        s, TerminalFilter(presence="offline", status="active", limit=ALERT_LIMIT)
    )
    alerts += [
        Alert(
            "bad",
            f"Terminal {t.serial} is offline",
            "No heartbeat for over three intervals",
            f"/console/terminals/{t.id}",
        )
        for t in offline.items
    ]
    if offline.total > len(offline.items):
        alerts.append(
            Alert(
                "bad",
                f"{offline.total - len(offline.items)} more offline",
                "See every offline terminal",
                "/console/terminals?presence=offline",
            )
        )
    alerts += [
        Alert(
            "warn",
            f"Rollout “{r.name}” is paused",
            (r.pause_reason or "paused").replace("_", " "),
            f"/console/rollouts/{r.id}",
        )
        for r in gateway.list_rollouts(s, "paused")
    ]
    dead = outbox.messages(s, state="dead", limit=ALERT_LIMIT)
    alerts += [
        Alert(
            "bad",
            f"Callback {m.event_id} is dead-lettered",
            f"{m.attempts} attempts; {m.last_error or 'refused'}",
            "/console/disbursements?dead=1",
        )
        for m in dead
    ]
    return alerts


def _reconciliation_alerts(s: Session) -> list[Alert]:
    """The latest reconciliation with the insurance platform, when it did not balance."""
    run = checkout.latest_reconciliation(s)
    if run is None or run.discrepancies == 0:
        return []
    # Report.summary(): three lines of counts, then one line per difference.
    first = next((line.strip() for line in run.summary.splitlines()[3:4]), "")
    return [
        Alert(
            "bad",
            f"Reconciliation of {run.day.isoformat()} found {run.discrepancies} difference"
            + ("s" if run.discrepancies != 1 else ""),
            f"{run.differing_units} unit(s) differ, {run.unreachable_units} unreachable"
            + (f"; first: {first}" if first else ""),
            f"/console/checkouts?day={run.day.isoformat()}#reconciliation",
        )
    ]


def _money_today(s: Session, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """Today's money from the domains themselves: payments per channel, checkouts settled with
    the platform, loans credited; the bank's local day."""
    day = now.astimezone(zone).date()
    paid = payments.day_summary(s, day, zone)
    start, _ = day_bounds(day, zone)
    hours = [
        (f"{(start + timedelta(hours=h)).astimezone(zone).hour:02d}", n)
        for h, n in enumerate(paid.captures_per_hour)
    ]
    return {
        "day": day,
        "channels": paid.channels,
        "taps": paid.of(SearchChannel.CARD_TAP),
        "codes": paid.of(SearchChannel.PAYMENT_CODE),
        "bills": paid.of(SearchChannel.BILL_CODE),
        "qr": paid.of(SearchChannel.PAYMENT_CODE, SearchChannel.BILL_CODE),
        "all": paid.of(*SearchChannel),
        "visits": checkout.day_summary(s, day, zone),
        "loans": disbursements.day_summary(s, day),
        "per_hour": column_chart(hours, unit=" captured") if any(paid.captures_per_hour) else None,
    }


@router.get("/")
def dashboard(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    with db_of(request).session() as s:
        context = {
            "active": "dashboard",
            **_fleet(s),
            "today": _money_today(s, business_zone_of(request), now_of(request)),
            "channel_names": CHANNEL_NAMES,
            "alerts": _alerts(s) + _reconciliation_alerts(s),
            "activity": list(audit.recent(s, 8)),
            "presence_bar": presence_bar,
        }
    return render(request, "dashboard.html", context)
