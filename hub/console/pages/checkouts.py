"""Hospital checkouts: the bill, the insurance split, the payment and the ledger legs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.checkout import service as checkout
from hub.console.auth import db_of, page
from hub.console.models import Role
from hub.console.pages.ledger import flag_names
from hub.console.rendering import ConsoleRoute, NavItem, business_zone_of, register_nav, render
from hub.console.service import Signed
from hub.db import PathId
from hub.ledger import service as ledger
from hub.payments.service import Caller

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("checkouts", "Checkouts", "/console/checkouts", Role.VIEWER, "Money"))
CONSOLE = Caller(actor="console", unit_id=None)  # reads across every unit
SHOWN = 100
# The checkout's states, in the order a visit moves through them (hub/checkout's state machine).
STATES = [("", "Any state")] + [
    (state, state.replace("_", " ").capitalize())
    for state in (
        "bill_received", "identifying", "identified", "pre_settled", "self_pay_collected",
        "completed", "revoking", "revoked", "failed",
    )
]  # fmt: skip


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


@router.get("/checkouts")
def checkouts(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    bill: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=24)] = "",
    day: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """The latest checkouts, searched by bill number (any part), state and the bank's local day
    opened; with the latest reconciliation with the insurance platform."""
    state = state if state in dict(STATES) else ""
    wanted_day = _day(day)
    errors = {"day": "a date like 2026-11-29"} if day and wanted_day is None else {}
    with db_of(request).session() as s:
        found = (
            []
            if errors
            else checkout.recent_checkouts(
                s,
                state=state or None,
                bill_no=bill.strip() or None,
                day=wanted_day,
                zone=business_zone_of(request),
                limit=SHOWN,
            )
        )
        rows = [(c, checkout.checkout_out(c)) for c in found]
        reconciliation = checkout.latest_reconciliation(s)
    return render(
        request,
        "checkouts.html",
        {
            "active": "checkouts",
            "rows": rows,
            "states": STATES,
            "errors": errors,
            "q": {"bill": bill, "state": state, "day": day},
            "shown": SHOWN,
            "reconciliation": reconciliation,
        },
        422 if errors else 200,
    )


@router.get("/checkouts/{checkout_id}")
def checkout_page(
    request: Request, checkout_id: PathId, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    with db_of(request).session() as s:
        found = checkout.get_checkout(s, checkout_id, CONSOLE)
        legs = list(ledger.transfers_for(s, f"checkout:{found.id}"))
        context: dict[str, Any] = {
            "active": "checkouts",
            "c": found,
            "out": checkout.checkout_out(found),
            "lines": found.bill.get("lines", []) if isinstance(found.bill, dict) else [],
            "legs": legs,
            "flag_names": flag_names,
        }
    return render(request, "checkout.html", context)
