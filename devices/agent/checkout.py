"""The cashier's checkout at a combo terminal: the bill, the patient, the split, the self-pay,
the receipt.

    desk = CheckoutDesk(client, card_taps=CardTapFlow(...))
    receipt = desk.checkout("MZ000123", confirm=show_split)   # card in the reader: all of it

or step by step:

    view = desk.open("MZ000123")                           # the HIS bill, at the hub
    view = desk.identify_by_card(view.checkout_id)         # or identify_by_code(scanned text)
    show(view.pre_settlement)                              # the fund, the account, the cash part
    view = desk.pay_by_tap(view)                           # the card pays the cash part
    print(desk.receipt(view.checkout_id).text())

The hub talks to the insurance platform; when it cannot get an answer at once it says so
(`in_flight`) and finishes through its outbox, and the desk polls until the checkout stands
still. A card tap that the hub did not take for the checkout is reversed, so no money stays
held for a checkout that did not happen. The paths and fields are the hub's
(hub/checkout/endpoints.py); the agent imports nothing from the hub, and no log line carries
more of a card than its masked number.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from devices.agent.card_tap import CardTapFlow, TapResult
from devices.agent.hub_client import HubClient, HubRefused, HubUnavailable, parse_answer
from devices.agent.scanning import CodePayment
from devices.pcsc.channel import CardChannel
from devices.pcsc.reader import wait_for_card
from devices.pcsc.social_security import read_social_security

log = logging.getLogger(__name__)

CHECKOUTS_PATH = "/api/terminal/checkouts"
PAY_WITH_CODE_PATH = "/api/terminal/payment-codes/payments"


Fen = Annotated[StrictInt, Field(ge=0, le=999_999_999_999)]  # EMV amounts are 12 digits


class _Answer(BaseModel):
    """A part of a hub answer, read strictly; fields the terminal does not use are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Split(_Answer):
    """Who pays what, in fen: medfee = fund + account + cash."""

    medfee: Fen
    fund: Fen
    account: Fen
    cash: Fen


class CheckoutView(_Answer):
    """The checkout as the hub last said it stands."""

    checkout_id: Annotated[StrictInt, Field(ge=1)]
    state: StrictStr
    in_flight: StrictBool
    bill_no: StrictStr
    medfee: Fen
    patient_name: StrictStr | None = None
    pre_settlement: Split | None = None
    settlement: Split | None = None
    payment_id: StrictInt | None = None
    failure_code: StrictStr | None = None
    failure_message: StrictStr | None = None

    @classmethod
    def of(cls, data: Any) -> CheckoutView:
        """The hub's answer as a view; HubAnswerInvalid when it is not one."""
        return parse_answer(cls, data)


class ReceiptLine(_Answer):
    name: StrictStr
    quantity: StrictStr
    price_fen: StrictInt
    amount_fen: StrictInt


class Receipt(_Answer):
    """What the terminal prints; `data` is the hub's whole answer."""

    model_config = ConfigDict(frozen=True, extra="allow")

    institution_name: StrictStr
    bill_no: StrictStr
    setl_id: StrictStr
    patient_name: StrictStr
    lines: list[ReceiptLine]
    split: Split
    card: StrictStr | None = None
    revoked: StrictBool = False
    revoke_setl_id: StrictStr | None = None

    @property
    def data(self) -> dict[str, Any]:
        return self.model_dump()

    def text(self) -> str:
        split = self.split
        lines = [
            self.institution_name,
            f"Bill {self.bill_no}  Settlement {self.setl_id}",
            f"Patient {self.patient_name}",
        ]
        lines += [
            f"{line.name}  {line.quantity} x {_yuan(line.price_fen)}  {_yuan(line.amount_fen)}"
            for line in self.lines
        ]
        lines += [
            f"Total            {_yuan(split.medfee)}",
            f"Insurance fund   {_yuan(split.fund)}",
            f"Personal account {_yuan(split.account)}",
            f"Paid by card     {_yuan(split.cash)}" + (f"  {self.card}" if self.card else ""),
        ]
        if self.revoked:
            lines.append(f"REVOKED {self.revoke_setl_id}")
        return "\n".join(lines)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


