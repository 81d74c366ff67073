"""The loan system's API: create, query, list and undo disbursements; every request signed."""

from __future__ import annotations

import threading
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from hub.db import Cursor, Db, Now
from hub.disbursements import clients, service
from hub.disbursements.models import DisbursementStatus, LoanClient
from hub.disbursements.posting import PostingQueue
from hub.disbursements.schemas import DisbursementIn, DisbursementOut, DisbursementPage, UndoIn
from integrations.loans.client import (
    DISBURSEMENTS_PATH,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
)


async def _rules(request: Request) -> service.Rules:
    rules: service.Rules | None = getattr(request.app.state, "disbursement_rules", None)
    if rules is None:
        rules = request.app.state.disbursement_rules = service.Rules.from_settings(
            request.app.state.settings
        )
    return rules


Rules = Annotated[service.Rules, Depends(_rules)]
_posting_lock = threading.Lock()


async def _posting_queue(request: Request, db: Db, rules: Rules) -> PostingQueue:
    with _posting_lock:
        posting: PostingQueue | None = getattr(request.app.state, "disbursement_posting", None)
        if posting is None:
            posting = request.app.state.disbursement_posting = PostingQueue(db, rules)
    return posting


Posting = Annotated[PostingQueue, Depends(_posting_queue)]


async def _signed_request(request: Request) -> clients.SignedRequest:
    body = await request.body()
    path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    target = path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    headers = request.headers
    return clients.SignedRequest(
        method=request.method,
        target=target,
        body=body,
        key_id=headers.get(KEY_ID_HEADER, ""),
        timestamp=headers.get(TIMESTAMP_HEADER, ""),
        signature=headers.get(SIGNATURE_HEADER, ""),
    )


def _loan_client(
    signed: Annotated[clients.SignedRequest, Depends(_signed_request)],
    db: Db,
    now: Now,
    rules: Rules,
) -> LoanClient:
    with db.session() as session:
        return clients.authenticate(session, signed, rules, now)


Client = Annotated[LoanClient, Depends(_loan_client)]

router = APIRouter(prefix=DISBURSEMENTS_PATH, tags=["disbursements"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_disbursement(
    order: DisbursementIn,
    client: Client,
    db: Db,
    now: Now,
    rules: Rules,
    posting: Posting,
    response: Response,
) -> DisbursementOut:
    """Credit an approved loan to the borrower's card account, once per `external_id`.

    The answer is final: 201 credited, or a 4xx refusal with a stable code. The same order
    again gets the same answer (marked `Idempotent-Replayed`); a reused external_id with a
    different order gets 409 `external_id_reused`; one still in flight gets 409
    `disbursement_in_flight`. A rejection for the state met (card, identity, limits, cover) is
    final for its external_id: a new attempt needs a new external_id.
    """
    d = db.transaction(lambda s: service.accept(s, client.id, order, rules, now))
    if d.status == DisbursementStatus.PROCESSING:
        d = posting.settle(d.external_id, now)
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return DisbursementOut.model_validate(service.answer(d))


@router.get("")
def list_disbursements(
    client: Client,
    db: Db,
    status_: Annotated[DisbursementStatus | None, Query(alias="status")] = None,
    posted_on: date | None = None,
    cursor: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DisbursementPage:
    with db.session() as s:
        items, next_cursor = service.listing(
            s, client.id, status=status_, posted_on=posted_on, cursor=cursor, limit=limit
        )
        return DisbursementPage(
            items=[DisbursementOut.model_validate(d) for d in items], next_cursor=next_cursor
        )


@router.get("/{external_id}")
def get_disbursement(external_id: str, client: Client, db: Db) -> DisbursementOut:
    """The disbursement's status, whatever it is (a rejection included, with its reason)."""
    with db.session() as s:
        return DisbursementOut.model_validate(service.get(s, client.id, external_id))


@router.post("/{external_id}/undo")
def undo_disbursement(
    external_id: str, undo: UndoIn, client: Client, db: Db, now: Now, rules: Rules
) -> DisbursementOut:
    """Reverse a credited loan while the card balance covers it; 409 `undo_not_covered` names
    the shortfall otherwise. Undoing again answers with the same result."""
    d = db.transaction(lambda s: service.undo(s, client, external_id, undo.reason, now, rules))
    return DisbursementOut.model_validate(d)
