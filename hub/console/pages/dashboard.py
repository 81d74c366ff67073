"""The dashboard: the fleet's presence, today's money and what needs attention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.console.auth import db_of, now_of, page
from hub.console.charts import column_chart
from hub.console.models import Role
from hub.console.pages.units import presence_bar
from hub.console.rendering import ConsoleRoute, NavItem, register_nav, render, zone_of
from hub.console.service import Signed
from hub.disbursements import service as disbursements
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalFilter
from hub.outbox import service as outbox

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


# Today's money, read from what the trail and the outbox already hold: every payment state
# change is audited with its amount, and every disbursement outcome is a callback.
MONEY_ACTIONS = ("payment.authorized", "payment.declined", "payment.captured", "payment.refunded")
SCAN_PAGE = 500


def _audited_today(s: Session, action: str, since: datetime) -> list[Any]:
    found: list[Any] = []
    before = None
    while True:
        batch = audit.recent(s, SCAN_PAGE, before, action)
        fresh = [e for e in batch if e.at >= since]
        found += fresh
        if len(fresh) < len(batch) or len(batch) < SCAN_PAGE:
            return found
        before = batch[-1].seq


def _amount(entry: Any) -> int:
    value = entry.details.get("amount") if isinstance(entry.details, dict) else None
    return value if isinstance(value, int) else 0


def _money_today(s: Session, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    since = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    by_action = {a: _audited_today(s, a, since) for a in MONEY_ACTIONS}
    hourly = [0] * 24
    for entry in by_action["payment.captured"]:
        hourly[entry.at.astimezone(zone).hour] += 1
    outcomes = [
        m
        for m in outbox.messages(s, topic=disbursements.CALLBACK_TOPIC, limit=SCAN_PAGE * 4)
        if m.created_at >= since
    ]
    credited = [_carried(m) for m in outcomes if _kind(m) == "credited"]
    return {
        "authorized": len(by_action["payment.authorized"]),
        "declined": len(by_action["payment.declined"]),
        "captured": sum(_amount(e) for e in by_action["payment.captured"]),
        "captured_count": len(by_action["payment.captured"]),
        "refunded": sum(_amount(e) for e in by_action["payment.refunded"]),
        "refund_count": len(by_action["payment.refunded"]),
        "credited": sum(d.get("amount", 0) for d in credited),
        "credited_count": len(credited),
        "rejected_count": sum(1 for m in outcomes if _kind(m) == "rejected"),
        "per_hour": column_chart(
            [(f"{h:02d}", n) for h, n in enumerate(hourly)], width=1080, unit=" captured"
        )
        if any(hourly)
        else None,
    }


def _kind(message: Any) -> str:
    return str(message.payload.get("event", {}).get("type", "")).removeprefix("disbursement.")


def _carried(message: Any) -> dict[str, Any]:
    carried = message.payload.get("event", {}).get("disbursement", {})
    return carried if isinstance(carried, dict) else {}


@router.get("/")
def dashboard(request: Request, _: Annotated[Signed, Depends(page(Role.VIEWER))]) -> Response:
    with db_of(request).session() as s:
        context = {
            "active": "dashboard",
            **_fleet(s),
            "today": _money_today(s, zone_of(request), now_of(request)),
            "alerts": _alerts(s),
            "activity": list(audit.recent(s, 8)),
            "presence_bar": presence_bar,
        }
    return render(request, "dashboard.html", context)
