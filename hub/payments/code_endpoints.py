"""HTTP API of the QR flows.

- cardholder app (bearer cardholder token): issue payment codes, pay bill codes;
- terminals (signed): pay with a scanned payment code, scan text or camera frames, create,
  poll and cancel bills;
- bank ops / the HIS (ops token): cardholder tokens, bills named by institution code.

Terminal bodies are parsed only after the signature passed, as in the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from devices.qr.render import render_png
from hub.audit import service as audit
from hub.auth import require_ops
from hub.db import Database, Db, Now, PathId
from hub.errors import HubError
from hub.gateway.auth import AuthenticatedTerminal, TerminalCaller, record_refusal
from hub.gateway.errors import TerminalRefused
from hub.issuer import service as issuer
from hub.payments import bills, cardholders, codes, frames
from hub.payments.code_errors import CardholderUnauthorized, PaymentCodeTampered
from hub.payments.code_models import Bill, CodePayment
from hub.payments.code_schemas import (
    BillIn,
    BillOut,
    BillPayIn,
    CardholderTokenIn,
    CardholderTokenOut,
    CodePaymentIn,
    CodePaymentOut,
    HisBillIn,
    PaymentCodeOut,
    ScanIn,
    ScanOut,
    TransactionId,
)
from hub.payments.frame_auth import FrameCaller

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
OPS_ACTOR = "ops_api"
PAY_PATH = "/api/terminal/payment-codes/payments"
SCANS_PATH = "/api/terminal/scans"
FRAMES_PATH = "/api/terminal/frames"
BILLS_PATH = "/api/terminal/bills"
SCANNING_KINDS = frozenset({"qr_scanner", "combo"})

cardholder_router = APIRouter(prefix="/api/cardholder", tags=["cardholder"])
terminal_router = APIRouter(tags=["terminal"])
ops_router = APIRouter(
    prefix="/api/payments", tags=["payments"], dependencies=[Depends(require_ops)]
)


# --- dependencies ------------------------------------------------------------------------------


def _code_key(request: Request) -> codes.PaymentCodeKey:
    return codes.PaymentCodeKey.from_settings(request.app.state.settings)


def _code_policy(request: Request) -> codes.CodePolicy:
    return codes.CodePolicy.from_settings(request.app.state.settings)


def _cardholder_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CardholderUnauthorized(message="a cardholder app token is required")
    return token.strip()


CodeKey = Annotated[codes.PaymentCodeKey, Depends(_code_key)]
Policy = Annotated[codes.CodePolicy, Depends(_code_policy)]
CardholderToken = Annotated[str, Depends(_cardholder_token)]


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:5]
        )
        raise HubError("invalid_request", where, 422) from exc


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    database: Database = request.app.state.db
    return await run_in_threadpool(database.transaction, work)


def _now(request: Request) -> datetime:
    return request.app.state.clock()  # type: ignore[no-any-return]


def _require_scanner(request: Request, caller: AuthenticatedTerminal) -> None:
    if caller.kind in SCANNING_KINDS:
        return
    refusal = TerminalRefused("terminal_cannot_scan", "this terminal has no code scanner", 403)
    record_refusal(request.app.state.gateway, request, caller.terminal_id, refusal)
    raise refusal


# --- mapping -----------------------------------------------------------------------------------


def _payment_out(session: Session, payment: CodePayment) -> CodePaymentOut:
    card = issuer.card_by_id(session, payment.card_id)
    return CodePaymentOut(
        transaction_id=payment.transaction_id,
        amount_fen=payment.amount,
        payment_id=payment.payment_id,
        card=card.pan_masked,
        paid_at=payment.created_at,
    )


def _bill_out(bill: Bill, now: datetime) -> BillOut:
    return BillOut(
        institution_code=bill.institution_code,
        bill_number=bill.bill_number,
        amount_fen=bill.amount,
        status=bills.status_of(bill, now).value,
        payload=bill.payload,
        created_at=bill.created_at,
        expires_at=bill.expires_at,
        paid_at=bill.paid_at,
        cancelled_at=bill.cancelled_at,
        payment_id=bill.payment_id,
    )


def _png(payload: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        render_png(payload),
        media_type="image/png",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# --- cardholder app ----------------------------------------------------------------------------


def _issue(
    db: Database, token: str, key: codes.PaymentCodeKey, policy: codes.CodePolicy, now: datetime
) -> PaymentCodeOut:
    def work(session: Session) -> PaymentCodeOut:
        card = cardholders.authenticate(session, token)
        issued = codes.issue_code(session, card.id, key, policy, now)
        return PaymentCodeOut(
            payload=issued.payload,
            expires_at=issued.expires_at,
            valid_seconds=policy.validity_seconds,
        )

    return db.transaction(work)


@cardholder_router.post("/payment-codes", status_code=status.HTTP_201_CREATED)
def issue_payment_code(
    token: CardholderToken, db: Db, now: Now, key: CodeKey, policy: Policy
) -> PaymentCodeOut:
    """A new one-time payment code for the app's card, as QR text."""
    return _issue(db, token, key, policy, now)