class CheckoutRefused(Exception):
    """The hub refused a step; `code` is its stable error code, or the checkout's failure."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class CheckoutDesk:
    """One cashier's checkouts through one terminal."""

    def __init__(
        self,
        client: HubClient,
        *,
        card_taps: CardTapFlow | None = None,
        readers: list[str] | None = None,
        card_timeout: float = 30.0,
        wait_seconds: float = 60.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self.client = client
        self.card_taps = card_taps
        self.readers = readers
        self.card_timeout = card_timeout
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds

    # ---- the whole checkout ----

    def checkout(
        self,
        bill_no: str,
        *,
        code: str | None = None,
        confirm: Callable[[CheckoutView], bool] = lambda view: True,
    ) -> Receipt:
        """Bill, patient (the scanned e-voucher `code`, else the card), split, self-pay, receipt.

        `confirm` shows the split to the cashier and the patient; False stops before any money
        moves (the checkout waits, pre-settled). The cash part is paid by a card tap.
        """
        view = self.open(bill_no)
        view = (
            self.identify_by_code(view.checkout_id, code)
            if code
            else self.identify_by_card(view.checkout_id)
        )
        self._require(view, "pre_settled")
        if not confirm(view):
            raise CheckoutRefused("cancelled_by_cashier")
        view = self.pay_by_tap(view)
        self._require(view, "completed")
        return self.receipt(view.checkout_id)

    # ---- the steps ----

    def open(self, bill_no: str) -> CheckoutView:
        return CheckoutView.of(self._post(CHECKOUTS_PATH, {"bill_no": bill_no}))

    def identify_by_card(
        self, checkout_id: int, channel: CardChannel | None = None
    ) -> CheckoutView:
        """Read the card's social-security application (EF05) and identify its holder."""
        own = channel is None
        channel = channel or wait_for_card(self.readers, self.card_timeout)
        try:
            data = read_social_security(channel)
        finally:
            if own:
                channel.close()
        card = {"card_number": data.card_number, "card_id_code": data.card_id_code}
        return self._step(checkout_id, "identify", {"card": card})

    def identify_by_code(self, checkout_id: int, text: str) -> CheckoutView:
        """A medical insurance e-voucher code, as the scanner read it."""
        return self._step(checkout_id, "identify", {"evoucher": text.strip()})

    def identify_by_id_number(self, checkout_id: int, id_number: str) -> CheckoutView:
        return self._step(checkout_id, "identify", {"id_number": id_number.strip().upper()})

    def pay_by_tap(self, view: CheckoutView) -> CheckoutView:
        """The card pays the cash part with a tap (PIN at or above the threshold); the hub
        takes the tap's hold for the checkout and settles. Nothing to pay: settle at once."""
        cash = self._cash(view)
        if cash == 0:
            return self._step(view.checkout_id, "self-pay", {"method": "none"})
        if self.card_taps is None:
            raise CheckoutRefused("no_card_reader", "this desk has no card-tap flow")
        tap = self.card_taps.pay(cash)
        if not tap.approved or tap.payment_id is None:
            raise CheckoutRefused(tap.decline_code or "card_declined")
        return self._adopt(view.checkout_id, tap)

    def pay_from_card(self, view: CheckoutView) -> CheckoutView:
        """The hub holds the cash part on the card the patient was identified by."""
        return self._step(view.checkout_id, "self-pay", {"method": "card"})

    def pay_by_code(self, view: CheckoutView, payment_code: str) -> CheckoutView:
        """The patient shows a payment code; the terminal charges the cash part with it."""
        cash = self._cash(view)
        body = {"transaction_id": _sale_id(), "amount_fen": cash, "payload": payment_code.strip()}
        paid = parse_answer(CodePayment, self._post(PAY_WITH_CODE_PATH, body))
        return self._step(
            view.checkout_id, "self-pay", {"method": "payment", "payment_id": paid.payment_id}
        )

    def revoke(self, checkout_id: int) -> CheckoutView:
        return self._step(checkout_id, "revoke", {})

    def receipt(self, checkout_id: int) -> Receipt:
        return parse_answer(Receipt, self._get(f"{CHECKOUTS_PATH}/{checkout_id}/receipt"))

    def view(self, checkout_id: int) -> CheckoutView:
        return CheckoutView.of(self._get(f"{CHECKOUTS_PATH}/{checkout_id}"))

    def wait(self, checkout_id: int) -> CheckoutView:
        """Poll until no platform message is out (the hub's outbox finishes what timed out)."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                view = self.view(checkout_id)
                if not view.in_flight:
                    return view
            except HubUnavailable:
                view = None
            if time.monotonic() > deadline:
                if view is None:
                    raise HubUnavailable("the hub did not come back")
                return view
            time.sleep(self.poll_seconds)

    # ---- internals ----

    def _adopt(self, checkout_id: int, tap: TapResult) -> CheckoutView:
        """Hand the tap's payment to the checkout; a tap the hub does not take is reversed."""
        assert self.card_taps is not None and tap.payment_id is not None
        body = {"method": "payment", "payment_id": tap.payment_id}
        for _ in range(2):  # a second try when the first never reached the hub
            try:
                view = self._step(checkout_id, "self-pay", body)
            except CheckoutRefused:
                self.card_taps.reverse(tap.transaction_id)
                raise
            if view.state != "pre_settled":
                return view
        self.card_taps.reverse(tap.transaction_id)
        raise CheckoutRefused("hub_unavailable", "the hub did not take the payment")

    def _step(self, checkout_id: int, step: str, body: dict[str, Any]) -> CheckoutView:
        path = f"{CHECKOUTS_PATH}/{checkout_id}/{step}"
        try:
            view = CheckoutView.of(self._post(path, body))
        except HubUnavailable:
            # The hub may have done the step before the line dropped: ask where it stands.
            log.info("checkout_unanswered checkout=%s step=%s", checkout_id, step)
            view = self.wait(checkout_id)
        if view.in_flight:
            view = self.wait(checkout_id)
        log.info("checkout checkout=%s step=%s state=%s", checkout_id, step, view.state)
        return view

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.post(path, body)
        except HubRefused as refused:
            raise CheckoutRefused(refused.code, refused.message) from None

    def _get(self, path: str) -> dict[str, Any]:
        try:
            return self.client.get(path)
        except HubRefused as refused:
            raise CheckoutRefused(refused.code, refused.message) from None

    @staticmethod
    def _cash(view: CheckoutView) -> int:
        if view.state != "pre_settled" or view.pre_settlement is None:
            raise CheckoutRefused("not_pre_settled", f"the checkout is {view.state}")
        return view.pre_settlement.cash

    @staticmethod
    def _require(view: CheckoutView, state: str) -> None:
        if view.state != state:
            raise CheckoutRefused(view.failure_code or view.state, view.failure_message or "")


def _sale_id() -> str:
    return uuid.uuid4().hex
