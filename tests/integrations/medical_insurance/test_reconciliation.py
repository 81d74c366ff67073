"""3201: the platform's totals per institution and day, and whether the hub's agree.

Day 1 (2026-11-29) at the hospital      medfee   fund  account   cash  count
  张伟  consultation + cefixime (1)      87.20  17.69    30.00  39.51     1
  王芳  consultation (2)                 10.00   6.00     4.00   0.00     1
                                         97.20  23.69    34.00  39.51     2
Day 1 at the clinic (another institution, not in the hospital's totals)
  李娜  consultation, no account         10.00   7.00     0.00   3.00
Day 2: 张伟's settlement revoked       -87.20 -17.69   -30.00 -39.51    -1

(1) in scope 87.20 - 7.72 = 79.48, less the 50.00 deductible = 29.48 pooled, fund 60% = 17.69
(2) deductible already used: fund 60% of 10.00, the account pays the other 4.00
"""

from __future__ import annotations

from datetime import date

import pytest

from integrations.medical_insurance.client import ReconciliationRequest

from .conftest import CEFIXIME, CLINIC, CONSULTATION, LI_NA, WANG_FANG, ZHANG_WEI, Cashier

DAY1, DAY2 = date(2026, 11, 29), date(2026, 11, 30)
DAY1_TOTALS = {"medfee_sumamt": 9_720, "fund_pay_sumamt": 2_369, "acct_pay": 3_400}


@pytest.fixture
def books(cashier, sim, clock):
    """Day 1's settlements at the hospital and the clinic; 张伟's revoked on day 2."""
    insurance = cashier.insurance
    zhang = insurance.settle(
        insurance.new_msgid(),
        cashier.ready_to_settle(ZHANG_WEI, [(CONSULTATION, 1, 1_000), (CEFIXIME, 2, 3_860)]),
    )
    insurance.settle(
        insurance.new_msgid(),
        cashier.ready_to_settle(WANG_FANG, [(CONSULTATION, 1, 1_000)], "MZ000002"),
    )
    clinic = Cashier(sim.client(CLINIC), clock)
    clinic.insurance.settle(
        clinic.insurance.new_msgid(), clinic.ready_to_settle(LI_NA, [(CONSULTATION, 1, 1_000)])
    )
    clock.advance(24 * 3600)
    insurance.revoke_settlement(insurance.new_msgid(), cashier.revoke_request(zhang))
    return zhang


def ask(insurance, day, count, medfee_sumamt, fund_pay_sumamt, acct_pay):
    request = ReconciliationRequest(
        stmt_begndate=day,
        stmt_enddate=day,
        medfee_sumamt=medfee_sumamt,
        fund_pay_sumamt=fund_pay_sumamt,
        acct_pay=acct_pay,
        fixmedins_setl_cnt=count,
    )
    return insurance.reconciliation_totals(insurance.new_msgid(), request)


def platform_totals(stmt):
    return (stmt.medfee_sumamt, stmt.fund_pay_sumamt, stmt.acct_pay, stmt.psn_cash_pay,
            stmt.fixmedins_setl_cnt)  # fmt: skip


def test_day_totals_agree_with_the_hospitals_own(books, insurance):
    stmt = ask(insurance, DAY1, 2, **DAY1_TOTALS)
    assert stmt.balanced and stmt.stmt_rslt_dscr == "balanced"
    assert platform_totals(stmt) == (9_720, 2_369, 3_400, 3_951, 2)


def test_a_revoke_counts_on_its_own_day(books, insurance):
    stmt = ask(insurance, DAY2, -1, -8_720, -1_769, -3_000)
    assert stmt.balanced
    assert platform_totals(stmt) == (-8_720, -1_769, -3_000, -3_951, -1)


def test_both_days_together_net_out_the_revoked_settlement(books, insurance):
    request = ReconciliationRequest(
        stmt_begndate=DAY1,
        stmt_enddate=DAY2,
        medfee_sumamt=1_000,
        fund_pay_sumamt=600,
        acct_pay=400,
        fixmedins_setl_cnt=1,
    )
    assert insurance.reconciliation_totals(insurance.new_msgid(), request).balanced


def test_a_settlement_the_platform_lost_shows_as_a_difference(books, sim, insurance):
    wang = next(s for s in sim.control.settlements() if s.psn_no == WANG_FANG)
    sim.control.forget_settlement(wang.setl_id)
    stmt = ask(insurance, DAY1, 2, **DAY1_TOTALS)
    assert not stmt.balanced
    assert stmt.stmt_rslt_dscr == "differs: medfee, fund, account, count"
    assert platform_totals(stmt) == (8_720, 1_769, 3_000, 3_951, 1)


def test_an_amount_mismatch_shows_as_a_difference(books, sim, insurance):
    wang = next(s for s in sim.control.settlements() if s.psn_no == WANG_FANG)
    sim.control.amend_settlement(wang.setl_id, fund_fen=700, account_fen=300, cash_fen=0)
    stmt = ask(insurance, DAY1, 2, **DAY1_TOTALS)
    assert stmt.stmt_rslt == "1"
    assert stmt.stmt_rslt_dscr == "differs: fund, account"


def test_a_day_without_settlements_is_all_zero(books, insurance):
    stmt = ask(insurance, date(2026, 12, 1), 0, 0, 0, 0)
    assert stmt.balanced and platform_totals(stmt) == (0, 0, 0, 0, 0)
