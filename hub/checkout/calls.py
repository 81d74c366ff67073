"""The platform messages of checkouts: written with a restart-safe msgid and their exact
request before they are sent, leased to the one driver sending them, and promised to the
outbox in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from hub.checkout import messages
from hub.checkout import repository as repo
from hub.checkout.models import CallState, Checkout, PlatformCall
from hub.checkout.states import ERROR_CHARS
from hub.outbox import service as outbox
from integrations.medical_insurance.client import Institution, make_msgid

TOPIC = "checkout.platform_call"


@dataclass(frozen=True)
class Lease:
    """A driver's claim on the messages it sends: a token, and how long it holds."""

    token: str
    seconds: float

    @classmethod
    def new(cls, seconds: float) -> Lease:
        return cls(uuid.uuid4().hex, seconds)


@dataclass(frozen=True)
class Outbound:
    """One message to send, leased to the driver that holds it."""

    call_id: int
    checkout_id: int
    infno: str
    msgid: str
    request: dict[str, Any]
    institution_code: str
    institution_name: str
    admin_division: str

    def institution(self, operator: str) -> Institution:
        """Who sends it: the checkout's unit, as the platform knows it."""
        return Institution(
            fixmedins_code=self.institution_code,
            fixmedins_name=self.institution_name,
            mdtrtarea_admvs=self.admin_division,
            opter=operator,
            opter_name=operator,
        )


class CallInFlight(Exception):
    """Another driver holds this message's lease and may be waiting for its answer."""


def write(
    session: Session,
    checkout: Checkout,
    infno: str,
    request: BaseModel,
    lease: Lease | None,
    now: datetime,
) -> Outbound:
    """Write a checkout's next message, leased to the driver at hand (if any)."""
    call = new_call(
        session, checkout.institution_code, infno, request, now, checkout=checkout, lease=lease
    )
    # The outbox message is the promise that this call is sent, whatever happens to the driver.
    outbox.enqueue(
        session,
        topic=TOPIC,
        event_id=f"insurance:{call.msgid}",
        payload={"call_id": call.id},
        now=now,
    )
    return outbound_of(call, checkout)


def outbound_of(call: PlatformCall, checkout: Checkout) -> Outbound:
    assert call.msgid is not None
    return Outbound(
        call.id,
        checkout.id,
        call.infno,
        call.msgid,
        call.request,
        checkout.institution_code,
        checkout.institution_name,
        checkout.admin_division,
    )


def new_call(
    session: Session,
    institution_code: str,
    infno: str,
    request: BaseModel | None,
    now: datetime,
    *,
    checkout: Checkout | None = None,
    lease: Lease | None = None,
) -> PlatformCall:
    """Write a message with a restart-safe msgid: its sequence is the row's id."""
    call = PlatformCall(
        checkout_id=checkout.id if checkout else None,
        institution_code=institution_code,
        infno=infno,
        request=messages.dump(request) if request is not None else {},
        state=CallState.PENDING.value,
        attempts=0 if lease is None else 1,
        lease_token=lease.token if lease else None,
        lease_until=now + timedelta(seconds=lease.seconds) if lease else None,
        created_at=now,
    )
    repo.add(session, call)
    call.msgid = make_msgid(institution_code, now, call.id % 10_000)
    session.flush()
    return call


def allocate_msgid(
    session: Session,
    institution_code: str,
    infno: str,
    now: datetime,
    request: BaseModel | None = None,
) -> tuple[int, str]:
    """A message outside any checkout (sign-in, reconciliation): its row id and msgid."""
    call = new_call(session, institution_code, infno, request, now)
    assert call.msgid is not None
    return call.id, call.msgid


def note_outcome(
    session: Session, call_id: int, answer: BaseModel | None, error: str | None, now: datetime
) -> None:
    """Keep what became of a message outside any checkout."""
    call = repo.call(session, call_id, lock=True)
    if call is None or call.state != CallState.PENDING:
        return
    call.answered_at = now
    if answer is not None:
        call.state, call.answer = CallState.ANSWERED.value, messages.dump(answer)
    else:
        call.state, call.error = CallState.REFUSED.value, (error or "")[:ERROR_CHARS]


def take_call(session: Session, call_id: int, lease: Lease, now: datetime) -> Outbound | None:
    """Claim a message for sending; None when it is answered already.

    Raises CallInFlight while another driver's lease on it has not run out.
    """
    call = repo.call(session, call_id, lock=True)
    if call is None or call.state != CallState.PENDING:
        return None
    leased = call.lease_until is not None and call.lease_until > now
    if leased and call.lease_token != lease.token:
        raise CallInFlight(f"message {call.msgid} is being sent by another driver")
    call.lease_token, call.lease_until = lease.token, now + timedelta(seconds=lease.seconds)
    call.attempts += 1
    checkout = repo.checkout(session, call.checkout_id) if call.checkout_id else None
    assert checkout is not None
    return outbound_of(call, checkout)


def release_call(session: Session, call_id: int, lease: Lease, reason: str, now: datetime) -> None:
    """No answer came: let the lease go so the outbox may resend the message at once."""
    call = repo.call(session, call_id, lock=True)
    if call is None or call.state != CallState.PENDING or call.lease_token != lease.token:
        return
    call.lease_until, call.error = now, reason[:ERROR_CHARS]
