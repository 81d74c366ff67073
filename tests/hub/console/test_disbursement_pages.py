"""Loan disbursements in the console: every client's orders, callbacks, ledger legs, re-send
(operator) and undo (admin)."""

from __future__ import annotations

import pytest

from hub.audit import service as audit
from hub.disbursements import service as disbursements
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn
from hub.outbox import service as outbox

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
UNDO = "/console/disbursements/L-0001/undo"


def test_list_shows_the_credited_loan_with_a_masked_card(as_role, disbursement):
    client, _ = as_role("vera")
    page = client.get("/console/disbursements").text
    assert "L-0001" in page and "3,000.00" in page and "Credited" in page
    assert "micro-loans" in page  # the loan client, since the list spans them all
    assert "K10***001" in page and "K10000001" not in page


def test_search_by_external_id_status_and_outcome_day(as_role, disbursement):
    client, _ = as_role("vera")
    row = 'href="/console/disbursements/L-0001"'
    for query in ("q=L-0", "q=L-0001", "status=credited", "day_from=2026-11-29&day_to=2026-11-29"):
        assert row in client.get(f"/console/disbursements?{query}").text, query
    for query in ("q=L-1", "status=undone", "day_from=2026-11-30", "day_to=2026-11-28"):
        assert "No disbursements match" in client.get(f"/console/disbursements?{query}").text
    refused = client.get("/console/disbursements?day_from=2026-11-30&day_to=2026-11-29")
    assert refused.status_code == 422 and 'id="e-day_to"' in refused.text


def test_detail_shows_callbacks_ledger_legs_and_who_may_act(as_role, disbursement):
    client, _ = as_role("vera")
    page = client.get(f"/console/disbursements/{disbursement}")
    assert page.status_code == 200
    assert "disb.credited.L-0001" in page.text
    assert "loan_disbursement" in page.text  # the ledger leg's code
    assert "Re-sending needs the operator role." in page.text
    assert "Undoing a disbursement needs the admin role." in page.text
    admin, _ = as_role("ada")
    assert 'id="undo-button" >' in admin.get(f"/console/disbursements/{disbursement}").text


def test_unknown_order_is_a_404_page(as_role, disbursement):
    client, _ = as_role("vera")
    assert client.get("/console/disbursements/L-9999").status_code == 404
    admin, csrf = as_role("ada")
    answer = admin.post(
        "/console/disbursements/L-9999/undo", data={"reason": "x", "csrf_token": csrf}
    )
    assert answer.status_code == 404


def test_operator_resends_a_dead_callback(as_role, disbursement, db, clock):
    with db.session() as s:
        message = outbox.find_message(s, "disb.credited.L-0001")
    db.transaction(lambda s: _kill(s, message.id))
    client, csrf = as_role("oscar")
    listed = client.get("/console/disbursements").text
    assert 'id="dead-callbacks"' in listed and "Dead lettered" in listed
    answer = client.post(f"/console/disbursements/{disbursement}/resend", data={"csrf_token": csrf})
    assert answer.status_code == 303
    with db.session() as s:
        assert outbox.get_message(s, message.id).state == "pending"
        entry = audit.recent(s, 1)[0]
    assert (entry.action, entry.actor) == ("outbox.resent", "operator:oscar")
    assert 'id="dead-callbacks"' not in client.get("/console/disbursements").text


def _kill(s, message_id: int) -> None:
    """The receiver refused for good: what the outbox worker records on a 4xx."""
    message = outbox.get_message(s, message_id)
    message.state = "dead"
    message.attempts = 24
    message.last_error = "HTTP 410"
    s.flush()


def test_dashboard_counts_todays_loans(as_role, disbursement):
    client, _ = as_role("vera")
    page = client.get("/console/").text
    money = page[page.index('id="money-today"') : page.index('id="channels-today"')]
    assert "3,000.00" in money and "1 credited · 0 rejected · 0 undone" in money


# Undo by an admin.


def _state(db) -> tuple[str, list[str], int, list[str]]:
    """The disbursement's status, its transfers, the card's balance, its callbacks."""
    with db.session() as s:
        d = disbursements.find(s, "L-0001")
        legs = [t.id for t in ledger.transfers_for(s, "disbursement:L-0001")]
        card = ledger.balance(ledger.find_account(s, "card", "K10000001")).posted
        callbacks = [m.event_id for m in disbursements.callbacks_of(s, "L-0001")]
    return d.status, legs, card, callbacks


