"""Payments of every channel: search, a payment's story and ledger legs, refunds by an operator."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.models import Role
from hub.console.pages.ledger import flag_names
from hub.console.rendering import (
    ConsoleRoute,
    NavItem,
    business_zone_of,
    cny,
    field_errors,
    masked,
    redirect,
    register_nav,
    render,
)
from hub.console.service import Signed
from hub.db import PathId, QueryId
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.ledger import service as ledger
from hub.payments import service as payments
from hub.payments.schemas import CARD_HELP, PaymentSearch, SearchChannel
from hub.payments.service import Caller

router = APIRouter(route_class=ConsoleRoute)
register_nav(NavItem("payments", "Payments", "/console/payments", Role.VIEWER, "Money"))
CNY_TEXT = re.compile(r"^(\d{1,12})(?:\.(\d{1,2}))?$")
REFUND_ID = re.compile(r"^[A-Za-z0-9:._-]{8,64}$")
PAGE_SIZE = 50
STATUSES = [("", "Any status")] + [
    (s, s.capitalize())
    for s in ("authorized", "captured", "declined", "voided", "reversed", "refunded")
]
CHANNEL_NAMES = {
    SearchChannel.CARD_TAP: "Card tap",
    SearchChannel.PAYMENT_CODE: "Payment code",
    SearchChannel.BILL_CODE: "Bill code",
    SearchChannel.CHECKOUT: "Checkout self-pay",
}
CHANNELS = [("", "Every channel")] + [(c.value, name) for c, name in CHANNEL_NAMES.items()]
# The search's own fields, as the form names them.
FILTERS = ("card", "status", "channel", "unit_id", "bill_number", "day_from", "day_to")


def fen_from_text(text: str) -> int | None:
    """ "12", "12.3" or "12.34" yuan as integer fen, exactly; anything else is None."""
    found = CNY_TEXT.match(text.strip().replace(",", ""))
    if found is None:
        return None
    return int(found[1]) * 100 + int((found[2] or "0").ljust(2, "0"))


CONSOLE = Caller(actor="console", unit_id=None)  # reads across every unit
MAX_PAYMENT_DIGITS = 12  # shorter than any card number (13–19 digits)


def _ops(act: Action) -> Caller:
    """Bank operations act for every unit, under the operator's own name."""
    return Caller(actor=act.signed.actor, unit_id=None)


def _search(form: dict[str, str]) -> tuple[PaymentSearch | None, dict[str, str]]:
    try:
        return PaymentSearch.model_validate({**form, "limit": PAGE_SIZE}), {}
    except ValidationError as exc:
        errors = field_errors(exc)
        if "form" in errors:  # the days' order: said beside the last day
            errors["day_to"] = errors.pop("form")
        if "card" in errors:
            errors["card"] = CARD_HELP
        return None, errors


@router.get("/payments")
def payments_home(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    payment: Annotated[str, Query(max_length=20)] = "",
    card: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    unit_id: Annotated[str, Query(max_length=12)] = "",
    bill_number: Annotated[str, Query(max_length=40)] = "",
    day_from: Annotated[str, Query(max_length=10)] = "",
    day_to: Annotated[str, Query(max_length=10)] = "",
    before: QueryId = None,
) -> Response:
    """Open a payment by number, or search every payment by card, status, channel, unit,
    bill number and the bank's local days; newest first, a page at a time."""
    number = payment.strip()
    # A card number typed here must neither reach a URL (and its logs) nor be echoed.
    if number.isdigit() and len(number) <= MAX_PAYMENT_DIGITS:
        return redirect(request, f"/console/payments/{int(number)}")
    form = dict(
        card=card,
        status=status,
        channel=channel,
        unit_id=unit_id,
        bill_number=bill_number,
        day_from=day_from,
        day_to=day_to,
    )
    query, errors = _search({**form, "before": str(before or "")})
    if number:
        errors["payment"] = (
            f"a payment number is 1–{MAX_PAYMENT_DIGITS} digits; search a card below"
        )
    with db_of(request).session() as s:
        units = gateway.list_units(s)
        found = (
            payments.search_payments(s, query, business_zone_of(request))
            if query is not None
            else None
        )
    kept = {k: v for k, v in form.items() if v.strip()}
    older = None
    if found is not None and found.next_before is not None:
        older = "/console/payments?" + urlencode({**kept, "before": found.next_before})
    return render(
        request,
        "payments.html",
        {
            "active": "payments",
            "errors": errors,
            "found": found.items if found is not None else [],
            "older": older,
            "newest": "/console/payments?" + urlencode(kept) if before is not None else None,
            "day_zone": str(business_zone_of(request)),
            "statuses": STATUSES,
            "channels": CHANNELS,
            "channel_names": CHANNEL_NAMES,
            "units": [("", "Every unit")] + [(str(u.id), u.name) for u in units],
            "unit_names": {u.id: u.name for u in units},
            # A card number is echoed masked only, whatever was typed.
            "q": {**form, "card": masked(card) if card else "", "payment": ""},
            "filtered": any(v.strip() for v in form.values()),
        },
        422 if errors else 200,
    )


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
    request: Request, payment_id: PathId, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    return render(request, "payment.html", _payment_context(request, payment_id))


@router.post("/payments/{payment_id}/refunds")
def refund(
    request: Request, payment_id: PathId, act: Annotated[Action, Depends(action(Role.OPERATOR))]
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