@cardholder_router.post("/payment-codes/png", response_class=Response)
def issue_payment_code_png(
    token: CardholderToken, db: Db, now: Now, key: CodeKey, policy: Policy
) -> Response:
    """A new one-time payment code for the app's card, drawn as a PNG QR code."""
    issued = _issue(db, token, key, policy, now)
    return _png(issued.payload, {"X-SSC-Expires-At": issued.expires_at.isoformat()})


@cardholder_router.post("/bills/pay")
def pay_bill(spec: BillPayIn, token: CardholderToken, db: Db, now: Now, policy: Policy) -> BillOut:
    """Pay a scanned bill code from the app's card; paying it again returns the paid bill."""

    def work(session: Session) -> BillOut:
        card = cardholders.authenticate(session, token)
        bill = bills.pay_bill(session, spec.payload, card.id, now, hold_seconds=policy.hold_seconds)
        return _bill_out(bill, now)

    return db.transaction(work)


# --- terminals ---------------------------------------------------------------------------------


def _pay_work(
    caller: AuthenticatedTerminal,
    spec: CodePaymentIn,
    key: codes.PaymentCodeKey,
    policy: codes.CodePolicy,
    now: datetime,
) -> Callable[[Session], CodePaymentOut]:
    request = codes.CodePaymentRequest(
        caller.terminal_id,
        caller.unit_id,
        caller.institution_code,
        spec.transaction_id,
        spec.amount_fen,
        spec.payload,
    )

    def work(session: Session) -> CodePaymentOut:
        return _payment_out(session, codes.pay_with_code(session, request, key, policy, now))

    return work


async def _audited(
    request: Request, caller: AuthenticatedTerminal, work: Callable[[Session], T]
) -> T:
    """Run the work; a tampered code is written to the audit trail (the work itself rolled back)."""
    try:
        return await _in_transaction(request, work)
    except PaymentCodeTampered as exc:
        await run_in_threadpool(_record_tampered, request, caller, exc)
        raise


def _record_tampered(request: Request, caller: AuthenticatedTerminal, exc: HubError) -> None:
    subject = f"terminal:{caller.terminal_id}"
    request.app.state.db.transaction(
        lambda s: audit.record(
            s,
            actor=subject,
            action="payment_code.refused",
            subject=subject,
            now=_now(request),
            details={"code": exc.code, "path": request.url.path},
        )
    )


@terminal_router.post(PAY_PATH, response_model=CodePaymentOut)
async def pay_with_code(
    request: Request, caller: TerminalCaller, key: CodeKey, policy: Policy
) -> CodePaymentOut:
    """Take a payment with a scanned payment code; the same transaction id again returns it."""
    spec = _parse(CodePaymentIn, await request.body())
    await run_in_threadpool(_require_scanner, request, caller)
    work = _pay_work(caller, spec, key, policy, _now(request))
    return await _audited(request, caller, work)


@terminal_router.get(PAY_PATH + "/{transaction_id}")
def payment_status(
    transaction_id: Annotated[str, Path(max_length=36)], caller: TerminalCaller, db: Db
) -> CodePaymentOut:
    """The outcome of a code payment whose answer the terminal did not receive."""
    with db.session() as session:
        return _payment_out(session, codes.sale(session, caller.terminal_id, transaction_id))


def _scan_work(
    caller: AuthenticatedTerminal,
    text: str,
    transaction_id: str | None,
    amount: int | None,
    key: codes.PaymentCodeKey,
    policy: codes.CodePolicy,
    now: datetime,
) -> Callable[[Session], ScanOut]:
    context = frames.ScanContext(
        caller.terminal_id, caller.unit_id, caller.institution_code, transaction_id, amount
    )

    def work(session: Session) -> ScanOut:
        routed = frames.route_scan(session, text, context, key, policy, now)
        if routed.payment is not None:
            return ScanOut(kind="payment_code", payment=_payment_out(session, routed.payment))
        if routed.checkout_id is not None:
            return ScanOut(kind="evoucher", checkout_id=routed.checkout_id)
        assert routed.bill is not None
        return ScanOut(kind="bill_code", bill=_bill_out(routed.bill, now))

    return work


@terminal_router.post(SCANS_PATH, response_model=ScanOut)
async def scan_text(
    request: Request, caller: TerminalCaller, key: CodeKey, policy: Policy
) -> ScanOut:
    """A code read by a scan engine, routed by what it is."""
    spec = _parse(ScanIn, await request.body())
    await run_in_threadpool(_require_scanner, request, caller)
    work = _scan_work(
        caller, spec.text, spec.transaction_id, spec.amount_fen, key, policy, _now(request)
    )
    return await _audited(request, caller, work)


