"""Card taps, payment codes, bill codes and refunds, as the district's terminals and the
cardholder app do them, each checked against the model before the books move in it."""

from __future__ import annotations

from typing import Any

from devices.agent.hub_client import HubRefused
from devices.agent.scanning import BILLS_PATH, SCANS_PATH
from devices.pcsc.channel import CardChannel
from devices.pcsc.debit import complete
from devices.pcsc.models import TerminalData
from devices.pcsc.tap import read_card
from devices.protocol.card_payments import (
    CARD_PAYMENTS_PATH,
    REVERSALS_PATH,
    capture_path,
    refunds_path,
    void_path,
)
from hub.demo.day.clients import error_code
from hub.demo.day.scene import Outcome, Payment, Scene
from hub.demo.day.world import Card, Unit
from hub.demo.traffic import DirectLink

UNABLE_TO_GO_ONLINE = b"Z3"


def _pick(scene: Scene, low: int, high: int) -> tuple[Unit, Card, int]:
    district, rng = scene.district, scene.rng
    return rng.choice(district.units), rng.choice(district.cards), rng.randrange(low, high, 10)


def _verdict(scene: Scene, card: Card, amount: int, paid: bool, refusal: str) -> bool:
    """Check the hub's yes or no against the model's; returns the model's."""
    available = scene.books.available(card.key)
    predicted = scene.books.can_pay(card.key, amount)
    said = "paid" if paid else f"refused ({refusal})"
    scene.expect(
        paid == predicted,
        f"{card.masked} paying {amount} fen: the hub {said}, the model has {available} fen"
        " available",
    )
    scene.expect(paid or refusal == "insufficient_funds", f"refused for {refusal}")
    return predicted


# --- card taps ----------------------------------------------------------------------------------


def card_tap(scene: Scene) -> Outcome:
    """A patient taps a card at a reader for less than the PIN threshold; the cashier then
    captures in full or in part, voids, or leaves the authorisation to expire."""
    unit, card, amount = _pick(scene, 500, 30_000)
    transaction_id = f"T{scene.next_number():05d}"
    answer, cryptogram = _tap(scene, unit, card, amount, transaction_id)
    approved = bool(answer["approved"])
    where = f"{unit.code} {card.masked} {amount}"
    _verdict(scene, card, amount, approved, str(answer.get("decline_code")))
    if not approved:
        return Outcome("declined", where)
    payment_id = int(answer["payment_id"])
    scene.books.hold(transaction_id, card.key, unit.key, amount, scene.hold_until())
    if cryptogram != "TC":  # the card did not take the approval: the agent reverses
        unit.reader.post(REVERSALS_PATH, {"transaction_id": transaction_id})
        scene.books.release(transaction_id)
        return Outcome("reversed", f"{where} card said {cryptogram}")
    return _after_tap(scene, unit, card, amount, transaction_id, payment_id, where)


def _tap(
    scene: Scene, unit: Unit, card: Card, amount: int, transaction_id: str
) -> tuple[dict[str, Any], str]:
    """Read the card, authorise with the hub, give the card the issuer's answer."""
    channel = CardChannel(DirectLink(card.chip), "direct")
    try:
        data = TerminalData(
            amount=amount, when=scene.clock(), unpredictable_number=scene.rng.randbytes(4)
        )
        read = read_card(channel, data)
        body = {
            "transaction_id": transaction_id,
            "amount": amount,
            "card": {
                "pan": read.debit.pan,
                "psn": read.debit.psn,
                "card_number": read.social_security.card_number,
            },
            "icc_data": read.arqc.icc_data().hex().upper(),
        }
        answer = unit.reader.post(CARD_PAYMENTS_PATH, body)
        code = str(answer.get("response_code") or "").encode() or UNABLE_TO_GO_ONLINE
        arpc = bytes.fromhex(answer["arpc"]) if answer.get("arpc") else None
        done = complete(channel, read.debit, data, code, arpc)
    finally:
        channel.close()
    return answer, done.cryptogram.kind


