"""Moving a checkout between states, each move with its log line and (where it matters) its
audit entry, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.checkout.errors import CheckoutNotFound, CheckoutOfAnotherUnit, WrongState
from hub.checkout.legs import reference
from hub.checkout.models import Checkout, CheckoutState
from hub.payments.service import Caller

log = structlog.get_logger()
ERROR_CHARS = 255


def owned(checkout: Checkout | None, caller: Caller) -> Checkout:
    if checkout is None:
        raise CheckoutNotFound(message="no such checkout")
    if caller.unit_id is not None and checkout.unit_id != caller.unit_id:
        raise CheckoutOfAnotherUnit(message="this checkout belongs to another unit")
    return checkout


def require(checkout: Checkout, state: CheckoutState) -> None:
    if checkout.state != state:
        raise WrongState(message=f"the checkout is {checkout.state}, not {state.value}")


def move(checkout: Checkout, state: CheckoutState, now: datetime) -> None:
    log.info("checkout_state", checkout_id=checkout.id, was=checkout.state, now=state.value)
    checkout.state, checkout.updated_at = state.value, now


def fail(session: Session, checkout: Checkout, code: str, message: str, now: datetime) -> None:
    checkout.failure_code, checkout.failure_message = code, message[:ERROR_CHARS]
    move(checkout, CheckoutState.FAILED, now)
    note(session, checkout, "system", "checkout.failed", now, failure_code=code)


def note(
    session: Session, checkout: Checkout, actor: str, action: str, now: datetime, **details: object
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        subject=reference(checkout),
        now=now,
        details={"unit": checkout.institution_code, "bill_no": checkout.bill_no, **details},
    )
