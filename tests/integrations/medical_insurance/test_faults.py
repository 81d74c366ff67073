"""Injected faults: each one reaches the caller as the right error, and a resend of the same
msgid ends in exactly one outcome."""

from __future__ import annotations

import time

import pytest

from integrations.medical_insurance.client import (
    InsuranceError,
    InsuranceTimeout,
    SettlementRequest,
)
from integrations.medical_insurance.platform import Fault

from .conftest import CONSULTATION, ZHANG_WEI, Cashier, hospital_config

BILL = [(CONSULTATION, 2, 1_000)]
QUICK = 0.2  # the client's timeout in these tests
HOLD = 0.5  # how long a faulty platform sits on a message


def test_timeout_before_the_work_leaves_nothing_and_the_resend_settles_once(sim, clock):
    insurance = sim.client(timeout=QUICK)
    request = Cashier(insurance, clock).ready_to_settle(ZHANG_WEI, BILL)
    sim.control.add_fault(Fault(kind="timeout", infno="2207", hold_seconds=HOLD))
    msgid = insurance.new_msgid()
    with pytest.raises(InsuranceTimeout) as lost:
        insurance.settle(msgid, request)
    assert (lost.value.infno, lost.value.msgid) == ("2207", msgid)
    assert sim.control.settlements() == []
    settled = insurance.settle(msgid, request)
    assert [s.setl_id for s in sim.control.settlements()] == [settled.setl_id]


def test_timeout_after_the_work_is_booked_and_the_resend_learns_the_first_answer(sim, clock):
    insurance = sim.client(timeout=QUICK)
    request = Cashier(insurance, clock).ready_to_settle(ZHANG_WEI, BILL)
    sim.control.add_fault(Fault(kind="timeout_after", infno="2207", hold_seconds=HOLD))
    msgid = insurance.new_msgid()
    with pytest.raises(InsuranceTimeout):
        insurance.settle(msgid, request)
    (booked,) = sim.control.settlements()  # the platform settled; the hub never heard
    settled = insurance.settle(msgid, request)
    assert settled.setl_id == booked.setl_id
    assert len(sim.control.settlements()) == 1


def test_infcode_minus_one_is_a_refusal_that_did_nothing(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    sim.control.add_fault(Fault(kind="error", infno="2207", err_msg="fund system closed"))
    msgid = insurance.new_msgid()
    with pytest.raises(InsuranceError) as refused:
        insurance.settle(msgid, request)
    assert (refused.value.infcode, refused.value.err_msg) == (-1, "fund system closed")
    assert sim.control.settlements() == []
    assert insurance.settle(msgid, request).setl_id  # the fault was used up


def test_duplicate_msgid_answer_is_a_refusal_the_caller_can_recognise(cashier, sim):
    insurance = cashier.insurance
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)
    sim.control.add_fault(Fault(kind="duplicate_msgid", infno="2207"))
    msgid = insurance.new_msgid()
    with pytest.raises(InsuranceError) as refused:
        insurance.settle(msgid, request)
    assert refused.value.duplicate_msgid
    assert msgid in refused.value.err_msg
    assert sim.control.settlements() == []


def test_a_fault_hits_only_its_transaction_and_only_as_often_as_asked(cashier, sim):
    insurance = cashier.insurance
    sim.control.add_fault(Fault(kind="error", infno="2207", times=2))
    request = cashier.ready_to_settle(ZHANG_WEI, BILL)  # 1101, 2201, 2204 pass untouched
    insurance.pre_settle(insurance.new_msgid(), request)
    for _ in range(2):
        with pytest.raises(InsuranceError):
            insurance.settle(insurance.new_msgid(), request)
    assert insurance.settle(insurance.new_msgid(), request).setl_id


def test_any_transaction_fault_and_clearing(sim):
    insurance = sim.client()
    sim.control.add_fault(Fault(kind="error", times=5))
    with pytest.raises(InsuranceError):
        insurance.sign_in(insurance.new_msgid())
    sim.control.clear_faults()
    assert insurance.sign_in(insurance.new_msgid()).sign_no


def test_faults_can_be_given_to_the_constructor(simulate):
    sim = simulate(hospital_config(), [Fault(kind="error", infno="9001", err_msg="closed")])
    insurance = sim.client()
    with pytest.raises(InsuranceError, match="closed"):
        insurance.sign_in(insurance.new_msgid())
    assert insurance.sign_in(insurance.new_msgid()).sign_no


def test_a_timeout_does_not_hold_up_other_messages(sim):
    slow, quick = sim.client(timeout=QUICK), sim.client()
    sim.control.add_fault(Fault(kind="timeout", infno="9001", hold_seconds=HOLD))
    with pytest.raises(InsuranceTimeout):
        slow.sign_in(slow.new_msgid())
    started = time.monotonic()
    quick.sign_in(quick.new_msgid())
    assert time.monotonic() - started < QUICK


def test_expired_sign_in_is_renewed_and_the_message_resent(cashier, sim):
    cashier.identify(ZHANG_WEI)
    sim.control.expire_sign_ins()
    person = cashier.identify(ZHANG_WEI)  # refused for its sign_no, signed in again, resent
    assert person.baseinfo.psn_no == ZHANG_WEI


def test_renewing_the_sign_in_really_sends_9001(cashier, sim):
    cashier.identify(ZHANG_WEI)
    sim.control.expire_sign_ins()
    sim.control.add_fault(Fault(kind="error", infno="9001", err_msg="sign-in closed"))
    with pytest.raises(InsuranceError, match="sign-in closed"):
        cashier.identify(ZHANG_WEI)


def test_first_business_call_signs_in_by_itself(cashier, sim):
    sim.control.add_fault(Fault(kind="error", infno="9001", err_msg="sign-in closed"))
    with pytest.raises(InsuranceError, match="sign-in closed"):
        cashier.identify(ZHANG_WEI)
    assert cashier.identify(ZHANG_WEI).baseinfo.psn_no == ZHANG_WEI


def test_a_platform_that_is_not_there_is_a_timeout(sim):
    insurance = sim.client(url="http://127.0.0.1:9", timeout=QUICK)
    with pytest.raises(InsuranceTimeout, match="transport failed"):
        insurance.sign_in(insurance.new_msgid())


def test_a_wrong_address_answering_http_errors_is_a_timeout(sim):
    insurance = sim.client(url=sim.url + "/nowhere")
    with pytest.raises(InsuranceTimeout, match="HTTP 404"):
        insurance.sign_in(insurance.new_msgid())


def test_a_restarted_hub_resends_its_kept_request_and_learns_the_first_answer(sim, clock):
    """The hub keeps msgid and request (as JSON) before sending; it crashes while waiting."""
    before_crash = sim.client(timeout=QUICK)
    request = Cashier(before_crash, clock).ready_to_settle(ZHANG_WEI, BILL)
    msgid, kept = before_crash.new_msgid(), request.model_dump_json()
    sim.control.add_fault(Fault(kind="timeout_after", infno="2207", hold_seconds=HOLD))
    with pytest.raises(InsuranceTimeout):
        before_crash.settle(msgid, request)
    before_crash.close()

    after_restart = sim.client()  # signs in afresh, with msgids of its own
    settled = after_restart.settle(msgid, SettlementRequest.model_validate_json(kept))
    assert [s.setl_id for s in sim.control.settlements()] == [settled.setl_id]
    assert sim.control.person(ZHANG_WEI).account_balance_fen == 3_000 - settled.acct_pay
