"""Bad input ends in a clear refusal and books nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from integrations.medical_insurance.client import FeeLine, InsuranceError

from .conftest import (
    CLINIC,
    CONSULTATION,
    HOSPITAL,
    VITAMIN_C,
    WANG_FANG,
    ZHANG_WEI,
    Cashier,
    hospital_config,
)


def refused(call, *args) -> str:
    with pytest.raises(InsuranceError) as refusal:
        call(*args)
    assert refusal.value.infcode == -1
    return refusal.value.err_msg


def test_an_item_outside_the_catalogue_refuses_the_whole_upload(cashier, sim):
    person = cashier.identify(ZHANG_WEI)
    visit = cashier.open_visit(person, "MZ000001")
    lines = [(CONSULTATION, 1, 1_000), ("XX0000000000", 1, 500)]
    assert refused(cashier.upload, visit, lines) == "item XX0000000000 not in the catalogue"
    # Nothing of it was kept: the good line can still be uploaded under its number.
    assert len(cashier.upload(visit, lines[:1])) == 1


def test_a_fee_line_is_uploaded_once(cashier):
    visit = cashier.open_visit(cashier.identify(ZHANG_WEI), "MZ000001")
    cashier.upload(visit, [(CONSULTATION, 1, 1_000)])
    assert refused(cashier.upload, visit, [(CONSULTATION, 1, 1_000)]) == (
        "fee line CB1-1 already uploaded"
    )


def test_zero_or_negative_lines_are_not_sent(cashier):
    visit = cashier.open_visit(cashier.identify(ZHANG_WEI), "MZ000001")
    (line,) = cashier.fee_lines(visit, [(CONSULTATION, 1, 1_000)])
    fields = line.model_dump()
    for change in ({"cnt": Decimal(0)}, {"pric": -1_000}, {"det_item_fee_sumamt": 999}):
        with pytest.raises(ValidationError):
            FeeLine(**{**fields, **change})


def test_medfee_that_differs_from_the_details_is_refused(cashier):
    request = cashier.ready_to_settle(ZHANG_WEI, [(CONSULTATION, 1, 1_000)])
    wrong = request.model_copy(update={"medfee_sumamt": 900})
    insurance = cashier.insurance
    assert refused(insurance.pre_settle, insurance.new_msgid(), wrong) == (
        "medfee_sumamt differs from the uploaded fee details"
    )


def test_settling_a_batch_twice_is_refused(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, [(CONSULTATION, 1, 1_000)])
    insurance.settle(insurance.new_msgid(), request)
    assert refused(insurance.settle, insurance.new_msgid(), request) == (
        "charge batch CB1 already settled"
    )
    assert len(sim.control.settlements()) == 1


def test_the_same_outpatient_number_is_registered_once(cashier):
    person = cashier.identify(ZHANG_WEI)
    cashier.open_visit(person, "MZ000001")
    assert refused(cashier.open_visit, person, "MZ000001") == "outpatient number already registered"


def test_a_visit_of_another_person_cannot_be_settled_with_these_credentials(cashier):
    request = cashier.ready_to_settle(ZHANG_WEI, [(CONSULTATION, 1, 1_000)])
    wang = cashier.identify(WANG_FANG)
    stolen = request.model_copy(update={"psn_no": wang.baseinfo.psn_no})
    insurance = cashier.insurance
    assert refused(insurance.pre_settle, insurance.new_msgid(), stolen) == (
        "visit belongs to another person"
    )


def test_an_uncovered_medical_type_is_refused(cashier):
    request = cashier.ready_to_settle(ZHANG_WEI, [(VITAMIN_C, 1, 2_800)])
    odd = request.model_copy(update={"med_type": "99"})
    insurance = cashier.insurance
    assert refused(insurance.pre_settle, insurance.new_msgid(), odd) == "med_type 99 not covered"


def test_an_institution_the_platform_does_not_know_is_refused(simulate):
    sim = simulate(hospital_config(default_hospital_level=None))
    stranger = HOSPITAL.model_copy(update={"fixmedins_code": "H99999999999"})
    insurance = sim.client(stranger)
    assert refused(insurance.sign_in, insurance.new_msgid()) == (
        "institution is not a designated medical institution"
    )


def test_a_settlement_differs_from_its_pre_settlement_when_the_account_moved(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(WANG_FANG, [(CONSULTATION, 1, 1_000)])
    pre = insurance.pre_settle(insurance.new_msgid(), request)
    sim.control.set_account_balance(WANG_FANG, 100)
    settled = insurance.settle(insurance.new_msgid(), request)
    # fund 6.00 both times; the account could pay 4.00 but now holds only 1.00.
    assert (pre.fund_pay_sumamt, pre.acct_pay, pre.psn_cash_pay) == (600, 400, 0)
    assert (settled.fund_pay_sumamt, settled.acct_pay, settled.psn_cash_pay) == (600, 100, 300)


def test_a_lower_level_hospital_gets_a_higher_ratio(sim, clock):
    clinic = Cashier(sim.client(CLINIC), clock)
    request = clinic.ready_to_settle(WANG_FANG, [(CONSULTATION, 1, 1_000)])
    split = clinic.insurance.pre_settle(clinic.insurance.new_msgid(), request)
    assert split.fund_pay_sumamt == 700  # level 1: 70%, against 60% at level 2
