"""Card registry API for bank operations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.auth import require_ops
from hub.db import Db, Now
from hub.issuer import service
from hub.issuer.protection import CardDataKeys
from hub.issuer.schemas import CardIn, CardOut, CardStatusIn

router = APIRouter(prefix="/api/issuer", tags=["issuer"], dependencies=[Depends(require_ops)])


def card_data_keys(request: Request) -> CardDataKeys:
    return request.app.state.card_keys  # type: ignore[no-any-return]


Keys = Annotated[CardDataKeys, Depends(card_data_keys)]


@router.post("/cards", status_code=status.HTTP_201_CREATED)
def register_card(spec: CardIn, db: Db, now: Now, keys: Keys) -> CardOut:
    def work(session: Session) -> CardOut:
        card = service.register_card(session, spec, keys, now)
        audit.record(
            session,
            actor="ops_api",
            action="card.registered",
            subject=f"card:{card.card_number}",
            now=now,
            details={"pan": card.pan_masked},
        )
        return CardOut.model_validate(card)

    return db.transaction(work)


@router.get("/cards/{card_number}")
def get_card(card_number: str, db: Db) -> CardOut:
    with db.session() as session:
        return CardOut.model_validate(service.card_by_number(session, card_number))


@router.put("/cards/{card_number}/status")
def set_status(card_number: str, change: CardStatusIn, db: Db, now: Now) -> CardOut:
    def work(session: Session) -> CardOut:
        card = service.card_by_number(session, card_number)
        before = card.status
        card = service.set_card_status(session, card.id, change.status)
        audit.record(
            session,
            actor="ops_api",
            action="card.status_changed",
            subject=f"card:{card_number}",
            now=now,
            details={"from": before, "to": card.status},
        )
        return CardOut.model_validate(card)

    return db.transaction(work)
