"""Failure at every step ends in one outcome: money fully moved or not moved, never half.

The steps are the platform messages: 1101 person information, 2201 registration, 2204 fee
upload, 2206 pre-settlement (all sent by identification), 2207 settlement (sent when the
self-pay is collected) and 2208 revoke. At each one the platform times out (before or after
doing the work), answers "duplicate msgid", refuses (infcode -1), or the hub dies before or
after sending; the outbox of a freshly wired hub then resumes with the same msgid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub.app import checkout_flow
from hub.checkout.flow import InsurancePlatforms
from hub.checkout.schemas import SelfPayIn
from hub.checkout.service import Caller, Credential
from integrations.medical_insurance.client import CertType, HttpMedicalInsurance
from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import BILL_LINES, CARD, UNIT
from tests.hub.checkout.window import INSTITUTION, ZHANG_WEI, Leg, Window

IDENTIFY = ("1101", "2201", "2204", "2206")
STEPS = (*IDENTIFY, "2207", "2208")
SETTLED = {"medfee": 10_160, "fund": 1_184, "account": 3_000, "cash": 5_976}


def stage_of(infno: str) -> str:
    return "identify" if infno in IDENTIFY else "settle" if infno == "2207" else "revoke"


def by_api(window: Window, stage: str, checkout_id: int) -> dict[str, Any]:
    if stage == "identify":
        return window.identify(checkout_id, card=ZHANG_WEI)
    if stage == "settle":
        return window.self_pay(checkout_id, "card")
    return window.revoke(checkout_id)


def checkout_through(window: Window, infno: str, act: Callable[[str, int], object]) -> int:
    """A whole checkout (and its revoke, when the step is 2208); `act` does infno's stage."""
    bill = window.his_bill(*BILL_LINES)
    checkout_id = window.open(bill.bill_no)["checkout_id"]
    stages = ["identify", "settle"] + (["revoke"] if infno == "2208" else [])
    for stage in stages:
        if stage == stage_of(infno):
            act(stage, checkout_id)
        else:
            by_api(window, stage, checkout_id)
    return checkout_id


def assert_one_outcome(window: Window, checkout_id: int, infno: str) -> None:
    """Exactly the worked example's money, once: on the platform, in the ledger, on the card."""
    done = window.view(checkout_id)
    revoked = infno == "2208"
    assert done["state"] == ("revoked" if revoked else "completed"), done
    assert done["settlement"] == SETTLED
    booked = window.sims.platform.booked_settlements()
    assert len(booked) == 1 and booked[0].setl_id == done["setl_id"]
    assert (booked[0].revoke_setl_id is not None) == revoked
    legs = window.legs(checkout_id)
    assert [leg for leg in legs if leg.code != "card_payment/hold"][:3] == [
        Leg("insurance_fund_clearing:330100", UNIT, 1_184, "insurance_fund"),
        Leg("personal_account_clearing:330100", UNIT, 3_000, "personal_account"),
        Leg(CARD, UNIT, 5_976, "card_payment/post"),
    ]
    assert len(legs) == (7 if revoked else 4)
    assert window.posted("unit_settlement", INSTITUTION) == (0 if revoked else 10_160)
    assert window.available("K10000001") == 50_000 - (0 if revoked else 5_976)
    person = window.sims.platform.person("33010000000000000001")
    assert person.account_balance_fen == (3_000 if revoked else 0)
    assert window.invariants() == []


# ---- the platform does not answer -------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize("infno", STEPS)
def test_a_step_the_platform_did_but_the_hub_never_heard_of_resumes_to_one_outcome(window, infno):
    """The platform does the work and the answer is lost; the resend gets the first answer."""

    def unanswered(stage: str, checkout_id: int) -> None:
        window.sims.fault("timeout_after", infno)
        assert by_api(window, stage, checkout_id)["in_flight"] is True
        assert window.outbox() >= 1  # a restarted hub's worker resends the same msgid

    checkout_id = checkout_through(window, infno, unanswered)
    assert_one_outcome(window, checkout_id, infno)


@pytest.mark.parametrize("kind", ["timeout", "timeout_after"])
def test_a_settlement_timeout_resumes_whether_or_not_the_platform_booked_it(window, kind):
    def unanswered(stage: str, checkout_id: int) -> None:
        window.sims.fault(kind, "2207")
        assert by_api(window, stage, checkout_id)["state"] == "self_pay_collected"
        window.outbox()

    assert_one_outcome(window, checkout_through(window, "2207", unanswered), "2207")


@sqlite_only
@pytest.mark.parametrize("infno", ["2207"])
def test_a_duplicate_msgid_answer_is_not_a_verdict_the_same_msgid_goes_again(window, infno):
    def refused_as_duplicate(stage: str, checkout_id: int) -> None:
        window.sims.fault("duplicate_msgid", infno)
        assert by_api(window, stage, checkout_id)["in_flight"] is True
        window.outbox()

    assert_one_outcome(window, checkout_through(window, infno, refused_as_duplicate), infno)


