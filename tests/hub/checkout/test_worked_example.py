"""The worked example, as an accountant would write it.

Zhang Wei (employees' insurance, personal account 30.00, nothing of this year's 50.00 deductible
used) pays an outpatient bill at a level-2 hospital (general outpatient: the fund pays 60% of
the pooled part):

    line  item                      class  qty   price    amount   in scope  self-paid
    1     consultation              A      1     10.00     10.00     10.00
    2     amoxicillin capsules      A      2     12.50     25.00     25.00
    3     cefixime tablets          B      1     38.60     38.60     34.74     3.86 (10%)
    4     vitamin C tablets         C      1     28.00     28.00               28.00
          bill                                           101.60     69.74

    deductible (first 50.00 in scope)          50.00
    pooled part (69.74 - 50.00)                19.74
    fund: 60% of 19.74                         11.84   fund_pay_sumamt
    patient's part (101.60 - 11.84)            89.76
    personal account (all it holds; not C)     30.00   acct_pay
    cash from the card                         59.76   psn_cash_pay
"""

from __future__ import annotations

from tests.hub.checkout.window import INSTITUTION, ZHANG_WEI, Leg, Window

UNIT = f"unit_settlement:{INSTITUTION}"
CARD = "card:K10000001"
FUND = "insurance_fund_clearing:330100"
ACCOUNT = "personal_account_clearing:330100"
BILL_LINES = (("ZL0001", 1), ("YP0101", 2), ("YP0102", 1), ("YP0901", 1))


def settle_zhang_wei(window: Window) -> dict:
    window.his_bill(*BILL_LINES, bill_no="MZ100001")
    opened = window.open("MZ100001")
    assert (opened["state"], opened["medfee"]) == ("bill_received", 10_160)
    split = window.identify(opened["checkout_id"], card=ZHANG_WEI)
    assert split["state"] == "pre_settled"
    assert split["patient_name"] == "张伟"
    assert split["pre_settlement"] == {
        "medfee": 10_160,
        "fund": 1_184,
        "account": 3_000,
        "cash": 5_976,
    }
    return window.self_pay(opened["checkout_id"], "card")


def test_an_outpatient_visit_with_class_a_b_and_c_items_leaves_these_legs(window):
    done = settle_zhang_wei(window)
    checkout_id = done["checkout_id"]
    assert done["state"] == "completed" and not done["in_flight"]
    assert done["settlement"] == {"medfee": 10_160, "fund": 1_184, "account": 3_000, "cash": 5_976}

    assert window.legs(checkout_id) == [
        Leg(CARD, UNIT, 5_976, "card_payment/hold"),  # the self-pay, held at the window
        # at settlement, in one database transaction:
        Leg(FUND, UNIT, 1_184, "insurance_fund"),  # } one linked chain
        Leg(ACCOUNT, UNIT, 3_000, "personal_account"),  # }
        Leg(CARD, UNIT, 5_976, "card_payment/post"),  # the hold posted
    ]
    assert window.posted("unit_settlement", INSTITUTION) == 10_160  # the whole bill
    assert window.posted("insurance_fund_clearing", "330100") == -1_184  # owed by the fund
    assert window.posted("personal_account_clearing", "330100") == -3_000
    assert window.available("K10000001") == 50_000 - 5_976
    assert window.invariants() == []

    # The platform booked the same numbers; the patient's year moved on.
    (booked,) = window.sims.platform.booked_settlements()
    assert (booked.setl_id, booked.fund_fen, booked.account_fen, booked.cash_fen) == (
        done["setl_id"],
        1_184,
        3_000,
        5_976,
    )
    person = window.sims.platform.person("33010000000000000001")
    assert (person.account_balance_fen, person.deductible_used_fen) == (0, 5_000)

    receipt = window.receipt(checkout_id)
    assert [line["amount_fen"] for line in receipt["lines"]] == [1_000, 2_500, 3_860, 2_800]
    assert receipt["split"]["cash"] == 5_976 and receipt["card"].endswith("0003")
    assert window.audit_actions(checkout_id) == [
        "checkout.opened",
        "checkout.identifying",
        "checkout.pre_settled",
        "checkout.self_pay_collected",
        "checkout.completed",
    ]


def test_a_revoke_reverses_every_leg_and_refunds_the_self_pay(window):
    checkout_id = settle_zhang_wei(window)["checkout_id"]
    revoked = window.revoke(checkout_id)
    assert revoked["state"] == "revoked"

    assert window.legs(checkout_id)[4:] == [
        Leg(UNIT, FUND, 1_184, "reversal"),  # } one linked chain at revoke
        Leg(UNIT, ACCOUNT, 3_000, "reversal"),  # }
        Leg(UNIT, CARD, 5_976, "refund"),  # the self-pay back to the card
    ]
    assert window.posted("unit_settlement", INSTITUTION) == 0
    assert window.posted("insurance_fund_clearing", "330100") == 0
    assert window.posted("personal_account_clearing", "330100") == 0
    assert window.available("K10000001") == 50_000
    assert window.invariants() == []

    (booked,) = window.sims.platform.booked_settlements()
    assert booked.revoke_setl_id == window.receipt(checkout_id)["revoke_setl_id"]
    person = window.sims.platform.person("33010000000000000001")
    assert (person.account_balance_fen, person.deductible_used_fen) == (3_000, 0)
    assert window.receipt(checkout_id)["revoked"] is True
