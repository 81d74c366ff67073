"""A msgid does its work once: a repeat gets the first answer, whatever happened between."""

from __future__ import annotations

import pytest

from integrations.medical_insurance.client import InsuranceError

from .conftest import CEFIXIME, CLINIC, CONSULTATION, ZHANG_WEI

BILL = [(CONSULTATION, 1, 1_000), (CEFIXIME, 2, 3_860)]


def test_settle_twice_with_one_msgid_books_once_and_answers_the_same(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    msgid = insurance.new_msgid()
    first = insurance.settle(msgid, request)
    again = insurance.settle(msgid, request)
    assert again == first
    assert [s.setl_id for s in sim.control.settlements()] == [first.setl_id]
    assert sim.control.person(ZHANG_WEI).account_balance_fen == 3_000 - first.acct_pay


def test_repeat_answer_is_the_first_even_after_the_books_moved(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    msgid = insurance.new_msgid()
    first = insurance.settle(msgid, request)
    insurance.revoke_settlement(insurance.new_msgid(), cashier.revoke_request(first))
    assert insurance.settle(msgid, request) == first  # a replay, not a second settlement
    assert len(sim.control.settlements()) == 1


def test_one_msgid_with_other_content_is_refused_as_duplicate(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    msgid = insurance.new_msgid()
    insurance.settle(msgid, request)
    other = request.model_copy(update={"acct_used_flag": "0"})
    with pytest.raises(InsuranceError) as refused:
        insurance.settle(msgid, other)
    assert refused.value.duplicate_msgid
    assert len(sim.control.settlements()) == 1


def test_revoke_twice_is_refused_and_gives_back_once(cashier, sim):
    insurance = cashier.insurance
    settled = insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))
    revoke = cashier.revoke_request(settled)
    insurance.revoke_settlement(insurance.new_msgid(), revoke)
    with pytest.raises(InsuranceError, match="settlement already revoked"):
        insurance.revoke_settlement(insurance.new_msgid(), revoke)
    assert sim.control.person(ZHANG_WEI).account_balance_fen == 3_000


def test_revoke_resent_with_its_msgid_answers_the_first_revoke(cashier, sim):
    insurance = cashier.insurance
    settled = insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))
    msgid = insurance.new_msgid()
    first = insurance.revoke_settlement(msgid, cashier.revoke_request(settled))
    assert insurance.revoke_settlement(msgid, cashier.revoke_request(settled)) == first
    assert sim.control.person(ZHANG_WEI).account_balance_fen == 3_000


def test_revoke_of_an_unknown_settlement_is_refused(cashier):
    insurance = cashier.insurance
    settled = insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))
    unknown = cashier.revoke_request(settled).model_copy(update={"setl_id": "33010099999"})
    with pytest.raises(InsuranceError, match="settlement not found"):
        insurance.revoke_settlement(insurance.new_msgid(), unknown)


def test_revoke_of_another_institutions_settlement_is_refused(cashier, sim):
    insurance = cashier.insurance
    settled = insurance.settle(insurance.new_msgid(), cashier.ready_to_settle(ZHANG_WEI, BILL))
    clinic = sim.client(CLINIC)
    with pytest.raises(InsuranceError, match="settlement not found"):
        clinic.revoke_settlement(clinic.new_msgid(), cashier.revoke_request(settled))


def test_a_revoked_batch_can_be_settled_again(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    first = insurance.settle(insurance.new_msgid(), request)
    insurance.revoke_settlement(insurance.new_msgid(), cashier.revoke_request(first))
    second = insurance.settle(insurance.new_msgid(), request)
    assert second.setl_id != first.setl_id
    assert (second.medfee_sumamt, second.acct_pay) == (first.medfee_sumamt, first.acct_pay)
