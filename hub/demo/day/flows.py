"""Hospital checkouts (with the insurance split) and loan disbursements.

A checkout is followed as the cashier's window follows it: open the HIS bill, identify the
patient by card, pay the cash part from the card, and later perhaps revoke. When the platform
does not answer in time the checkout is in flight; the outbox carries it on and the window
polls it after each outbox run. The model moves money only on what the outside systems say:
the settlement the insurance platform booked (fund, personal account, cash) and its revoke.
"""

from __future__ import annotations

from typing import Any

from devices.agent.hub_client import HubRefused
from hub.demo.day.clients import error_code
from hub.demo.day.clock import ZONE
from hub.demo.day.faults import INSURANCE
from hub.demo.day.scene import Checkout, Loan, Mismatch, Outcome, Scene
from hub.demo.day.world import FUNDING
from integrations.loans.client import id_number_check
from integrations.medical_insurance.simulator import Fault

PATH = "/api/terminal/checkouts"
FUND_CLEARING = "insurance_fund_clearing"  # the bank's claim on the fund of the insured place
ACCOUNT_CLEARING = "personal_account_clearing"


# --- checkouts ----------------------------------------------------------------------------------


def checkout(scene: Scene) -> Outcome:
    """A HIS bill checked out at a hospital's window, the patient identified by card."""
    unit = scene.rng.choice(scene.district.units)
    bill_no = f"MZ{scene.next_number():06d}"
    bill = scene.outside.his.lookup(bill_no)  # the HIS makes up the bill: who will come
    assert bill is not None
    patient = bill["patient"]
    card = next(c for c in scene.district.cards if c.id_number == patient["certno"])
    _arm_platform(scene)
    try:
        view = unit.combo.post(PATH, {"bill_no": bill_no})  # the same bill again: the same
        c = Checkout(int(view["checkout_id"]), unit, card, bill_no)
        scene.checkouts.append(c)
        credential = {"card": {"card_number": card.number, "card_id_code": card.card_id_code}}
        return _timed_out(scene, _follow(scene, c, _step(c, "identify", credential)))
    finally:
        scene.outside.platform.clear_faults()


def revoke(scene: Scene) -> Outcome:
    """A completed checkout is revoked at its window: every leg back, the cash refunded."""
    done = [c for c in scene.checkouts if c.stage == "completed"]
    if not done:
        return Outcome("none", "nothing to revoke yet")
    c = scene.rng.choice(done)
    c.stage = "revoking"
    _arm_platform(scene)
    try:
        return _timed_out(scene, _follow(scene, c, _step(c, "revoke", {})))
    finally:
        scene.outside.platform.clear_faults()


def follow_in_flight(scene: Scene) -> list[str]:
    """After an outbox run: the windows look at their checkouts that were in flight."""
    seen = []
    for c in scene.in_flight():
        outcome = _follow(scene, c, c.unit.combo.get(f"{PATH}/{c.checkout_id}"))
        if outcome.word != "in_flight":
            seen.append(f"{c.bill_no} {outcome.word}")
    return seen


def _arm_platform(scene: Scene) -> None:
    """The step's insurance fault, if any: the platform sits on that message past the hub's
    timeout (`timeout`: doing nothing; `timeout_after`: doing the work first)."""
    planned = scene.network.faults.insurance
    if planned is not None:
        kind, infno = planned
        hold = scene.settings.insurance_timeout_seconds * 2
        scene.outside.platform.add_fault(Fault(kind=kind, infno=infno, hold_seconds=hold))


def _timed_out(scene: Scene, outcome: Outcome) -> Outcome:
    """Note the platform's timeout when it left the checkout in flight."""
    faults = scene.network.faults
    if outcome.word == "in_flight" and faults.insurance is not None:
        faults.note(INSURANCE, f"{INSURANCE} {faults.insurance[0]} {faults.insurance[1]}")
    return outcome


