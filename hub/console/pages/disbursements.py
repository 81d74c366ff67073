"""Loan disbursements of every loan client: search, a disbursement's callbacks and ledger legs,
re-send (operator) and undo (admin)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.console.auth import Action, action, db_of, now_of, page
from hub.console.models import Role
from hub.console.pages.ledger import flag_names
from hub.console.rendering import ConsoleRoute, NavItem, cny, redirect, register_nav, render
from hub.console.service import Signed
from hub.db import QueryId
from hub.disbursements import service as disbursements
from hub.disbursements.schemas import DisbursementStatus
from hub.errors import HubError
from hub.ledger import service as ledger
from hub.outbox import service as outbox

router = APIRouter(route_class=ConsoleRoute)
register_nav(
    NavItem("disbursements", "Disbursements", "/console/disbursements", Role.VIEWER, "Money")
)
STATUSES = [("", "Any status")] + [(s.value, s.value.capitalize()) for s in DisbursementStatus]
PAGE_SIZE = 50
DEAD_SHOWN = 20
REASON_MAX = 128  # what the disbursement keeps of an undo's reason


def _rules(request: Request) -> disbursements.Rules:
    """Built once per app, like the loan system's endpoints do."""
    state = request.app.state
    rules: disbursements.Rules | None = getattr(state, "disbursement_rules", None)
    if rules is None:
        rules = state.disbursement_rules = disbursements.Rules.from_settings(state.settings)
    return rules


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


def _filters(
    q: str, status: str, day_from: str, day_to: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The search's arguments from the form, and one message per field it could not read."""
    errors: dict[str, str] = {}
    days = {"day_from": _day(day_from), "day_to": _day(day_to)}
    for name, text in (("day_from", day_from), ("day_to", day_to)):
        if text.strip() and days[name] is None:
            errors[name] = "a date like 2026-11-29"
    if days["day_from"] and days["day_to"] and days["day_from"] > days["day_to"]:
        errors["day_to"] = "the first day comes after the last"
    chosen = DisbursementStatus(status) if status in dict(STATUSES) and status else None
    return {
        "external_id": q.strip() or None,
        "status": chosen,
        "posted_from": days["day_from"],
        "posted_to": days["day_to"],
    }, errors


@router.get("/disbursements")
def disbursements_home(
    request: Request,
    _: Annotated[Signed, Depends(page(Role.VIEWER))],
    q: Annotated[str, Query(max_length=48)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    day_from: Annotated[str, Query(max_length=10)] = "",
    day_to: Annotated[str, Query(max_length=10)] = "",
    before: QueryId = None,
) -> Response:
    """Every client's disbursements by external id (its start), status and the business day of
    the outcome; dead-lettered callbacks on top, as they need someone."""
    filters, errors = _filters(q, status, day_from, day_to)
    found: list[Any] = []
    cursor = None
    with db_of(request).session() as s:
        if not errors:
            items, cursor = disbursements.search(s, **filters, before=before, limit=PAGE_SIZE)
            found = list(items)
        dead = list(
            outbox.messages(s, state="dead", topic=disbursements.CALLBACK_TOPIC, limit=DEAD_SHOWN)
        )
        clients = disbursements.client_names(s)
    form = {"q": q.strip(), "status": status, "day_from": day_from, "day_to": day_to}
    kept = {k: v for k, v in form.items() if v}
    return render(
        request,
        "disbursements.html",
        {
            "active": "disbursements",
            "found": found,
            "clients": clients,
            "dead": [_callback(m) for m in dead],
            "statuses": STATUSES,
            "errors": errors,
            "q": form,
            "filtered": bool(kept),
            "older": f"/console/disbursements?{urlencode({**kept, 'before': cursor})}"
            if cursor
            else None,
            "newest": f"/console/disbursements?{urlencode(kept)}" if before else None,
        },
        422 if errors else 200,
    )


def _callback(message: Any) -> dict[str, Any]:
    """A callback with the disbursement it carries, as the loan system was told it."""
    event = (message.payload or {}).get("event", {})
    return {
        "m": message,
        "type": str(event.get("type", "")).removeprefix("disbursement."),
        "d": event.get("disbursement", {}),
    }


def _disbursement_context(request: Request, external_id: str) -> dict[str, Any]:
    with db_of(request).session() as s:
        d = disbursements.find(s, external_id)
        callbacks = disbursements.callbacks_of(s, external_id)
        legs = list(ledger.transfers_for(s, disbursements.reference(d)))
        client = disbursements.client_names(s).get(d.client_id, "")
    return {
        "active": "disbursements",
        "d": d,
        "client": client,
        "rows": [_callback(m) for m in callbacks],
        "legs": legs,
        "flag_names": flag_names,
        "external_id": external_id,
        "errors": {},
        "form": {},
    }


@router.get("/disbursements/{external_id}")
def disbursement_page(
    request: Request, external_id: str, _: Annotated[Signed, Depends(page(Role.VIEWER))]
) -> Response:
    return render(request, "disbursement.html", _disbursement_context(request, external_id))


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


@router.post("/disbursements/{external_id}/undo")
def undo(
    request: Request, external_id: str, act: Annotated[Action, Depends(action(Role.ADMIN))]
) -> Response:
    """Reverse a credited loan while the card still holds it, under the admin's name; the loan
    system is told as if it had asked. A second undo answers the first one's result."""
    reason = act.field("reason")
    problem = None
    if not reason:
        problem = "say why, for the audit trail and the loan system"
    elif len(reason) > REASON_MAX:
        problem = f"at most {REASON_MAX} characters"
    status = 422
    if problem is None:
        now, rules, actor = now_of(request), _rules(request), act.signed.actor

        def work(s: Any) -> tuple[str, Any]:
            before = disbursements.find(s, external_id).status  # only to word the note
            return before, disbursements.undo_by_operator(
                s, external_id, reason, now, rules, actor=actor
            )

        try:
            before, d = db_of(request).transaction(work)
        except HubError as exc:
            if exc.status == 404:
                raise
            problem, status = exc.message, exc.status  # not covered, not credited, in flight
    if problem is not None:
        context = _disbursement_context(request, external_id)
        context.update(errors={"reason": problem}, form=act.form)
        return render(request, "disbursement.html", context, status)
    note = f"Undone: {cny(d.amount)} CNY back from the card to loan funding."
    if before == DisbursementStatus.UNDONE:
        note = f"Already undone earlier; the {cny(d.amount)} CNY went back once."
    return redirect(request, f"/console/disbursements/{external_id}", note)
