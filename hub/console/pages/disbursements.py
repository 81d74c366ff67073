"""Loan disbursements as their callbacks tell them: outcome, delivery attempts, re-send.

The disbursement service offers no cross-client listing yet, so this page reads the callbacks
the hub owes the loan system (the outbox topic of disbursements): each carries the
disbursement as the loan system was told it. Undo by an admin waits for an operator-facing
undo in the disbursement service (see the console's report to the lead).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.models import Role
from hub.console.pages.ledger import flag_names
from hub.console.rendering import ConsoleRoute, NavItem, redirect, register_nav, render
from hub.console.service import Signed
from hub.disbursements import service as disbursements
from hub.errors import HubError
from hub.ledger import service as ledger
from hub.outbox import service as outbox

router = APIRouter(route_class=ConsoleRoute)
register_nav(
    NavItem("disbursements", "Disbursements", "/console/disbursements", Role.VIEWER, "Money")
)
STATES = [
    ("", "Every state"),
    ("dead", "Dead-lettered"),
    ("pending", "Pending"),
    ("delivered", "Delivered"),
]
PAGE_SIZE = 100


def _row(message: Any) -> dict[str, Any]:
    """A callback with the disbursement it carries, as the loan system sees it."""
    event = (message.payload or {}).get("event", {})
    return {
        "m": message,
        "type": str(event.get("type", "")).removeprefix("disbursement."),
        "d": event.get("disbursement", {}),
    }


def _event_id(kind: str, external_id: str) -> str:
    # The callback's event id is part of the wire contract with the loan system.
    return f"disb.{kind}.{external_id}"


@router.get("/disbursements")
def disbursements_home(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    state: Annotated[str, Query(max_length=16)] = "",
    dead: bool = False,
    q: Annotated[str, Query(max_length=48)] = "",
) -> Response:
    state = "dead" if dead else (state if state in dict(STATES) else "")
    with db_of(request).session() as s:
        if q.strip():
            found = [
                outbox.find_message(s, _event_id(k, q.strip())) for k in disbursements.EVENT_KINDS
            ]
            messages = [m for m in found if m is not None]
        else:
            messages = list(
                outbox.messages(
                    s, state=state or None, topic=disbursements.CALLBACK_TOPIC, limit=PAGE_SIZE
                )
            )
    return render(
        request,
        "disbursements.html",
        {
            "active": "disbursements",
            "rows": [_row(m) for m in messages],
            "states": STATES,
            "state": state,
            "q": q.strip(),
        },
    )


@router.get("/disbursements/{external_id}")
def disbursement_page(
    request: Request, external_id: str, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    with db_of(request).session() as s:
        found = [
            outbox.find_message(s, _event_id(k, external_id)) for k in disbursements.EVENT_KINDS
        ]
        rows = [_row(m) for m in found if m is not None]
        if not rows:
            raise HubError("not_found", f"no disbursement {external_id} has been answered", 404)
        legs = list(ledger.transfers_for(s, f"disbursement:{external_id}"))
    latest = max(rows, key=lambda r: r["m"].id)
    return render(
        request,
        "disbursement.html",
        {
            "active": "disbursements",
            "rows": rows,
            "d": latest["d"],
            "legs": legs,
            "flag_names": flag_names,
            "external_id": external_id,
        },
    )


@router.post("/disbursements/{external_id}/resend")
def resend(
    request: Request, external_id: str, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    """Queue every callback of this disbursement again with a fresh retry budget."""
    now = now_of(request)
    sent = db_of(request).transaction(
        lambda s: disbursements.resend_callbacks(s, external_id, now, actor=act.signed.actor)
    )
    return redirect(
        request,
        f"/console/disbursements/{external_id}",
        f"{len(sent)} callback(s) queued again; the outbox worker delivers them.",
    )
