"""The patient is identified by the card's social-security data, an e-voucher code or an ID
number; the platform decides who they are, and a stranger is refused without harm."""

from __future__ import annotations

from hub.checkout import service
from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import BILL_LINES
from tests.hub.checkout.window import (
    PATH,
    WANG_FANG,
    ZHANG_WEI,
    ZHANG_WEI_EVOUCHER,
    ZHANG_WEI_ID,
    Window,
)


def opened(window: Window) -> int:
    return window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]


@sqlite_only
def test_an_e_voucher_code_or_an_id_number_identifies_the_patient_as_the_card_does(window):
    by_code = window.identify(opened(window), evoucher=ZHANG_WEI_EVOUCHER)
    by_id = window.identify(opened(window), id_number=ZHANG_WEI_ID)
    for split in (by_code, by_id):
        assert (split["state"], split["patient_name"]) == ("pre_settled", "张伟")
        assert split["pre_settlement"]["cash"] == 5_976
    assert by_code["credential"] == "e_voucher ECT3*************************0001"
    assert by_id["credential"] == "id_number 3301**********1234"  # never the whole number


@sqlite_only
def test_without_a_card_of_this_bank_the_self_pay_needs_a_payment(window):
    checkout_id = opened(window)
    window.identify(checkout_id, id_number=ZHANG_WEI_ID)
    response = window.send(f"{PATH}/{checkout_id}/self-pay", {"method": "card"})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "self_pay_invalid")


@sqlite_only
def test_a_patient_the_platform_does_not_know_leaves_the_bill_waiting_for_another(window):
    checkout_id = opened(window)
    stranger = {"card_number": "K99999999", "card_id_code": "3301000000009Z"}
    out = window.identify(checkout_id, card=stranger)
    assert (out["state"], out["failure_code"], out["patient_name"]) == (
        "bill_received",
        "patient_unknown",
        None,
    )
    assert window.identify(checkout_id, card=WANG_FANG)["patient_name"] == "王芳"


@sqlite_only
def test_a_card_number_that_is_not_the_chips_own_is_refused(window):
    checkout_id = opened(window)
    forged = {"card_number": "K10000002", "card_id_code": ZHANG_WEI["card_id_code"]}
    response = window.send(f"{PATH}/{checkout_id}/identify", {"card": forged})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "card_mismatch")
    assert window.view(checkout_id)["state"] == "bill_received"


@sqlite_only
def test_credentials_must_be_exactly_one_and_well_formed(window):
    checkout_id = opened(window)
    for body in (
        {},
        {"card": ZHANG_WEI, "id_number": ZHANG_WEI_ID},
        {"evoucher": "not-a-voucher"},
        {"id_number": "12345"},
    ):
        response = window.send(f"{PATH}/{checkout_id}/identify", body)
        assert response.status_code == 422, body
        assert ZHANG_WEI_ID not in response.text


@sqlite_only
def test_an_e_voucher_scanned_at_the_window_identifies_its_checkout(window):
    checkout_id = opened(window)
    response = window.send("/api/terminal/scans", {"text": ZHANG_WEI_EVOUCHER})
    assert response.status_code == 200, response.text
    assert (response.json()["kind"], response.json()["checkout_id"]) == ("evoucher", checkout_id)
    window.outbox()
    assert window.view(checkout_id)["state"] == "pre_settled"
    again = window.send("/api/terminal/scans", {"text": ZHANG_WEI_EVOUCHER})
    assert (again.status_code, again.json()["error"]["code"]) == (404, "checkout_not_found")


@sqlite_only
def test_a_scanned_e_voucher_identifies_the_terminals_waiting_checkout_through_the_outbox(
    window,
):
    """What the payments scan routing calls: nothing leaves the hub in the scan's transaction."""
    checkout_id = opened(window)
    terminal_id = window.terminal.terminal_id
    window.db.transaction(
        lambda s: service.identify_by_evoucher(
            s,
            ZHANG_WEI_EVOUCHER,
            terminal_id=terminal_id,
            unit_id=window.unit_id,
            now=window.clock(),
        )
    )
    assert window.view(checkout_id)["state"] == "identifying"
    window.outbox()
    assert window.view(checkout_id)["state"] == "pre_settled"
