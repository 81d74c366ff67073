"""The ledger as the console shows it: balances, transfers, look-ups and the books check."""

from __future__ import annotations

import pytest

from hub.ledger import service as ledger

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _card_account(db) -> int:
    with db.session() as s:
        return ledger.find_account(s, "card", "K10000001").id


def test_card_account_shows_balance_and_its_transfers(as_role, payment, db):
    client, _ = as_role("vera")
    page = client.get(f"/console/ledger/accounts/{_card_account(db)}").text
    assert "376.55" in page  # 500.00 deposited less 123.45 paid
    assert "pay:1:capture" in page and "test:deposit" in page


def test_lookups_lead_to_the_account_or_name_the_problem(as_role, payment, db):
    client, _ = as_role("vera")
    found = client.get("/console/ledger?kind=card&owner=K10000001")
    assert found.headers["location"] == f"/console/ledger/accounts/{_card_account(db)}"
    missing = client.get("/console/ledger?kind=card&owner=K99")
    assert missing.status_code == 422 and 'id="e-owner"' in missing.text
    assert "pay:1:hold" in client.get(f"/console/ledger?reference=payment:{payment}").text
    assert client.get("/console/ledger/accounts/999").status_code == 404


def test_transfer_page_names_both_accounts(as_role, payment):
    client, _ = as_role("vera")
    page = client.get("/console/ledger/transfers/pay:1:capture")
    assert page.status_code == 200
    assert "unit_settlement" in page.text and "card" in page.text
    assert client.get("/console/ledger/transfers/nope").status_code == 404


def test_books_are_checked_from_the_ledger_page(as_role, payment):
    client, _ = as_role("vera")
    page = client.get("/console/ledger?check=1")
    assert page.status_code == 200 and "The books balance." in page.text
