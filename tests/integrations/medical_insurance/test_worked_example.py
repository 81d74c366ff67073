"""Worked example, written as an accountant would: one outpatient visit, its split, its revoke.

张伟 at a level-2 hospital, general outpatient (med_type 11): the fund pays 60% of the pooled
part; the yearly deductible is 50.00 and none of it is used yet; class B items self-pay 10%
first; his personal account holds 30.00 and may not pay class C items.

  line                     class  qty   price   amount  self-paid  in scope
  consultation               A     1    10.00    10.00       0.00     10.00
  amoxicillin capsules       A     2    12.50    25.00       0.00     25.00
  cefixime tablets           B     2    38.60    77.20       7.72     69.48
  vitamin C tablets          C     1    28.00    28.00      28.00      0.00
                                               -------    -------   -------
                                                140.20      35.72    104.48

  in scope                          104.48
  less deductible (patient)          50.00
  pooled                             54.48
    fund 60%                         32.69   (32.688, half up)
    co-payment 40%                   21.79
  patient's part  140.20 - 32.69   107.51  = 28.00 + 7.72 + 50.00 + 21.79
    personal account                 30.00   (may pay up to 107.51 - 28.00 = 79.51)
    cash                             77.51

  medfee 140.20 = fund 32.69 + account 30.00 + cash 77.51
"""

from __future__ import annotations

import httpx

from integrations.medical_insurance.client import ItemClass
from integrations.medical_insurance.envelope import CALL_PATH, format_inf_time

from .conftest import AMOXICILLIN, CEFIXIME, CONSULTATION, VITAMIN_C, ZHANG_WEI

BILL = [
    (CONSULTATION, 1, 1_000),
    (AMOXICILLIN, 2, 1_250),
    (CEFIXIME, 2, 3_860),
    (VITAMIN_C, 1, 2_800),
]
SPLIT = {
    "medfee_sumamt": 14_020,
    "fulamt_ownpay_amt": 2_800,
    "preselfpay_amt": 772,
    "inscp_scp_amt": 10_448,
    "act_pay_dedc": 5_000,
    "hifp_pay": 3_269,
    "pool_prop_selfpay": 2_179,
    "fund_pay_sumamt": 3_269,
    "psn_part_amt": 10_751,
    "acct_pay": 3_000,
    "psn_cash_pay": 7_751,
    "balc": 0,
}


def amounts(split: object) -> dict[str, int]:
    return {name: getattr(split, name) for name in SPLIT}


def test_fee_upload_classes_each_line(cashier):
    person = cashier.identify(ZHANG_WEI)
    visit = cashier.open_visit(person, "MZ000001")
    rows = cashier.upload(visit, BILL)
    assert [(r.chrgitm_lv, r.det_item_fee_sumamt, r.fulamt_ownpay_amt, r.preselfpay_amt,
             r.inscp_scp_amt) for r in rows] == [
        (ItemClass.A, 1_000, 0, 0, 1_000),
        (ItemClass.A, 2_500, 0, 0, 2_500),
        (ItemClass.B, 7_720, 0, 772, 6_948),
        (ItemClass.C, 2_800, 2_800, 0, 0),
    ]  # fmt: skip


def test_outpatient_visit_splits_exactly(cashier, sim):
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    insurance = cashier.insurance

    pre = insurance.pre_settle(insurance.new_msgid(), request)
    assert amounts(pre) == SPLIT
    assert sim.control.person(ZHANG_WEI).account_balance_fen == 3_000  # nothing booked yet

    settled = insurance.settle(insurance.new_msgid(), request)
    assert amounts(settled) == SPLIT
    assert settled.setl_id
    after = sim.control.person(ZHANG_WEI)
    assert (after.account_balance_fen, after.deductible_used_fen, after.fund_paid_fen) == (
        0,
        5_000,
        3_269,
    )


def test_second_visit_finds_the_deductible_used_and_the_account_empty(cashier):
    insurance = cashier.insurance
    insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))
    # consultation 10.00, all in scope; no deductible left: fund 6.00, co-payment 4.00 in cash.
    again = cashier.ready_to_settle(ZHANG_WEI, [(CONSULTATION, 1, 1_000)], "MZ000002")
    settled = insurance.settle(insurance.new_msgid(), again)
    assert (settled.act_pay_dedc, settled.fund_pay_sumamt, settled.acct_pay) == (0, 600, 0)
    assert settled.psn_cash_pay == 400


def test_revoke_gives_everything_back(cashier, sim):
    insurance = cashier.insurance
    settled = insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))

    revoked = insurance.revoke_settlement(insurance.new_msgid(), cashier.revoke_request(settled))
    #                     medfee     fund    account    cash
    assert (revoked.medfee_sumamt, revoked.fund_pay_sumamt, revoked.acct_pay,
            revoked.psn_cash_pay) == (-14_020, -3_269, -3_000, -7_751)  # fmt: skip
    assert revoked.setl_id != settled.setl_id
    assert revoked.balc == 3_000
    after = sim.control.person(ZHANG_WEI)
    assert (after.account_balance_fen, after.deductible_used_fen, after.fund_paid_fen) == (
        3_000,
        0,
        0,
    )
    assert [s.revoke_setl_id for s in sim.control.settlements()] == [revoked.setl_id]


def test_amounts_travel_as_yuan_on_the_wire(cashier, sim):
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    assert request.wire()["medfee_sumamt"] == "140.20"
    envelope = {
        "infno": "2206",
        "msgid": cashier.insurance.new_msgid(),
        "mdtrtarea_admvs": "330102",
        "opter": "C001",
        "inf_time": format_inf_time(cashier.clock()),
        "fixmedins_code": "H33010200001",
        "fixmedins_name": "杭州市上城区人民医院",
        "sign_no": cashier.insurance.sign_in(cashier.insurance.new_msgid()).sign_no,
        "input": {"data": request.wire()},
    }
    answer = httpx.post(sim.url + CALL_PATH, json=envelope).json()
    assert answer["infcode"] == 0
    setlinfo = answer["output"]["setlinfo"]
    assert (setlinfo["medfee_sumamt"], setlinfo["fund_pay_sumamt"]) == (140.2, 32.69)
    assert (setlinfo["acct_pay"], setlinfo["psn_cash_pay"]) == (30.0, 77.51)
