"""The agent's card-tap flow: the reader reads the card, the hub authorises, the card hears back.

    flow = CardTapFlow(client, outbox, state_dir, pin_threshold_fen=config.pin_entry_threshold_fen)
    result = flow.pay(12_345)              # wait for a card, read it, authorise, complete it
    flow.capture(result.payment_id)        # at checkout; queued in the outbox if the hub is away

Whenever the money may be held but the sale did not happen (the hub's answer was lost, the card
was pulled before it accepted the approval, the card refused the issuer's answer) the flow sends
a reversal, through the outbox when the hub cannot be reached. Nothing here imports the hub, and
no log line carries more of the PAN than its masked form.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import BaseModel, Field, StrictBool, StrictInt

from devices.agent.agent import NotEnrolled, TerminalAgent
from devices.agent.hub_client import (
    HubAnswerInvalid,
    HubClient,
    HubRefused,
    HubUnavailable,
    parse_answer,
)
from devices.agent.outbox import RETRY_LATER, Outbox, OutboxFull
from devices.emv.pinblock import encipher_pinblock_iso4
from devices.pcsc.channel import CardChannel
from devices.pcsc.debit import complete
from devices.pcsc.errors import ReaderError
from devices.pcsc.models import CardRead, TerminalData
from devices.pcsc.reader import list_readers, wait_for_card, wait_for_removal
from devices.pcsc.tap import read_card
from devices.protocol import pin_key
from devices.protocol.card_payments import (
    CARD_PAYMENTS_PATH,
    REVERSALS_PATH,
    capture_path,
    refunds_path,
    void_path,
)

log = logging.getLogger(__name__)
UNABLE_TO_GO_ONLINE = b"Z3"  # EMV: the terminal could not reach the issuer; the card declines


class Authorization(BaseModel):
    """The fields of the hub's answer to a tap that go to the card and the cashier's screen."""

    approved: StrictBool  # required: an answer without it is unreadable, so the hold is reversed
    payment_id: StrictInt | None = None
    response_code: Annotated[str, Field(pattern=r"^[0-9A-Z]{2}$")] | None = None
    arpc: Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{16}$")] | None = None  # 8 bytes
    decline_code: Annotated[str, Field(max_length=64)] | None = None


class PinKeyAnswer(BaseModel):
    version: Annotated[StrictInt, Field(ge=1)]
    hub_public_key: str


@dataclass(frozen=True)
class TapResult:
    """What the cashier's screen shows about one tap."""

    transaction_id: str
    approved: bool
    payment_id: int | None
    decline_code: str | None
    response_code: str
    card_number: str
    holder_name: str
    pan_masked: str
    card_cryptogram: str  # the card's last word: "TC" approves, "AAC" declines
    reversal: str | None = None  # "sent", "queued" or "outbox_full" when a hold had to go