@pytest.mark.parametrize("username", ["vera", "oscar"])
def test_viewer_and_operator_may_not_undo(as_role, disbursement, db, username):
    client, csrf = as_role(username)
    before = _state(db)
    answer = client.post(UNDO, data={"reason": "borrower cancelled", "csrf_token": csrf})
    assert answer.status_code == 403
    assert _state(db) == before and before[0] == "credited"
    with db.session() as s:
        last = audit.recent(s, 1)[0]
        assert audit.recent(s, 5, action="disbursement.undone") == []
    assert (last.action, last.actor) == ("console.refused", f"operator:{username}")
    assert last.subject == f"console:POST {UNDO}" and "needs role admin" in last.details["reason"]


def test_admin_undoes_once_and_the_loan_system_is_told(as_role, disbursement, db):
    status, legs, card, callbacks = _state(db)
    assert (status, legs, callbacks) == ("credited", ["disb:L-0001"], ["disb.credited.L-0001"])
    client, csrf = as_role("ada")
    form = {"reason": "borrower cancelled in the cooling-off period", "csrf_token": csrf}
    answer = client.post(UNDO, data=form)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"]).text
    assert "Undone: 3,000.00 CNY back from the card to loan funding." in page
    assert 'id="undo-button"' not in page and "disb-undo:L-0001" in page
    # Dr card 3,000.00 / Cr loan funding 3,000.00, naming the disbursement.
    status, legs, after, callbacks = _state(db)
    assert (status, legs, after) == ("undone", ["disb:L-0001", "disb-undo:L-0001"], card - 3_000_00)
    assert callbacks == ["disb.credited.L-0001", "disb.undone.L-0001"]  # as a client undo does
    with db.session() as s:
        reversal = ledger.get_transfer(s, "disb-undo:L-0001")
        funding = ledger.find_account(s, "loan_funding", "programme")
        assert (reversal.credit_account_id, reversal.code) == (funding.id, "reversal")
        (entry,) = audit.recent(s, 5, action="disbursement.undone")
        told = outbox.find_message(s, "disb.undone.L-0001")
        assert ledger.check_invariants(s) == []
    assert entry.actor == "operator:ada"
    assert entry.details == {
        "amount": 3_000_00,
        "reverses": "disb:L-0001",
        "reason": "borrower cancelled in the cooling-off period",
    }
    assert told.payload["event"]["disbursement"]["status"] == "undone"

    again = client.post(UNDO, data=form)  # a double submit, or a second admin
    assert again.status_code == 303
    assert "Already undone earlier" in client.get(again.headers["location"]).text
    assert _state(db) == (status, legs, after, callbacks)
    with db.session() as s:
        assert len(audit.recent(s, 5, action="disbursement.undone")) == 1


def test_undo_without_cover_is_refused_naming_the_shortfall(as_role, disbursement, db, clock):
    card = _state(db)[2]  # 500.00 + 3,000.00 - 123.45
    db.transaction(lambda s: _spend(s, card - 1_000_00, clock()))
    before = _state(db)
    client, csrf = as_role("ada")
    answer = client.post(UNDO, data={"reason": "fraud suspected", "csrf_token": csrf})
    assert answer.status_code == 409 and 'id="e-reason"' in answer.text
    assert "covers 1000.00 CNY of 3000.00 CNY: short by 2000.00 CNY (200000 fen)" in answer.text
    assert _state(db) == before


def _spend(s, amount: int, now) -> None:
    card = ledger.find_account(s, "card", "K10000001")
    treasury = ledger.find_account(s, "treasury", "bank")
    ledger.transfer(
        s,
        TransferIn(
            id="test:spend",
            debit_account_id=card.id,
            credit_account_id=treasury.id,
            amount=amount,
            code="card_payment",
        ),
        now,
    )


@pytest.mark.parametrize(("reason", "message"), [("", "say why"), ("x" * 129, "at most 128")])
def test_undo_needs_a_short_reason(as_role, disbursement, db, reason, message):
    client, csrf = as_role("ada")
    before = _state(db)
    answer = client.post(UNDO, data={"reason": reason, "csrf_token": csrf})
    assert answer.status_code == 422 and message in answer.text
    assert _state(db) == before