def _step(c: Checkout, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request of the window; after a lost answer the retry may find the step taken, and
    the window looks at the checkout instead."""
    terminal = c.unit.combo
    try:
        return terminal.post(f"{PATH}/{c.checkout_id}/{action}", body)
    except HubRefused as refusal:
        taken = ("checkout_wrong_state", "checkout_already_revoked")
        if refusal.code not in taken or not terminal.retried:
            raise
        return terminal.get(f"{PATH}/{c.checkout_id}")


def _follow(scene: Scene, c: Checkout, view: dict[str, Any]) -> Outcome:
    """Move the window (and the model) on from what the checkout now shows."""
    state, where = view["state"], f"{c.unit.code} {c.bill_no} {c.card.masked}"
    if view["in_flight"]:
        return Outcome("in_flight", f"{where} {state}")
    if c.stage == "identifying":
        if state != "pre_settled":
            c.stage = "ended"
            return Outcome(state, f"{where} {view['failure_code']}")
        return _pay(scene, c, view, where)
    if c.stage == "paying":
        return _settled(scene, c, view, where)
    if c.stage == "revoking":
        return _revoked(scene, c, view, where)
    raise Mismatch(f"checkout {c.bill_no} is {state} while the window was {c.stage}")


def _pay(scene: Scene, c: Checkout, view: dict[str, Any], where: str) -> Outcome:
    cash = int(view["pre_settlement"]["cash"])
    can_pay = scene.books.can_pay(c.card.key, cash)
    try:
        view = _step(c, "self-pay", {"method": "card"})
    except HubRefused as refusal:
        if refusal.code != "self_pay_declined":
            raise
        scene.expect(not can_pay, f"{where}: self-pay of {cash} declined, the model can pay it")
        c.stage = "ended"
        return Outcome("declined", f"{where} cash {cash}")
    scene.expect(can_pay, f"{where}: self-pay of {cash} taken, the model cannot pay it")
    c.stage = "paying"
    if cash:
        c.hold = f"checkout:{c.checkout_id}"
        scene.books.hold(c.hold, c.card.key, c.unit.key, cash, scene.hold_until())
    return _follow(scene, c, view)


def _booked(scene: Scene, setl_id: str | None) -> Any:
    found = [s for s in scene.outside.platform.booked_settlements() if s.setl_id == setl_id]
    scene.expect(len(found) == 1, f"the platform has no settlement {setl_id}")
    return found[0]


def _clearing(scene: Scene, booked: Any) -> tuple[tuple[str, str], tuple[str, str]]:
    division = scene.outside.platform.person(booked.psn_no).insuplc_admdvs
    return (FUND_CLEARING, division), (ACCOUNT_CLEARING, division)


def _settled(scene: Scene, c: Checkout, view: dict[str, Any], where: str) -> Outcome:
    books = scene.books
    if c.hold in books.holds:  # the hold is captured, or replaced if the cash part changed
        books.release(c.hold)
    if view["state"] != "completed":
        c.stage = "ended"
        return Outcome(view["state"], f"{where} {view['failure_code']}")
    booked = _booked(scene, view["setl_id"])
    split = view["settlement"]
    said = (split["fund"], split["account"], split["cash"])
    wanted = (booked.fund_fen, booked.account_fen, booked.cash_fen)
    scene.expect(said == wanted, f"{where}: the hub settled {said}, the platform booked {wanted}")
    fund, account = _clearing(scene, booked)
    books.transfer(c.card.key, c.unit.key, booked.cash_fen)
    books.transfer(fund, c.unit.key, booked.fund_fen)
    books.transfer(account, c.unit.key, booked.account_fen)
    c.stage, c.setl_id = "completed", booked.setl_id
    return Outcome("completed", f"{where} fund {wanted[0]} account {wanted[1]} cash {wanted[2]}")


def _revoked(scene: Scene, c: Checkout, view: dict[str, Any], where: str) -> Outcome:
    if view["state"] == "completed":  # the platform kept the settlement
        c.stage = "completed"
        return Outcome("kept", f"{where} {view['failure_code']}")
    scene.expect(view["state"] == "revoked", f"{where}: revoke ended {view['state']}")
    booked = _booked(scene, c.setl_id)
    scene.expect(booked.revoke_setl_id is not None, f"{where}: the platform did not revoke")
    fund, account = _clearing(scene, booked)
    scene.books.transfer(c.unit.key, c.card.key, booked.cash_fen)
    scene.books.transfer(c.unit.key, fund, booked.fund_fen)
    scene.books.transfer(c.unit.key, account, booked.account_fen)
    c.stage = "revoked"
    return Outcome("revoked", f"{where} {booked.medfee_fen}")


# --- loans --------------------------------------------------------------------------------------


def disbursement(scene: Scene) -> Outcome:
    """The loan system disburses an approved micro-loan to a cardholder's card."""
    rng, district = scene.rng, scene.district
    card = rng.choice(district.cards)
    amount = rng.randrange(10_000, 300_000, 100)
    external_id = f"L{scene.next_number():05d}"
    order = {
        "external_id": external_id,
        "loan_ref": f"LN{external_id}",
        "amount": amount,
        "card_number": card.number,
        "id_number_hash": id_number_check(card.id_number, district.id_hash_key),
        "purpose": "micro-loan",
        "value_date": scene.clock().astimezone(ZONE).date().isoformat(),
    }
    answer = district.loans.create(order)
    while answer.status_code == 409 and error_code(answer) == "disbursement_in_flight":
        # A hub died holding the order: the loan system tries again once its lease is up.
        scene.clock.advance(scene.settings.disbursement_in_flight_seconds + 1)
        answer = district.loans.create(order)
    credited = answer.status_code == 201
    scene.expect(
        credited == scene.books.can_pay(FUNDING, amount),
        f"loan {external_id} of {amount}: {answer.status_code} {error_code(answer)}",
    )
    if not credited:
        return Outcome("rejected", f"{card.masked} {amount} {error_code(answer)}")
    scene.books.transfer(FUNDING, card.key, amount)
    scene.loans.append(Loan(external_id, card, amount))
    return Outcome("credited", f"{card.masked} {amount}")


def undo(scene: Scene) -> Outcome:
    """The loan system undoes a credited loan; only while the card still holds the money."""
    open_loans = [loan for loan in scene.loans if not loan.undone]
    if not open_loans:
        return Outcome("none", "nothing to undo yet")
    loan = scene.rng.choice(open_loans)
    covered = scene.books.available(loan.card.key) >= loan.amount
    answer = scene.district.loans.undo(loan.external_id)
    where = f"{loan.card.masked} {loan.amount}"
    if answer.status_code != 200:
        code = error_code(answer)
        scene.expect(not covered and code == "undo_not_covered", f"undo {where}: {code}")
        return Outcome("not_covered", where)
    scene.expect(covered, f"undo {where} done, the model's card cannot cover it")
    scene.books.transfer(loan.card.key, FUNDING, loan.amount)
    loan.undone = True
    return Outcome("undone", where)