class PinKeySlot:
    """The terminal's PIN key on disk, readable by its user only (a secure element in the
    field). Holds the version the hub numbered it with."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "pin_key.json"

    def load(self) -> tuple[int, bytes] | None:
        if not self.path.exists():
            return None
        data = json.loads(self.path.read_text())
        return int(data["version"]), bytes.fromhex(data["key"])

    def save(self, version: int, key: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"version": version, "key": key.hex()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def new_transaction_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}"


class CardTapFlow:
    def __init__(
        self,
        client: HubClient,
        outbox: Outbox,
        state_dir: Path,
        *,
        pin_threshold_fen: int,
        pin_pad: Callable[[], str] | None = None,
        readers: Sequence[str] | None = None,
        merchant_name: str = "",
        card_timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.pin_keys = PinKeySlot(state_dir)
        self.pin_threshold_fen = pin_threshold_fen
        self.pin_pad = pin_pad
        self.readers = readers
        self.merchant_name = merchant_name
        self.card_timeout = card_timeout

    # --- PIN key ---

    def agree_pin_key(self) -> int:
        """Agree a fresh PIN key with the hub (X25519 + HKDF); returns its version."""
        own = X25519PrivateKey.generate()
        answer = parse_answer(
            PinKeyAnswer,
            self.client.post(pin_key.PIN_KEY_PATH, {"public_key": pin_key.public_key_text(own)}),
        )
        try:
            peer = pin_key.load_public_key(answer.hub_public_key)
            key = pin_key.derive_pin_key(own, peer, self.client.terminal_id, answer.version)
        except pin_key.PinKeyError as exc:
            raise HubAnswerInvalid(f"the hub's PIN key is not usable: {exc}") from None
        self.pin_keys.save(answer.version, key)
        return answer.version

    # --- the tap ---

    def pay(self, amount: int, transaction_id: str | None = None) -> TapResult:
        """Wait for a card, read it, authorise with the hub and complete the card."""
        transaction_id = transaction_id or new_transaction_id()
        channel = wait_for_card(self.readers, self.card_timeout)
        try:
            terminal = TerminalData(amount=amount, merchant_name=self.merchant_name)
            read = read_card(channel, terminal)
            return self._authorise(channel, read, terminal, transaction_id)
        finally:
            channel.close()

    def wait_for_removal(self, reader: str, timeout: float = 30.0) -> bool:
        return wait_for_removal(reader, timeout)

    def _authorise(
        self, channel: CardChannel, read: CardRead, terminal: TerminalData, transaction_id: str
    ) -> TapResult:
        try:
            body = self._request(read, terminal, transaction_id)
        except (HubUnavailable, HubRefused) as exc:  # no PIN key: nothing was authorised
            code = exc.code if isinstance(exc, HubRefused) else "hub_unreachable"
            return self._finish(channel, read, terminal, transaction_id, None, code, None)
        try:
            answer = parse_answer(Authorization, self.client.post(CARD_PAYMENTS_PATH, body))
        except HubUnavailable:  # or an answer it cannot read: the outcome is just as unknown
            # The request may have reached the hub and held money: release it, whenever we can.
            reversal = self.reverse(transaction_id)
            return self._finish(
                channel, read, terminal, transaction_id, None, "hub_unreachable", reversal
            )
        except HubRefused as refusal:
            return self._finish(channel, read, terminal, transaction_id, None, refusal.code, None)
        return self._finish(channel, read, terminal, transaction_id, answer, None, None)

    def _request(
        self, read: CardRead, terminal: TerminalData, transaction_id: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "transaction_id": transaction_id,
            "amount": terminal.amount,
            "card": {
                "pan": read.debit.pan,
                "psn": read.debit.psn,
                "card_number": read.social_security.card_number,
            },
            "icc_data": read.arqc.icc_data().hex().upper(),
        }
        if terminal.amount >= self.pin_threshold_fen and self.pin_pad is not None:
            stored = self.pin_keys.load()
            if stored is None:
                self.agree_pin_key()
                stored = self.pin_keys.load()
            assert stored is not None
            version, key = stored
            block = encipher_pinblock_iso4(key, self.pin_pad(), read.debit.pan)
            body["pin_block"] = block.hex().upper()
            body["pin_key_version"] = version
        return body

    def _finish(
        self,
        channel: CardChannel,
        read: CardRead,
        terminal: TerminalData,
        transaction_id: str,
        answer: Authorization | None,
        refused: str | None,
        reversal: str | None,
    ) -> TapResult:
        """Second GENERATE AC; an approval the card does not confirm is reversed."""
        answer = answer or Authorization(approved=False)
        code = answer.response_code or ""
        arpc = bytes.fromhex(answer.arpc) if answer.arpc else None
        try:
            done = complete(
                channel, read.debit, terminal, code.encode() or UNABLE_TO_GO_ONLINE, arpc
            )
            cryptogram = done.cryptogram.kind
        except ReaderError:
            cryptogram = "none"  # the card left before it could answer
        approved = answer.approved and cryptogram == "TC"
        if answer.approved and not approved:
            reversal = self.reverse(transaction_id)
        result = TapResult(
            transaction_id=transaction_id,
            approved=approved,
            payment_id=answer.payment_id,
            decline_code=None if approved else (answer.decline_code or refused or "card_declined"),
            response_code=code,
            card_number=read.social_security.card_number,
            holder_name=read.social_security.holder_name,
            pan_masked=read.debit.pan_masked,
            card_cryptogram=cryptogram,
            reversal=reversal,
        )
        log.info(
            "card_tap transaction=%s card=%s approved=%s decline=%s card_says=%s",
            transaction_id,
            result.pan_masked,
            result.approved,
            result.decline_code,
            cryptogram,
        )
        return result

    # --- after the tap ---

    def capture(self, payment_id: int, amount: int | None = None) -> str:
        """Capture now, or queue the capture when the hub is unreachable ("captured"/"queued";
        "outbox_full" when it could do neither)."""
        body = {} if amount is None else {"amount": amount}
        sent = self._send_or_queue(capture_path(payment_id), body, f"capture:{payment_id}")
        return "captured" if sent == "sent" else sent

    def reverse(self, transaction_id: str) -> str:
        """Release whatever the hub holds for this transaction ("sent"/"queued"/"outbox_full",
        or "refused:<code>" when the hub says no for good). It never raises: a tap must end in
        a result for the cashier."""
        body = {"transaction_id": transaction_id}
        message_id = f"reversal:{transaction_id}"
        try:
            return self._send_or_queue(REVERSALS_PATH, body, message_id)
        except HubRefused as exc:
            if exc.status in RETRY_LATER:  # e.g. clock skew: the outbox tries again later
                return self._queue(REVERSALS_PATH, body, message_id)
            log.warning("reversal_refused message=%s code=%s", message_id, exc.code)
            return f"refused:{exc.code}"

    def void(self, payment_id: int) -> dict[str, Any]:
        return self.client.post(void_path(payment_id), {})

    def refund(self, payment_id: int, refund_id: str, amount: int) -> dict[str, Any]:
        return self.client.post(
            refunds_path(payment_id), {"refund_id": refund_id, "amount": amount}
        )

    def _send_or_queue(self, path: str, body: dict[str, Any], message_id: str) -> str:
        """Returns "sent", "queued" or "outbox_full" (neither: the hub will not hear of it)."""
        if self.outbox.depth() == 0:  # with messages waiting, order says: queue behind them
            try:
                self.client.post(path, body)
                return "sent"
            except HubUnavailable:
                pass
        return self._queue(path, body, message_id)

    def _queue(self, path: str, body: dict[str, Any], message_id: str) -> str:
        try:
            self.outbox.put(path, body, message_id)
        except OutboxFull:
            log.warning("outbox_full message=%s not queued", message_id)
            return "outbox_full"
        log.info("queued_for_hub message=%s", message_id)
        return "queued"


def for_agent(agent: TerminalAgent, *, pin_pad: Callable[[], str] | None = None) -> CardTapFlow:
    """The card-tap flow of an enrolled agent: its signed client and outbox, and the reader,
    PIN threshold and timeout of its current configuration."""
    if agent.client is None:
        raise NotEnrolled("this terminal is not enrolled")
    settings = agent.config.config.card_reader if agent.config else None
    if settings is None:
        return CardTapFlow(
            agent.client, agent.outbox, agent.state_dir, pin_threshold_fen=0, pin_pad=pin_pad
        )
    attached = list_readers()
    readers = [r for r in attached if fnmatch.fnmatch(r, settings.pcsc_reader_pattern)]
    if not readers:
        log.warning(
            "no reader matches %s; using every attached reader", settings.pcsc_reader_pattern
        )
    return CardTapFlow(
        agent.client,
        agent.outbox,
        agent.state_dir,
        pin_threshold_fen=settings.pin_entry_threshold_fen,
        pin_pad=pin_pad,
        readers=readers or None,
    )
