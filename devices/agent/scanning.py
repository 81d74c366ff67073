"""The agent's scan flow: codes from the scan engine or camera go to the hub, signed.

A payment-code submission carries the sale's transaction id, chosen here once per sale, so a
retry (after a timeout, a dropped connection, a restart) can never charge twice: the hub
answers a repeated transaction id with the first result. When the hub cannot be reached the
submission goes into the outbox under that id, so the hub still learns of it and the cashier
can ask for its outcome (`payment_status`) before taking another code for the same sale.
Camera frames are too large for the outbox: an unanswered frame is reported as unknown and
resolved the same way.

The paths and JSON fields here are the hub's (hub/payments/code_endpoints.py); the agent
imports nothing from the hub.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from devices.agent.hub_client import (
    HubAnswerInvalid,
    HubClient,
    HubRefused,
    HubUnavailable,
    parse_answer,
    path_segment,
    read_answer,
)
from devices.agent.outbox import Outbox, OutboxFull
from devices.scanner.camera import CapturedFrame
from devices.scanner.framing import RejectedScan, Scan

T = TypeVar("T")

PAY_PATH = "/api/terminal/payment-codes/payments"
SCANS_PATH = "/api/terminal/scans"
FRAMES_PATH = "/api/terminal/frames"
BILLS_PATH = "/api/terminal/bills"

Status = Literal["paid", "bill", "identified", "refused", "unknown"]


def new_transaction_id() -> str:
    """A sale's id: unique per terminal, at most 36 characters."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ScanAnswer:
    """What the cashier's screen shows after a scan."""

    status: Status
    code: str | None = None  # the hub's refusal code, or "hub_unavailable"
    message: str = ""
    transaction_id: str | None = None
    payment: dict[str, Any] | None = None
    bill: dict[str, Any] | None = None
    checkout_id: int | None = None
    queued: bool = field(default=False)  # the submission waits in the outbox


class CodePayment(BaseModel):
    """What the hub says of a paid sale; only the hub's own word may show "paid"."""

    model_config = ConfigDict(extra="allow")

    transaction_id: str
    status: Literal["paid"]
    payment_id: StrictInt
    amount_fen: StrictInt


class BillAnswer(BaseModel):
    """What the hub says of a bill code: its status, and the payload to show as a QR code."""

    model_config = ConfigDict(extra="allow")

    bill_number: StrictStr
    amount_fen: StrictInt
    status: Literal["open", "paid", "cancelled", "expired"]
    payload: StrictStr
    payment_id: StrictInt | None = None


def _paid(reply: Any) -> dict[str, Any]:
    parse_answer(CodePayment, reply)
    return dict(reply)


def _bill(reply: Any) -> dict[str, Any]:
    parse_answer(BillAnswer, reply)
    return dict(reply)


def _answer_of(reply: dict[str, Any], transaction_id: str | None) -> ScanAnswer:
    """A scan's answer: {"kind": "payment_code", "payment": ...}, {"kind": "bill_code", ...} or
    {"kind": "evoucher", "checkout_id": ...}: the patient of the window's checkout is identified.
    Anything else is HubAnswerInvalid: the outcome of the scan is unknown."""
    kind = reply.get("kind")
    if kind == "bill_code" and isinstance(reply.get("bill"), dict):
        return ScanAnswer("bill", transaction_id=transaction_id, bill=reply["bill"])
    if kind == "evoucher" and type(reply.get("checkout_id")) is int:
        return ScanAnswer("identified", checkout_id=reply["checkout_id"])
    if kind == "payment_code":
        return ScanAnswer(
            "paid", transaction_id=transaction_id, payment=_paid(reply.get("payment"))
        )
    raise HubAnswerInvalid("the hub's answer to a scan is not one the terminal knows")


