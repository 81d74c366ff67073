"""The split rules on their own: deductible, ratio, annual cap, personal account, rounding."""

from __future__ import annotations

from integrations.medical_insurance.policy import (
    CatalogueItem,
    PersonYear,
    PlatformConfig,
    class_line,
    share,
    split_bill,
)

A = CatalogueItem(code="a", name="class A", item_class="A")
B = CatalogueItem(code="b", name="class B", item_class="B")
B20 = CatalogueItem(code="b20", name="class B at 20%", item_class="B", selfpay_bp=2_000)
C = CatalogueItem(code="c", name="class C", item_class="C")
CONFIG = PlatformConfig(deductible_fen=5_000, class_b_selfpay_bp=1_000, annual_cap_fen=100_000)
FRESH = PersonYear(deductible_used=0, fund_paid=0, account_balance=0)


def split(lines, ratio_bp=6_000, person=FRESH, config=CONFIG, use_account=True):
    shares = [class_line(item, amount, config) for item, amount in lines]
    return split_bill(shares, ratio_bp, person, config, use_account)


def test_ratios_round_half_up_to_the_fen():
    assert [share(5_448, 6_000), share(5, 5_000), share(4, 5_000), share(1, 4_999)] == [
        3_269,
        3,
        2,
        0,
    ]


def test_class_b_self_pays_its_item_ratio_or_the_default():
    assert class_line(B, 7_720, CONFIG).preselfpay == 772
    assert class_line(B20, 12_000, CONFIG).preselfpay == 2_400
    assert class_line(C, 2_800, CONFIG).fulamt_ownpay == 2_800


def test_a_bill_under_the_deductible_is_all_the_patients():
    result = split([(A, 3_000)])
    assert (result.deductible, result.fund, result.cash) == (3_000, 0, 3_000)


def test_deductible_already_used_is_not_charged_again():
    result = split([(A, 10_000)], person=PersonYear(4_000, 0, 0))
    # 1,000 left of the deductible; the fund pays 60% of the other 9,000.
    assert (result.deductible, result.fund, result.pooled_selfpay) == (1_000, 5_400, 3_600)


def test_fund_stops_at_the_annual_cap():
    result = split([(A, 100_000)], person=PersonYear(5_000, 99_000, 0))
    # 60% would be 60,000 but only 1,000 of the cap is left; the rest is the patient's.
    assert (result.fund, result.personal_part) == (1_000, 99_000)


def test_personal_account_does_not_pay_class_c_unless_allowed():
    person = PersonYear(5_000, 0, 50_000)
    assert split([(C, 2_800)], person=person).account == 0
    allowed = CONFIG.model_copy(update={"account_pays_class_c": True})
    assert split([(C, 2_800)], person=person, config=allowed).account == 2_800


def test_personal_account_is_left_alone_when_the_patient_says_so():
    result = split([(A, 10_000)], person=PersonYear(5_000, 0, 50_000), use_account=False)
    assert (result.account, result.cash, result.balance_after) == (0, 4_000, 50_000)


def test_every_split_adds_up():
    result = split([(A, 1_001), (B, 999), (B20, 12_345), (C, 7)], person=PersonYear(0, 0, 1_234))
    assert result.medfee == result.fund + result.account + result.cash == 14_352
