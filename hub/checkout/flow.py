"""The checkout's driver: sends the platform messages the state machine writes, between
transactions, and hands each answer back.

A terminal request runs its step's messages at once (1101 -> 2201 -> 2204 -> 2206 for an
identification), so the cashier sees the split in one round trip. Every message is also in the
outbox, written with it: if the driver dies (the hub is killed, the platform does not answer)
the outbox worker resends the same msgid with the same request and carries the chain on, and
the platform answers a repeated msgid with its first answer. A lease on each message keeps two
drivers from sending it at once: the driver that writes a message holds it, and a driver that
dies lets its lease run out.
(Netflix Dispatch keeps such cross-domain orchestration in a flows module; so do we.)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import datetime

import structlog
from pydantic import BaseModel

from hub.checkout import answers, calls, messages, service
from hub.checkout.calls import CallInFlight, Lease, Outbound
from hub.checkout.errors import BillInvalid, BillNotFound, HisUnavailable
from hub.checkout.schemas import CheckoutOut, ReceiptOut, SelfPayIn
from hub.checkout.service import Caller, Credential, Rules
from hub.db import Database
from hub.outbox.service import Delivery, DeliveryFailed
from integrations.his import client as his_client
from integrations.his.client import HospitalInformationSystem
from integrations.medical_insurance.client import (
    Institution,
    InsuranceError,
    InsuranceTimeout,
    MedicalInsurance,
)

log = structlog.get_logger()
Clock = Callable[[], datetime]


class CallUnanswered(Exception):
    """No answer this time; the outbox resends the message later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InsurancePlatforms:
    """One insurance client per unit (institution code), made on first use.

    `factory` is the concrete client, chosen in hub/app.py. A new client signs in at once with
    a msgid from the database, so no msgid of this hub ever repeats, restarts included.
    """

    def __init__(self, factory: Callable[[Institution], MedicalInsurance]) -> None:
        self._factory = factory
        self._clients: dict[str, MedicalInsurance] = {}
        self._lock = threading.Lock()

    def client(
        self, institution: Institution, sign_in: Callable[[MedicalInsurance, str], None]
    ) -> MedicalInsurance:
        with self._lock:
            made = self._clients.get(institution.fixmedins_code)
            if made is None:
                made = self._factory(institution)
                sign_in(made, institution.fixmedins_code)
                self._clients[institution.fixmedins_code] = made
            return made

    def close(self) -> None:
        with self._lock:
            for made in self._clients.values():
                close = getattr(made, "close", None)
                if close is not None:
                    close()
            self._clients.clear()


