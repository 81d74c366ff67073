"""The self-pay: held at the window, adjusted (never duplicated) when the settlement differs
from the pre-settlement, or taken by another payment the terminal made (a card tap's hold, a
payment code's charge) and adopted by the checkout."""

from __future__ import annotations

import itertools
from typing import Any

from hub.issuer import service as issuer
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from hub.payments import service as payments
from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import ACCOUNT, BILL_LINES, CARD, FUND, UNIT
from tests.hub.checkout.window import INSTITUTION, ZHANG_WEI, Leg, Window

ZHANG_WEI_PSN = "33010000000000000001"
_keys = itertools.count(1)


def pre_settled(window: Window) -> int:
    checkout_id = window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]
    assert window.identify(checkout_id, card=ZHANG_WEI)["pre_settlement"]["cash"] == 5_976
    return checkout_id


def test_a_smaller_settlement_posts_part_of_the_hold_and_releases_the_rest(window):
    checkout_id = pre_settled(window)
    # Between pre-settlement and settlement the personal account was topped up to 100.00.
    window.sims.platform.set_account_balance(ZHANG_WEI_PSN, 10_000)
    done = window.self_pay(checkout_id, "card")
    assert done["settlement"] == {"medfee": 10_160, "fund": 1_184, "account": 6_176, "cash": 2_800}
    assert window.legs(checkout_id) == [
        Leg(CARD, UNIT, 5_976, "card_payment/hold"),
        Leg(FUND, UNIT, 1_184, "insurance_fund"),
        Leg(ACCOUNT, UNIT, 6_176, "personal_account"),
        Leg(CARD, UNIT, 2_800, "card_payment/post"),  # part of the hold; the rest released
    ]
    assert window.available("K10000001") == 50_000 - 2_800
    assert window.invariants() == []


def test_a_larger_settlement_voids_the_hold_and_holds_again_never_twice(window):
    checkout_id = pre_settled(window)
    window.sims.platform.set_account_balance(ZHANG_WEI_PSN, 0)  # spent elsewhere meanwhile
    done = window.self_pay(checkout_id, "card")
    assert done["settlement"] == {"medfee": 10_160, "fund": 1_184, "account": 0, "cash": 8_976}
    assert window.legs(checkout_id) == [
        Leg(CARD, UNIT, 5_976, "card_payment/hold"),
        Leg(CARD, UNIT, 5_976, "card_payment/void"),
        Leg(CARD, UNIT, 8_976, "card_payment/hold"),
        Leg(CARD, UNIT, 8_976, "card_payment/post"),
        Leg(FUND, UNIT, 1_184, "insurance_fund"),
    ]
    assert window.available("K10000001") == 50_000 - 8_976
    assert window.posted("unit_settlement", INSTITUTION) == 10_160
    assert window.invariants() == []


@sqlite_only
def test_a_larger_settlement_the_card_cannot_pay_is_revoked_and_moves_nothing(window):
    checkout_id = pre_settled(window)
    _spend(window, "K10000001", 44_000)  # leaves 60.24 on the card, 59.76 of it held
    window.sims.platform.set_account_balance(ZHANG_WEI_PSN, 0)
    done = window.self_pay(checkout_id, "card")
    assert (done["state"], done["failure_code"]) == ("failed", "self_pay_declined")
    assert window.available("K10000001") == 6_000
    assert window.posted("unit_settlement", INSTITUTION) == 0
    (booked,) = window.sims.platform.booked_settlements()
    assert booked.revoke_setl_id is not None  # the platform's booking was undone
    assert window.invariants() == []


@sqlite_only
def test_a_card_tap_hold_taken_by_the_terminal_is_adopted_and_captured(window):
    checkout_id = pre_settled(window)
    payment_id = _payment(window, 5_976, captured=False)
    done = window.self_pay(checkout_id, "payment", payment_id=payment_id)
    assert (done["state"], done["payment_id"]) == ("completed", payment_id)
    assert _status(window, payment_id) == ("captured", 5_976, 0)
    other = pre_settled(window)  # one payment pays one checkout
    response = window.send(
        f"/api/terminal/checkouts/{other}/self-pay", {"method": "payment", "payment_id": payment_id}
    )
    assert response.json()["error"]["code"] == "self_pay_invalid"


@sqlite_only
def test_a_payment_code_charge_is_adopted_and_a_smaller_settlement_refunds_the_difference(window):
    checkout_id = pre_settled(window)
    payment_id = _payment(window, 5_976, captured=True)
    window.sims.platform.set_account_balance(ZHANG_WEI_PSN, 10_000)
    done = window.self_pay(checkout_id, "payment", payment_id=payment_id)
    assert done["settlement"]["cash"] == 2_800
    assert _status(window, payment_id) == ("captured", 5_976, 3_176)
    assert window.available("K10000001") == 50_000 - 2_800
    assert window.revoke(checkout_id)["state"] == "revoked"
    assert _status(window, payment_id) == ("refunded", 5_976, 5_976)
    assert window.available("K10000001") == 50_000
    assert window.invariants() == []


def _payment(window: Window, amount: int, *, captured: bool) -> int:
    """A payment the unit's terminal took itself: a card tap's hold or a code's charge."""
    caller = payments.Caller.terminal(window.terminal.terminal_id, window.unit_id, INSTITUTION)

    def work(session: Any) -> int:
        card = issuer.card_by_number(session, "K10000001")
        hold = payments.HoldRequest(
            idempotency_key=f"tap:test:{next(_keys)}",
            channel=payments.Channel.QR_CODE if captured else payments.Channel.CARD_TAP,
            card_id=card.id,
            card_account_id=card.account_id,
            amount=amount,
            caller=caller,
            timeout_seconds=3600,
        )
        take = payments.pay_card if captured else payments.hold_card
        return take(session, hold, window.clock()).id

    return window.db.transaction(work)


def _status(window: Window, payment_id: int) -> tuple[str, int, int]:
    with window.db.session() as s:
        payment = payments.get_payment(s, payment_id, payments.Caller("test", None))
        return payment.status, payment.captured, payment.refunded


def _spend(window: Window, card_number: str, amount: int) -> None:
    def work(session: Any) -> None:
        card = ledger.find_account(session, "card", card_number)
        shop = ledger.ensure_account(
            session, AccountIn(kind="merchant", owner_ref="shop"), window.clock()
        )
        assert card is not None
        spend = TransferIn(
            id=f"test:spend:{card_number}",
            debit_account_id=card.id,
            credit_account_id=shop.id,
            amount=amount,
            code="card_payment",
        )
        ledger.transfer(session, spend, window.clock())

    window.db.transaction(work)