class ScanDesk:
    """One scanning terminal's conversation with the hub about codes and bills."""

    def __init__(
        self,
        client: HubClient,
        outbox: Outbox | None = None,
        *,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def _with_retries(self, call: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except HubUnavailable:
                if attempt == self.attempts:
                    raise
                self.sleep(self.backoff_seconds * attempt)
        raise AssertionError("unreachable")

    def submit_text(
        self, text: str, *, transaction_id: str | None = None, amount_fen: int | None = None
    ) -> ScanAnswer:
        """Send a scanned code; with an amount it is a sale (a payment code pays it)."""
        body: dict[str, Any] = {"text": text}
        if amount_fen is not None:
            transaction_id = transaction_id or new_transaction_id()
            body |= {"transaction_id": transaction_id, "amount_fen": amount_fen}
        try:
            return self._with_retries(
                lambda: _answer_of(self.client.post(SCANS_PATH, body), transaction_id)
            )
        except HubRefused as exc:
            return ScanAnswer("refused", exc.code, exc.message, transaction_id)
        except HubUnavailable as exc:
            return ScanAnswer(
                "unknown", "hub_unavailable", str(exc), transaction_id, queued=self._queue(body)
            )

    def _queue(self, body: dict[str, Any]) -> bool:
        """Keep a sale whose outcome is unknown, so the hub hears of it once it is back."""
        if self.outbox is None or "transaction_id" not in body:
            return False
        try:
            self.outbox.put(SCANS_PATH, body, f"scan:{body['transaction_id']}")
        except OutboxFull:
            return False
        return True

    def submit_frame(
        self,
        frame: CapturedFrame,
        *,
        transaction_id: str | None = None,
        amount_fen: int | None = None,
    ) -> ScanAnswer:
        """Send a camera frame; the hub finds the code in it and routes it like a scan."""
        query: dict[str, Any] = {}
        if amount_fen is not None:
            transaction_id = transaction_id or new_transaction_id()
            query = {"transaction_id": transaction_id, "amount_fen": amount_fen}
        path = FRAMES_PATH + (f"?{urlencode(query)}" if query else "")
        try:
            return self._with_retries(
                lambda: _answer_of(
                    read_answer(self.client.send("POST", path, frame.data)), transaction_id
                )
            )
        except HubRefused as exc:
            return ScanAnswer("refused", exc.code, exc.message, transaction_id)
        except HubUnavailable as exc:
            return ScanAnswer("unknown", "hub_unavailable", str(exc), transaction_id)

    def submit(self, scan: Scan | RejectedScan, *, amount_fen: int | None = None) -> ScanAnswer:
        """A scan from the engine: a rejected line is answered here without the hub."""
        if isinstance(scan, RejectedScan):
            return ScanAnswer("refused", f"scan_{scan.reason}", "scan again")
        return self.submit_text(scan.text, amount_fen=amount_fen)

    def payment_status(self, transaction_id: str) -> ScanAnswer:
        """The outcome of a sale whose answer never arrived (`refused` payment_not_found: none)."""
        try:
            reply = self._with_retries(
                lambda: _paid(self.client.get(f"{PAY_PATH}/{path_segment(transaction_id)}"))
            )
        except HubRefused as exc:
            return ScanAnswer("refused", exc.code, exc.message, transaction_id)
        except HubUnavailable as exc:
            return ScanAnswer("unknown", "hub_unavailable", str(exc), transaction_id)
        return ScanAnswer("paid", transaction_id=transaction_id, payment=reply)

    # Bills shown by a cashier's terminal: each answer is a bill (`BillAnswer`) or HubRefused /
    # HubUnavailable (HubAnswerInvalid when the answer is no bill); nothing else escapes.

    def create_bill(
        self, bill_number: str, amount_fen: int, *, valid_seconds: int | None = None
    ) -> dict[str, Any]:
        """Make a bill code for this unit; the answer holds `payload` to show as a QR code."""
        body: dict[str, Any] = {"bill_number": bill_number, "amount_fen": amount_fen}
        if valid_seconds is not None:
            body["valid_seconds"] = valid_seconds
        return self._with_retries(lambda: _bill(self.client.post(BILLS_PATH, body)))

    def bill_status(self, bill_number: str) -> dict[str, Any]:
        path = f"{BILLS_PATH}/{path_segment(bill_number)}"
        return self._with_retries(lambda: _bill(self.client.get(path)))

    def cancel_bill(self, bill_number: str) -> dict[str, Any]:
        path = f"{BILLS_PATH}/{path_segment(bill_number)}/cancel"
        return self._with_retries(lambda: _bill(self.client.post(path, {})))

    def wait_for_bill(
        self,
        bill_number: str,
        *,
        timeout_seconds: float,
        interval_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, Any]:
        """Poll until the bill is no longer open (paid, cancelled, expired) or time runs out."""
        deadline = clock() + timeout_seconds
        while True:
            bill = self.bill_status(bill_number)
            if bill["status"] != "open" or clock() >= deadline:
                return bill
            self.sleep(interval_seconds)
