"""Bad input is refused with a stable code and leaves nothing half done."""

from __future__ import annotations

import pytest

from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import BILL_LINES
from tests.hub.checkout.window import INSTITUTION, PATH, ZHANG_WEI, Window, bill


def refusal(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def completed(window: Window) -> int:
    checkout_id = window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]
    window.identify(checkout_id, card=ZHANG_WEI)
    assert window.self_pay(checkout_id, "card")["state"] == "completed"
    return checkout_id


def broken_bill(bill_no: str, **line_changes: object) -> dict:
    raw = bill(("ZL0001", 1), ("YP0101", 2), bill_no=bill_no).model_dump(mode="json")
    raw["lines"][1].update(line_changes)
    return raw


@sqlite_only
@pytest.mark.parametrize(
    "changes",
    [
        {"quantity": "0", "amount_fen": 0},  # a zero line
        {"quantity": "-2", "amount_fen": -2_500},  # a negative line
        {"price_fen": -1_250},
        {"item_class": "D"},  # a class no catalogue knows
    ],
    ids=["zero", "negative", "negative_price", "unknown_class"],
)
def test_a_bill_that_does_not_hold_together_is_refused_before_anything_starts(window, changes):
    window.sims.his.add_raw(broken_bill("MZ900001", **changes))
    response = window.send(PATH, {"bill_no": "MZ900001"})
    assert refusal(response) == (422, "bill_invalid")
    assert window.client.get("/api/checkouts").json() == []


@sqlite_only
def test_a_bill_the_his_does_not_have_is_not_found(window):
    assert refusal(window.send(PATH, {"bill_no": "MZ404404"})) == (404, "bill_not_found")


@sqlite_only
def test_an_item_outside_the_platforms_catalogue_fails_the_checkout_before_money(window):
    raw = broken_bill("MZ900002", national_code="XX0000000000000")
    window.sims.his.add_raw(raw)
    checkout_id = window.open("MZ900002")["checkout_id"]
    out = window.identify(checkout_id, card=ZHANG_WEI)
    assert (out["state"], out["failure_code"]) == ("failed", "fees_refused")
    assert "not in the catalogue" in out["failure_message"]
    refused = window.send(f"{PATH}/{checkout_id}/self-pay", {"method": "card"})
    assert refusal(refused) == (409, "checkout_wrong_state")
    assert window.available("K10000001") == 50_000


@sqlite_only
def test_the_same_bill_opened_twice_is_the_same_checkout(window):
    window.his_bill(*BILL_LINES, bill_no="MZ900003")
    assert window.open("MZ900003")["checkout_id"] == window.open("MZ900003")["checkout_id"]


@sqlite_only
def test_revoking_an_unknown_or_an_already_revoked_settlement_is_refused(window):
    assert refusal(window.send(f"{PATH}/999999/revoke", {})) == (404, "checkout_not_found")
    checkout_id = completed(window)
    assert window.revoke(checkout_id)["state"] == "revoked"
    again = window.send(f"{PATH}/{checkout_id}/revoke", {})
    assert refusal(again) == (409, "checkout_already_revoked")
    assert window.available("K10000001") == 50_000  # refunded once, not twice
    assert len(window.sims.platform.booked_settlements()) == 1


@sqlite_only
def test_a_checkout_not_yet_settled_cannot_be_revoked(window):
    checkout_id = window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]
    assert refusal(window.send(f"{PATH}/{checkout_id}/revoke", {})) == (
        409,
        "checkout_not_settled",
    )


@sqlite_only
def test_another_units_terminal_cannot_see_or_touch_the_checkout(window):
    checkout_id = completed(window)
    elsewhere = window.new_terminal(window.new_unit("H33010200002", "社区卫生服务中心"))
    assert refusal(window.send(f"{PATH}/{checkout_id}", None, elsewhere)) == (
        403,
        "checkout_of_another_unit",
    )
    assert refusal(window.send(f"{PATH}/{checkout_id}/revoke", {}, elsewhere))[0] == 403
    assert window.posted("unit_settlement", INSTITUTION) == 10_160


@sqlite_only
def test_a_self_pay_that_does_not_fit_the_cash_part_is_refused(window):
    checkout_id = window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]
    window.identify(checkout_id, card=ZHANG_WEI)
    for body, expected in (
        ({"method": "none"}, (422, "self_pay_invalid")),  # 59.76 is the patient's to pay
        ({"method": "payment"}, (422, "invalid_request")),  # which payment?
        ({"method": "payment", "payment_id": 424242}, (404, "payment_not_found")),
    ):
        assert refusal(window.send(f"{PATH}/{checkout_id}/self-pay", body)) == expected
    assert window.view(checkout_id)["state"] == "pre_settled"


@sqlite_only
def test_a_card_without_the_money_declines_and_the_checkout_waits(window):
    """李娜's card holds 88.00; a bill of 150.00 in class C items is all hers to pay."""
    window.his_bill(("TJ0001", 1), bill_no="MZ900004")
    checkout_id = window.open("MZ900004")["checkout_id"]
    li_na = {"card_number": "K10000003", "card_id_code": "3301000000003C"}
    assert window.identify(checkout_id, card=li_na)["pre_settlement"]["cash"] == 15_000
    response = window.send(f"{PATH}/{checkout_id}/self-pay", {"method": "card"})
    assert refusal(response) == (402, "self_pay_declined")
    assert window.view(checkout_id)["state"] == "pre_settled"
    assert window.available("K10000003") == 8_800
    assert window.sims.platform.booked_settlements() == []
