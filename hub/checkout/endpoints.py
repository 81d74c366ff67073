"""Checkout API: the cashier's terminal (signed) runs a checkout; bank ops look and revoke.

Terminal bodies are parsed only after the signature passed. Each step answers with the
checkout as it stands; `in_flight` true means a platform message is still out (a timeout):
the outbox carries it on and the terminal polls `GET /api/terminal/checkouts/{id}`.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from hub.auth import require_ops
from hub.checkout import service
from hub.checkout.flow import CheckoutFlow
from hub.checkout.schemas import CheckoutIn, CheckoutOut, IdentifyIn, ReceiptOut, SelfPayIn
from hub.checkout.service import Caller, Credential
from hub.db import Db, PathId, QueryId
from hub.errors import HubError
from hub.gateway.auth import AuthenticatedTerminal, TerminalCaller
from integrations.medical_insurance.client import CertType

M = TypeVar("M", bound=BaseModel)
TERMINAL_PATH = "/api/terminal/checkouts"
OPS = Caller(actor="ops_api", unit_id=None)

terminal_router = APIRouter(prefix=TERMINAL_PATH, tags=["checkout"])
ops_router = APIRouter(
    prefix="/api/checkouts", tags=["checkout"], dependencies=[Depends(require_ops)]
)


def _flow(request: Request) -> CheckoutFlow:
    flow: CheckoutFlow = request.app.state.checkout
    return flow


Flow = Annotated[CheckoutFlow, Depends(_flow)]


def _caller(terminal: AuthenticatedTerminal) -> Caller:
    return Caller.terminal(terminal.terminal_id, terminal.unit_id, terminal.institution_code)


async def _parse(model: type[M], request: Request) -> M:
    try:
        return model.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        # Field paths and reasons only: the input may hold an ID number or a token.
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'body'}: {err.get('msg')}"
            for err in exc.errors()[:5]
        ]
        raise HubError("invalid_request", "; ".join(parts), 422) from None


def credential_of(spec: IdentifyIn) -> Credential:
    if spec.card is not None:
        card = spec.card
        return Credential(CertType.SOCIAL_SECURITY_CARD, card.card_number, card.card_id_code)
    if spec.evoucher is not None:
        return Credential(CertType.E_VOUCHER, spec.evoucher.get_secret_value())
    assert spec.id_number is not None
    return Credential(CertType.ID_NUMBER, spec.id_number.get_secret_value())


# --- the cashier's terminal ---------------------------------------------------------------------


@terminal_router.post("", status_code=status.HTTP_201_CREATED, response_model=CheckoutOut)
async def open_checkout(request: Request, terminal: TerminalCaller, flow: Flow) -> CheckoutOut:
    """Fetch a bill from the HIS and start its checkout; the same bill again returns it."""
    spec = await _parse(CheckoutIn, request)
    return await run_in_threadpool(flow.open, _caller(terminal), spec.bill_no)


@terminal_router.get("/{checkout_id}", response_model=CheckoutOut)
async def get_checkout(checkout_id: PathId, terminal: TerminalCaller, flow: Flow) -> CheckoutOut:
    return await run_in_threadpool(flow.view, _caller(terminal), checkout_id)


@terminal_router.post("/{checkout_id}/identify", response_model=CheckoutOut)
async def identify(
    checkout_id: PathId, request: Request, terminal: TerminalCaller, flow: Flow
) -> CheckoutOut:
    """Identify the patient (card, e-voucher code or ID number): answers with the split."""
    credential = credential_of(await _parse(IdentifyIn, request))
    return await run_in_threadpool(flow.identify, _caller(terminal), checkout_id, credential)


@terminal_router.post("/{checkout_id}/self-pay", response_model=CheckoutOut)
async def self_pay(
    checkout_id: PathId, request: Request, terminal: TerminalCaller, flow: Flow
) -> CheckoutOut:
    """Collect the cash part and settle: answers with the completed checkout."""
    spec = await _parse(SelfPayIn, request)
    return await run_in_threadpool(flow.settle, _caller(terminal), checkout_id, spec)


@terminal_router.post("/{checkout_id}/revoke", response_model=CheckoutOut)
async def revoke(checkout_id: PathId, terminal: TerminalCaller, flow: Flow) -> CheckoutOut:
    """Revoke the settlement: every leg reversed, the self-pay refunded."""
    return await run_in_threadpool(flow.revoke, _caller(terminal), checkout_id)


@terminal_router.get("/{checkout_id}/receipt", response_model=ReceiptOut)
async def receipt(checkout_id: PathId, terminal: TerminalCaller, flow: Flow) -> ReceiptOut:
    return await run_in_threadpool(flow.receipt, _caller(terminal), checkout_id)


# --- bank operations ----------------------------------------------------------------------------


@ops_router.get("", response_model=list[CheckoutOut])
def list_checkouts(
    db: Db,
    unit_id: QueryId = None,
    state: Annotated[str | None, Query(max_length=24)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CheckoutOut]:
    with db.session() as session:
        found = service.recent_checkouts(session, unit_id=unit_id, state=state, limit=limit)
        return [service.checkout_out(checkout) for checkout in found]


@ops_router.get("/{checkout_id}", response_model=CheckoutOut)
def ops_checkout(checkout_id: PathId, flow: Flow) -> CheckoutOut:
    return flow.view(OPS, checkout_id)


@ops_router.post("/{checkout_id}/revoke", response_model=CheckoutOut)
def ops_revoke(checkout_id: PathId, flow: Flow) -> CheckoutOut:
    return flow.revoke(OPS, checkout_id)


@ops_router.get("/{checkout_id}/receipt", response_model=ReceiptOut)
def ops_receipt(checkout_id: PathId, flow: Flow) -> ReceiptOut:
    return flow.receipt(OPS, checkout_id)