# ---- the hub dies -----------------------------------------------------------------------------


class Killed(BaseException):
    """The hub process dies here: nothing after this line of the driver runs."""


METHODS = {
    "person_info": "1101",
    "register_visit": "2201",
    "upload_fees": "2204",
    "pre_settle": "2206",
    "settle": "2207",
    "revoke_settlement": "2208",
}


class DyingClient:
    """The real HTTP client inside a hub that dies just before or just after one message."""

    def __init__(self, real: HttpMedicalInsurance, infno: str, after: bool) -> None:
        self.real, self.infno, self.after = real, infno, after

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if METHODS.get(name) != self.infno:
            return method

        def dying(*args: Any) -> Any:
            if not self.after:
                raise Killed(f"before {self.infno}")
            method(*args)
            raise Killed(f"after {self.infno}: the platform answered, nobody heard")

        return dying


def dying_hub(window: Window, infno: str, after: bool) -> Any:
    flow = checkout_flow(window.settings, window.db, window.clock)
    settings = window.settings
    flow.platforms = InsurancePlatforms(
        lambda institution: DyingClient(
            HttpMedicalInsurance(
                settings.insurance_base_url, institution, timeout=5, clock=window.clock
            ),
            infno,
            after,
        )
    )
    return flow


KILLED_AT = [(infno, True) for infno in STEPS] + [("2207", False)]


@sqlite_only
@pytest.mark.parametrize(
    ("infno", "after"), KILLED_AT, ids=[f"{i}-{'after' if a else 'before'}" for i, a in KILLED_AT]
)
def test_the_hub_killed_at_any_step_resumes_from_the_outbox_to_one_outcome(window, infno, after):
    caller = Caller.terminal(window.terminal.terminal_id, window.unit_id, INSTITUTION)

    def killed(stage: str, checkout_id: int) -> None:
        hub = dying_hub(window, infno, after)
        with pytest.raises(Killed):
            if stage == "identify":
                card = Credential(CertType.SOCIAL_SECURITY_CARD, **_card())
                hub.identify(caller, checkout_id, card)
            elif stage == "settle":
                hub.settle(caller, checkout_id, SelfPayIn(method="card"))
            else:
                hub.revoke(caller, checkout_id)
        # The restarted hub: its worker waits out the dead driver's lease, then resends.
        window.outbox()
        assert window.view(checkout_id)["in_flight"] is True
        window.clock.advance(window.settings.checkout_call_lease_seconds + 1)
        window.outbox()

    assert_one_outcome(window, checkout_through(window, infno, killed), infno)


def _card() -> dict[str, str]:
    return {"cert_no": ZHANG_WEI["card_number"], "card_sn": ZHANG_WEI["card_id_code"]}


# ---- the platform refuses ---------------------------------------------------------------------


@sqlite_only
@pytest.mark.parametrize(
    ("infno", "state", "code"),
    [
        ("1101", "bill_received", "patient_unknown"),
        ("2201", "failed", "visit_refused"),
        ("2204", "failed", "fees_refused"),
        ("2206", "failed", "pre_settlement_refused"),
        ("2207", "failed", "settlement_refused"),
    ],
)
def test_a_refusal_before_settlement_ends_clearly_with_no_money_moved(window, infno, state, code):
    bill = window.his_bill(*BILL_LINES)
    checkout_id = window.open(bill.bill_no)["checkout_id"]
    window.sims.fault("error", infno, err_msg="platform says no (injected)")
    out = window.identify(checkout_id, card=ZHANG_WEI)
    if infno == "2207":
        out = window.self_pay(checkout_id, "card")
    assert (out["state"], out["failure_code"], out["in_flight"]) == (state, code, False)
    assert window.available("K10000001") == 50_000  # any hold was voided
    assert window.posted("unit_settlement", INSTITUTION) == 0
    assert window.sims.platform.booked_settlements() == []
    assert window.invariants() == []
    if infno == "1101":  # the cashier tries again; this time the platform answers
        assert window.identify(checkout_id, card=ZHANG_WEI)["state"] == "pre_settled"


@sqlite_only
def test_a_refused_revoke_leaves_the_settlement_and_its_money_in_place(window):
    bill = window.his_bill(*BILL_LINES)
    checkout_id = window.open(bill.bill_no)["checkout_id"]
    window.identify(checkout_id, card=ZHANG_WEI)
    window.self_pay(checkout_id, "card")
    window.sims.fault("error", "2208", err_msg="revoke window closed (injected)")
    out = window.revoke(checkout_id)
    assert (out["state"], out["failure_code"]) == ("completed", "revoke_refused")
    assert window.posted("unit_settlement", INSTITUTION) == 10_160
    assert window.sims.platform.booked_settlements()[0].revoke_setl_id is None
    assert window.revoke(checkout_id)["state"] == "revoked"  # and later it goes through