@terminal_router.post(FRAMES_PATH, response_model=ScanOut)
async def scan_frame(
    request: Request,
    caller: FrameCaller,
    key: CodeKey,
    policy: Policy,
    transaction_id: Annotated[TransactionId | None, Query()] = None,
    amount_fen: Annotated[int | None, Query(gt=0, le=10_000_000_000)] = None,
) -> ScanOut:
    """A camera frame (JPEG, PNG, BMP or WebP bytes as the body); its code is routed as a scan."""
    await run_in_threadpool(_require_scanner, request, caller)
    settings = request.app.state.settings
    text = await run_in_threadpool(
        frames.frame_text,
        await request.body(),
        max_bytes=settings.frame_max_bytes,
        max_pixels=settings.frame_max_pixels,
    )
    work = _scan_work(caller, text, transaction_id, amount_fen, key, policy, _now(request))
    return await _audited(request, caller, work)


@terminal_router.post(BILLS_PATH, status_code=status.HTTP_201_CREATED, response_model=BillOut)
async def create_bill(request: Request, caller: TerminalCaller) -> BillOut:
    """A cashier's terminal makes a bill code for its own unit."""
    spec = _parse(BillIn, await request.body())
    now = _now(request)
    validity = spec.valid_seconds or request.app.state.settings.bill_validity_seconds
    bill = bills.BillSpec(
        caller.institution_code,
        spec.bill_number,
        spec.amount_fen,
        validity,
        f"terminal:{caller.terminal_id}",
    )

    def work(session: Session) -> BillOut:
        unit = bills.unit_label(session, unit_id=caller.unit_id)
        return _bill_out(bills.create_bill(session, bill, unit, now), now)

    return await _in_transaction(request, work)


@terminal_router.get(BILLS_PATH + "/{bill_number}")
def bill_status(bill_number: str, caller: TerminalCaller, db: Db, now: Now) -> BillOut:
    """Poll a bill of the terminal's unit: open, paid, cancelled or expired."""
    with db.session() as session:
        return _bill_out(bills.get_bill(session, caller.institution_code, bill_number), now)


@terminal_router.get(BILLS_PATH + "/{bill_number}/png", response_class=Response)
def bill_png(bill_number: str, caller: TerminalCaller, db: Db) -> Response:
    """The bill code as a PNG QR code for the customer display or the receipt."""
    with db.session() as session:
        return _png(bills.get_bill(session, caller.institution_code, bill_number).payload)


@terminal_router.post(BILLS_PATH + "/{bill_number}/cancel", response_model=BillOut)
async def cancel_bill(request: Request, bill_number: str, caller: TerminalCaller) -> BillOut:
    now = _now(request)
    actor = f"terminal:{caller.terminal_id}"

    def work(session: Session) -> BillOut:
        bill = bills.cancel_bill(session, caller.institution_code, bill_number, actor, now)
        audit.record(
            session,
            actor=actor,
            action="bill.cancelled",
            subject=f"bill:{bill.institution_code}:{bill.bill_number}",
            now=now,
            details={"amount_fen": bill.amount},
        )
        return _bill_out(bill, now)

    return await _in_transaction(request, work)


# --- bank ops and the HIS ----------------------------------------------------------------------


@ops_router.post("/cardholder-tokens", status_code=status.HTTP_201_CREATED)
def issue_cardholder_token(spec: CardholderTokenIn, db: Db, now: Now) -> CardholderTokenOut:
    """Issue the cardholder app's token for a card (shown once)."""

    def work(session: Session) -> CardholderTokenOut:
        issued = cardholders.issue_token(session, spec.card_number, now)
        audit.record(
            session,
            actor=OPS_ACTOR,
            action="cardholder_token.issued",
            subject=f"card:{issued.card_number}",
            now=now,
            details={"token_id": issued.token_id},
        )
        return CardholderTokenOut(
            token_id=issued.token_id, card_number=issued.card_number, token=issued.token
        )

    return db.transaction(work)


@ops_router.post("/cardholder-tokens/{token_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke_cardholder_token(token_id: PathId, db: Db, now: Now) -> None:
    def work(session: Session) -> None:
        cardholders.revoke_token(session, token_id, now)
        audit.record(
            session,
            actor=OPS_ACTOR,
            action="cardholder_token.revoked",
            subject=f"cardholder_token:{token_id}",
            now=now,
            details={},
        )

    db.transaction(work)


@ops_router.post("/bills", status_code=status.HTTP_201_CREATED)
def create_his_bill(request: Request, spec: HisBillIn, db: Db, now: Now) -> BillOut:
    """The HIS makes a bill code for one of its units (by institution code)."""
    validity = spec.valid_seconds or request.app.state.settings.bill_validity_seconds
    bill = bills.BillSpec(
        spec.institution_code,
        spec.bill_number,
        spec.amount_fen,
        validity,
        f"his:{spec.institution_code}",
    )

    def work(session: Session) -> BillOut:
        unit = bills.unit_label_by_code(session, spec.institution_code)
        return _bill_out(bills.create_bill(session, bill, unit, now), now)

    return db.transaction(work)


@ops_router.get("/bills/{institution_code}/{bill_number}")
def get_his_bill(institution_code: str, bill_number: str, db: Db, now: Now) -> BillOut:
    with db.session() as session:
        return _bill_out(bills.get_bill(session, institution_code, bill_number), now)
