"""Card payments: a payment's story, its ledger legs, and refunds by an operator."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.audit import service as audit
from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.models import Role
from hub.console.pages.ledger import flag_names
from hub.console.rendering import (
    ConsoleRoute,
    NavItem,
    cny,
    redirect,
    register_nav,
    render,
    zone_of,
)
from hub.console.service import Signed
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.ledger import service as ledger
from hub.payments import service as payments
from hub.payments.service import Caller

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("payments", "Card payments", "/console/payments", Role.VIEWER, "Money"))
CNY_TEXT = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")
REFUND_ID = re.compile(r"^[A-Za-z0-9:._-]{8,64}$")


def fen_from_text(text: str) -> int | None:
    """ "12", "12.3" or "12.34" yuan as integer fen, exactly; anything else is None."""
    found = CNY_TEXT.match(text.strip().replace(",", ""))
    if found is None:
        return None
    return int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))


CONSOLE = Caller(actor="console", unit_id=None)  # reads across every unit


def _ops(act: Action) -> Caller:
    """Bank operations act for every unit, under the operator's own name."""
    return Caller(actor=act.signed.actor, unit_id=None)


# Until the payment service offers a search, the latest payments are found through the audit
# trail, where every payment's first state (authorized or declined) is recorded.
OPENING_ACTIONS = ("payment.authorized", "payment.declined")
SCAN = 400
SHOWN = 50
STATUSES = [("", "Any status")] + [
    (s, s.capitalize())
    for s in ("authorized", "captured", "declined", "voided", "reversed", "refunded")
]


def card_matches(pan_masked: str | None, wanted: str) -> bool:
    """Match what an operator types against a masked number: last four, first six, or both."""
    digits = re.sub(r"[^0-9*]", "", wanted)
    if not digits or not pan_masked:
        return not digits
    head, _, tail = digits.partition("*")
    tail = tail.strip("*")
    if not tail and len(head) <= 4:
        return pan_masked.endswith(head)
    return pan_masked.startswith(head) and pan_masked.endswith(tail)


def _latest_payment_ids(s: Any) -> list[int]:
    entries = [e for action in OPENING_ACTIONS for e in audit.recent(s, SCAN, action=action)]
    entries.sort(key=lambda e: e.seq, reverse=True)
    ids = [e.subject.removeprefix("payment:") for e in entries[:SCAN]]
    return [int(i) for i in ids if i.isdigit()]


@router.get("/payments")
def payments_home(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    payment: Annotated[str, Query(max_length=20)] = "",
    card: Annotated[str, Query(max_length=24)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    day: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Open a payment by number, or search the latest ones by card, status and local date."""
    if payment.strip().isdigit():
        return redirect(request, f"/console/payments/{int(payment)}")
    errors = {"payment": "a payment number is digits only"} if payment.strip() else {}
    wanted_day = _day(day)
    if day and wanted_day is None:
        errors["day"] = "a date like 2026-11-29"
    zone = zone_of(request)
    found = []
    with db_of(request).session() as s:
        for payment_id in _latest_payment_ids(s):
            p = payments.get_payment(s, payment_id, CONSOLE)
            if (
                (not status or p.status == status)
                and card_matches(p.pan_masked, card)
                and (wanted_day is None or p.created_at.astimezone(zone).date() == wanted_day)
            ):
                found.append(p)
            if len(found) >= SHOWN:
                break
    return render(
        request,
        "payments.html",
        {
            "active": "payments",
            "errors": errors,
            "found": found,
            "statuses": STATUSES,
            "q": {"payment": payment, "card": card, "status": status, "day": day},
            "scan": SCAN,
        },
        422 if errors else 200,
    )


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _payment_context(request: Request, payment_id: int) -> dict[str, Any]:
    with db_of(request).session() as s:
        payment = payments.get_payment(s, payment_id, CONSOLE)
        legs = list(ledger.transfers_for(s, f"payment:{payment.id}"))
        unit = gateway.get_unit(s, payment.unit_id)
    return {
        "active": "payments",
        "p": payment,
        "unit": unit,
        "legs": legs,
        "flag_names": flag_names,
        "refundable": payment.captured - payment.refunded,
        "refund_id": f"console:{uuid.uuid4().hex}",
        "errors": {},
        "form": {},
    }


@router.get("/payments/{payment_id}")
def payment_page(
    request: Request, payment_id: int, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    return render(request, "payment.html", _payment_context(request, payment_id))


@router.post("/payments/{payment_id}/refunds")
def refund(
    request: Request, payment_id: int, act: Annotated[Action, Depends(action(Role.OPERATOR))]
) -> Response:
    """Refund part or all of a captured payment to the card; the form's refund id makes a
    double submit refund once."""
    amount, refund_id = fen_from_text(act.field("amount")), act.field("refund_id")
    problem = None
    if amount is None or amount <= 0:
        problem = "an amount in yuan, e.g. 12.50"
    elif not REFUND_ID.match(refund_id):
        problem = "the form was damaged; reload the page"
    if problem is None:
        assert amount is not None
        now, caller = now_of(request), _ops(act)
        try:
            db_of(request).transaction(
                lambda s: payments.refund(s, payment_id, refund_id, amount, caller, now)
            )
        except HubError as exc:
            if exc.status == 404:
                raise
            problem = exc.message
    if problem is not None:
        context = _payment_context(request, payment_id)
        context.update(errors={"amount": problem}, form=act.form)
        return render(request, "payment.html", context, 422)
    return redirect(
        request,
        f"/console/payments/{payment_id}",
        f"Refund of {cny(amount)} CNY sent to the card.",
    )