def _after_tap(
    scene: Scene,
    unit: Unit,
    card: Card,
    amount: int,
    transaction_id: str,
    payment_id: int,
    where: str,
) -> Outcome:
    rng, books = scene.rng, scene.books
    choice = rng.random()
    if choice < 0.15:
        return Outcome("authorised", f"{where} left to expire")
    if choice < 0.25:
        unit.reader.post(void_path(payment_id), {})
        books.release(transaction_id)
        return Outcome("voided", where)
    captured = amount if choice < 0.85 else rng.randrange(10, amount, 10)
    body = {} if captured == amount else {"amount": captured}
    answer = unit.reader.post(capture_path(payment_id), body)
    scene.expect(answer["captured"] == captured, f"captured {answer['captured']}, not {captured}")
    books.post(transaction_id, captured)
    scene.payments.append(Payment(payment_id, unit, card, captured))
    return Outcome("captured", where if captured == amount else f"{where} captured {captured}")


# --- QR codes -----------------------------------------------------------------------------------


def payment_code(scene: Scene) -> Outcome:
    """The app shows a one-time payment code; the unit's scanner takes the sale with it."""
    unit, card, amount = _pick(scene, 300, 20_000)
    transaction_id = f"Q{scene.next_number():05d}"
    issued = card.app.post("/api/cardholder/payment-codes")
    scene.expect(issued.status_code == 201, f"payment code not issued: {error_code(issued)}")
    body = {
        "text": issued.json()["payload"],
        "transaction_id": transaction_id,
        "amount_fen": amount,
    }
    where = f"{unit.code} {card.masked} {amount}"
    try:
        payment = unit.scanner.post(SCANS_PATH, body)["payment"]
    except HubRefused as refusal:
        _verdict(scene, card, amount, False, refusal.code)
        return Outcome("declined", where)
    _verdict(scene, card, amount, True, "")
    scene.books.transfer(card.key, unit.key, amount)
    scene.payments.append(Payment(int(payment["payment_id"]), unit, card, amount))
    return Outcome("paid", where)


def bill_code(scene: Scene) -> Outcome:
    """The cashier shows a bill code; the patient's app pays it; the terminal sees it paid."""
    unit, card, amount = _pick(scene, 1_000, 15_000)
    number = f"B{scene.next_number():05d}"
    # The same bill again (a retry after a lost answer) returns the open bill.
    bill = unit.scanner.post(BILLS_PATH, {"bill_number": number, "amount_fen": amount})
    paid = card.app.post("/api/cardholder/bills/pay", {"payload": bill["payload"]})
    where = f"{unit.code} {card.masked} {amount}"
    _verdict(scene, card, amount, paid.status_code == 200, error_code(paid))
    if paid.status_code != 200:
        unit.scanner.post(f"{BILLS_PATH}/{number}/cancel", {})
        _expect_bill(scene, unit, number, "cancelled")
        return Outcome("declined", where)
    scene.books.transfer(card.key, unit.key, amount)
    _expect_bill(scene, unit, number, "paid")
    scene.payments.append(Payment(int(paid.json()["payment_id"]), unit, card, amount))
    return Outcome("paid", where)


def _expect_bill(scene: Scene, unit: Unit, number: str, status: str) -> None:
    seen = unit.scanner.get(f"{BILLS_PATH}/{number}")["status"]
    scene.expect(seen == status, f"bill {number} is {seen}, not {status}")


# --- refunds ------------------------------------------------------------------------------------


def refund(scene: Scene) -> Outcome:
    """A unit gives back part or all of what is left of one of its captured payments."""
    open_payments = [p for p in scene.payments if p.captured > p.refunded]
    if not open_payments:
        return Outcome("none", "nothing to refund yet")
    rng = scene.rng
    p = rng.choice(open_payments)
    left = p.captured - p.refunded
    amount = left if rng.random() < 0.5 else rng.randint(1, left)
    body = {"refund_id": f"R{scene.next_number():05d}", "amount": amount}
    answer = p.unit.reader.post(refunds_path(p.payment_id), body)
    p.refunded += amount
    scene.books.transfer(p.unit.key, p.card.key, amount)
    scene.expect(answer["payment"]["refunded"] == p.refunded, f"refunded {answer['payment']}")
    return Outcome("refunded", f"{p.unit.code} {p.card.masked} {amount} of {p.captured}")
