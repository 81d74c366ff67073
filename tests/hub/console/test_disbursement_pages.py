"""Loan disbursements through their callbacks: outcome, attempts, ledger legs, re-send."""

from __future__ import annotations

import pytest

from hub.audit import service as audit
from hub.outbox import service as outbox

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def test_list_shows_the_credited_loan_with_a_masked_card(as_role, disbursement):
    client, _ = as_role("vera")
    page = client.get("/console/disbursements").text
    assert "L-0001" in page and "3,000.00" in page and "Credited" in page
    assert "K10***001" in page and "K10000001" not in page


def test_detail_shows_callbacks_and_ledger_legs(as_role, disbursement):
    client, _ = as_role("vera")
    page = client.get(f"/console/disbursements/{disbursement}")
    assert page.status_code == 200
    assert "disb.credited.L-0001" in page.text
    assert "loan_disbursement" in page.text  # the ledger leg's code
    assert "Re-sending needs the operator role." in page.text


def test_unknown_order_is_a_404_page(as_role, disbursement):
    client, _ = as_role("vera")
    assert client.get("/console/disbursements/L-9999").status_code == 404


def test_operator_resends_a_dead_callback(as_role, disbursement, db, clock):
    with db.session() as s:
        message = outbox.find_message(s, "disb.credited.L-0001")
    db.transaction(lambda s: _kill(s, message.id))
    client, csrf = as_role("oscar")
    assert "Dead lettered" in client.get("/console/disbursements?state=dead").text
    answer = client.post(f"/console/disbursements/{disbursement}/resend", data={"csrf_token": csrf})
    assert answer.status_code == 303
    with db.session() as s:
        assert outbox.get_message(s, message.id).state == "pending"
        entry = audit.recent(s, 1)[0]
    assert (entry.action, entry.actor) == ("outbox.resent", "operator:oscar")


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
    assert "3,000.00" in page and "1 credited" in page
