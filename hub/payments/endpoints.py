"""Card-tap API: terminal-facing (signed, see hub/gateway/auth.py) and bank-ops endpoints.

Terminal bodies are parsed only after the signature passed, so an unauthenticated caller
learns nothing from validation errors. Every answer is about the caller's own unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from devices.protocol.card_payments import CARD_PAYMENTS_PATH
from hub.auth import require_ops
from hub.db import Database, Db, Now, PathId
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.gateway.auth import AuthenticatedTerminal, TerminalCaller
from hub.issuer import service as issuer
from hub.payments import service
from hub.payments.models import Payment
from hub.payments.schemas import (
    AuthorizationOut,
    CaptureIn,
    CardTapIn,
    PaymentOut,
    RefundIn,
    RefundOut,
    ReversalIn,
    UnitSettingsIn,
    UnitSettingsOut,
)
from hub.payments.service import Caller, CardRules

log = structlog.get_logger()
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
OPS_ACTOR = "ops_api"

terminal_router = APIRouter(prefix=CARD_PAYMENTS_PATH, tags=["card payments"])
ops_router = APIRouter(
    prefix="/api/payments", tags=["payments"], dependencies=[Depends(require_ops)]
)


def issuer_secrets(request: Request) -> issuer.IssuerSecrets:
    """Derived from settings once per app, kept on its state."""
    state = request.app.state
    if getattr(state, "issuer_secrets", None) is None:
        state.issuer_secrets = issuer.IssuerSecrets.from_settings(state.settings)
    secrets: issuer.IssuerSecrets = state.issuer_secrets
    return secrets


Secrets = Annotated[issuer.IssuerSecrets, Depends(issuer_secrets)]


def _caller(terminal: AuthenticatedTerminal) -> Caller:
    return Caller.terminal(terminal.terminal_id, terminal.unit_id, terminal.institution_code)


async def _parse(model: type[M], request: Request) -> M:
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        # Field paths and reasons only: the input may hold a PAN or a PIN block.
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg')}"
            for err in exc.errors()[:5]
        ]
        raise HubError("invalid_request", "; ".join(parts), 422) from None


async def _in_transaction(db: Database, work: Callable[[Session], T]) -> T:
    return await run_in_threadpool(db.transaction, work)


def authorization_out(payment: Payment) -> AuthorizationOut:
    return AuthorizationOut(
        payment_id=payment.id,
        transaction_id=payment.transaction_id,
        status=payment.status,
        approved=payment.response_code == "00",
        decline_code=payment.decline_code,
        response_code=payment.response_code,
        arpc=payment.arpc,
        amount=payment.amount,
        pan_masked=payment.pan_masked,
        hold_expires_at=payment.hold_expires_at,
    )


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        payment_id=payment.id,
        transaction_id=payment.transaction_id,
        channel=payment.channel,
        status=payment.status,
        amount=payment.amount,
        captured=payment.captured,
        refunded=payment.refunded,
        decline_code=payment.decline_code,
        pan_masked=payment.pan_masked,
        terminal_id=payment.terminal_id,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
    )


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


# --- terminal-facing -------------------------------------------------------------------------


@terminal_router.post("", response_model=AuthorizationOut)
async def authorize(
    request: Request, terminal: TerminalCaller, db: Db, now: Now, secrets: Secrets
) -> Response:
    """Authorise a card tap: ARQC, ATC, PIN, hold; the answer carries the ARC and ARPC."""
    tap = await _parse(CardTapIn, request)
    rules = CardRules.from_settings(request.app.state.settings)
    caller = _caller(terminal)
    payment = await _in_transaction(
        db, lambda s: service.authorize_card_tap(s, tap, caller, secrets, rules, now)
    )
    log.info(
        "card_tap",
        payment_id=payment.id,
        terminal_id=terminal.terminal_id,
        status=payment.status,
        decline_code=payment.decline_code,
        card=payment.pan_masked,
    )
    return _json(authorization_out(payment))


@terminal_router.post("/reversals", response_model=PaymentOut)
async def reverse(request: Request, terminal: TerminalCaller, db: Db, now: Now) -> Response:
    """The terminal lost the answer to an authorisation: release whatever it held."""
    spec = await _parse(ReversalIn, request)
    caller = _caller(terminal)
    payment = await _in_transaction(
        db, lambda s: service.reverse_card_tap(s, spec.transaction_id, caller, now)
    )
    return _json(payment_out(payment))


@terminal_router.get("/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: PathId, terminal: TerminalCaller, db: Db) -> Response:
    def read() -> Payment:
        with db.session() as session:
            return service.get_payment(session, payment_id, _caller(terminal))

    return _json(payment_out(await run_in_threadpool(read)))


@terminal_router.post("/{payment_id}/capture", response_model=PaymentOut)
async def capture(
    payment_id: PathId, request: Request, terminal: TerminalCaller, db: Db, now: Now
) -> Response:
    spec = await _parse(CaptureIn, request)
    caller = _caller(terminal)
    payment = await _in_transaction(
        db, lambda s: service.capture(s, payment_id, spec.amount, caller, now)
    )
    return _json(payment_out(payment))


@terminal_router.post("/{payment_id}/void", response_model=PaymentOut)
async def void(payment_id: PathId, terminal: TerminalCaller, db: Db, now: Now) -> Response:
    caller = _caller(terminal)
    payment = await _in_transaction(db, lambda s: service.void(s, payment_id, caller, now))
    return _json(payment_out(payment))


@terminal_router.post("/{payment_id}/refunds", response_model=RefundOut)
async def refund(
    payment_id: PathId, request: Request, terminal: TerminalCaller, db: Db, now: Now
) -> Response:
    spec = await _parse(RefundIn, request)
    caller = _caller(terminal)

    def work(session: Session) -> RefundOut:
        operation = service.refund(session, payment_id, spec.refund_id, spec.amount, caller, now)
        payment = service.get_payment(session, payment_id, caller)
        return RefundOut(
            payment_id=payment_id,
            refund_id=operation.operation_key,
            amount=operation.amount,
            payment=payment_out(payment),
        )

    return _json(await _in_transaction(db, work))


# --- bank operations -------------------------------------------------------------------------

OPS = Caller(actor=OPS_ACTOR, unit_id=None)


@ops_router.get("/card-payments/{payment_id}")
def ops_payment(payment_id: PathId, db: Db) -> PaymentOut:
    with db.session() as session:
        return payment_out(service.get_payment(session, payment_id, OPS))


@ops_router.put("/units/{unit_id}/settings")
def set_unit_settings(unit_id: PathId, spec: UnitSettingsIn, db: Db, now: Now) -> UnitSettingsOut:
    def work(session: Session) -> UnitSettingsOut:
        gateway.get_unit(session, unit_id)  # 404 for a unit that does not exist
        row = service.set_unit_settings(session, unit_id, spec.pin_threshold_fen, OPS_ACTOR, now)
        return UnitSettingsOut.model_validate(row)

    return db.transaction(work)