class CheckoutFlow:
    """The hospital checkout as terminals and the outbox drive it."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        platforms: InsurancePlatforms,
        his: Callable[[], HospitalInformationSystem],
        rules: Rules,
    ) -> None:
        """`his` makes the HIS client on first use: an app that never checks out a bill (most
        tests, the CLI) does not pay for an HTTP client it does not need."""
        self.db = db
        self.clock = clock
        self.platforms = platforms
        self.rules = rules
        self._his_factory = his
        self._his: HospitalInformationSystem | None = None
        self._his_lock = threading.Lock()

    # ---- terminal requests ----

    def open(self, caller: Caller, bill_no: str) -> CheckoutOut:
        """Fetch the bill from the HIS and start its checkout (the same bill again: the same)."""
        bill = self._bill(bill_no)
        now = self.clock()
        return self.db.transaction(
            lambda s: service.checkout_out(service.open_checkout(s, bill, caller, now))
        )

    def identify(self, caller: Caller, checkout_id: int, credential: Credential) -> CheckoutOut:
        """Identify the patient and run 1101, 2201, 2204 and 2206: the split, if all answer."""
        lease = Lease.new(self.rules.lease_seconds)
        now = self.clock()
        first = self.db.transaction(
            lambda s: service.identify(s, checkout_id, credential, caller, lease, now)
        )
        return self._run(first, lease, caller, checkout_id)

    def settle(self, caller: Caller, checkout_id: int, self_pay: SelfPayIn) -> CheckoutOut:
        """Collect the cash part, settle with the platform, post the ledger."""
        lease = Lease.new(self.rules.lease_seconds)
        now = self.clock()
        first = self.db.transaction(
            lambda s: service.collect_self_pay(
                s, checkout_id, self_pay, caller, lease, self.rules, now
            )
        )
        return self._run(first, lease, caller, checkout_id)

    def revoke(self, caller: Caller, checkout_id: int) -> CheckoutOut:
        """Revoke the settlement with the platform, reverse every leg, refund the self-pay."""
        lease = Lease.new(self.rules.lease_seconds)
        now = self.clock()
        first = self.db.transaction(
            lambda s: service.request_revoke(s, checkout_id, caller, lease, now)
        )
        return self._run(first, lease, caller, checkout_id)

    def view(self, caller: Caller, checkout_id: int) -> CheckoutOut:
        with self.db.session() as session:
            return service.checkout_out(service.get_checkout(session, checkout_id, caller))

    def receipt(self, caller: Caller, checkout_id: int) -> ReceiptOut:
        with self.db.session() as session:
            return service.receipt(session, checkout_id, caller)

    # ---- the outbox ----

    def __call__(self, delivery: Delivery) -> None:
        """The outbox handler of `calls.TOPIC`: send (or resend) one message and go on."""
        lease = Lease.new(self.rules.lease_seconds)
        call_id, now = int(delivery.payload["call_id"]), self.clock()
        try:
            outbound = self.db.transaction(lambda s: calls.take_call(s, call_id, lease, now))
            self.drive(outbound, lease)
        except CallInFlight as exc:
            raise DeliveryFailed(str(exc)) from None
        except CallUnanswered as exc:
            raise DeliveryFailed(exc.reason) from None

    # ---- the driver ----

    def drive(self, outbound: Outbound | None, lease: Lease) -> None:
        """Send messages leased to this driver until the chain ends; CallUnanswered when one
        goes unanswered (its lease is let go, and the outbox sends it again)."""
        while outbound is not None:
            outbound = self._exchange(outbound, lease)

    def _exchange(self, outbound: Outbound, lease: Lease) -> Outbound | None:
        """Send one message and record what came back; returns the next message, if any."""
        started = time.perf_counter()
        client = self.client_for(outbound.institution(self.rules.operator))
        try:
            answer = messages.send(client, outbound.infno, outbound.msgid, outbound.request)
        except InsuranceTimeout as exc:
            self._unanswered(outbound, lease, exc.reason, started)
        except InsuranceError as exc:
            if exc.duplicate_msgid or exc.sign_in_required:
                # Not a verdict on the message: the same msgid goes again later.
                self._unanswered(outbound, lease, f"[{exc.infcode}] {exc.err_msg}", started)
            self._refused(outbound, exc, started)
            return None
        return self._answered(outbound, answer, lease, started)

    def _answered(
        self, outbound: Outbound, answer: BaseModel, lease: Lease, started: float
    ) -> Outbound | None:
        now = self.clock()
        next_call = self.db.transaction(
            lambda s: answers.record_answer(s, outbound.call_id, answer, lease, self.rules, now)
        )
        self._log(outbound, "answered", started)
        return next_call

    def _refused(self, outbound: Outbound, exc: InsuranceError, started: float) -> None:
        now = self.clock()
        self.db.transaction(
            lambda s: answers.record_refusal(s, outbound.call_id, exc.infcode, exc.err_msg, now)
        )
        self._log(outbound, "refused", started, infcode=exc.infcode)

    def _unanswered(self, outbound: Outbound, lease: Lease, reason: str, started: float) -> None:
        now = self.clock()
        self.db.transaction(lambda s: calls.release_call(s, outbound.call_id, lease, reason, now))
        self._log(outbound, "unanswered", started, reason=reason)
        raise CallUnanswered(reason)

    def client_for(self, institution: Institution) -> MedicalInsurance:
        """The unit's insurance client, signed in on first use."""
        return self.platforms.client(institution, self._sign_in)

    def _sign_in(self, client: MedicalInsurance, institution_code: str) -> None:
        """Sign a new client in with a msgid of ours; if that fails it signs itself in later."""
        call_id, msgid = self.db.transaction(
            lambda s: calls.allocate_msgid(s, institution_code, messages.SIGN_IN, self.clock())
        )
        try:
            signed = client.sign_in(msgid)
        except (InsuranceError, InsuranceTimeout) as exc:
            reason = str(exc)
            self.db.transaction(
                lambda s: calls.note_outcome(s, call_id, None, reason, self.clock())
            )
            return
        self.db.transaction(lambda s: calls.note_outcome(s, call_id, signed, None, self.clock()))

    def _run(self, first: Outbound, lease: Lease, caller: Caller, checkout_id: int) -> CheckoutOut:
        # Unanswered: the checkout shows in_flight, and the outbox carries it on.
        with contextlib.suppress(CallUnanswered):
            self.drive(first, lease)
        return self.view(caller, checkout_id)

    def close(self) -> None:
        """Close the clients made so far."""
        self.platforms.close()
        close = getattr(self._his, "close", None)
        if close is not None:
            close()

    @property
    def his(self) -> HospitalInformationSystem:
        with self._his_lock:
            if self._his is None:
                self._his = self._his_factory()
            return self._his

    def _bill(self, bill_no: str) -> his_client.Bill:
        try:
            return self.his.bill(bill_no)
        except his_client.BillNotFound:
            raise BillNotFound(message=f"the HIS has no bill {bill_no}") from None
        except his_client.InvalidBill as exc:
            raise BillInvalid(message=exc.reason) from None
        except his_client.HisUnavailable as exc:
            raise HisUnavailable(message=f"the HIS did not answer: {exc.reason}") from None

    @staticmethod
    def _log(outbound: Outbound, outcome: str, started: float, **fields: object) -> None:
        log.info(
            "insurance_message",
            checkout_id=outbound.checkout_id,
            infno=outbound.infno,
            msgid=outbound.msgid,
            outcome=outcome,
            ms=round((time.perf_counter() - started) * 1000, 1),
            **fields,
        )
