"""The ledger as the console shows it: balances, transfers, look-ups and the books check."""

from __future__ import annotations

import re

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


def test_accounts_are_listed_by_kind_a_page_at_a_time(as_role, payment, db, clock):
    from hub.ledger.schemas import AccountIn

    def open_many(s) -> None:
        for n in range(60):
            ledger.create_account(s, AccountIn(kind="fees", owner_ref=f"fee-{n:02d}"), clock())

    db.transaction(open_many)
    client, _ = as_role("vera")
    listed = client.get("/console/ledger").text
    accounts = listed[listed.index('id="accounts"') :]
    card = _card_account(db)
    assert f'href="/console/ledger/accounts/{card}"' in accounts and "376.55" in accounts
    cards = client.get("/console/ledger?kind=card").text
    assert (
        "K10***001" in cards
        and "K10000001" not in cards
        and "fee-00" not in cards
        and 'id="next-accounts"' not in cards
    )
    fees = client.get("/console/ledger?kind=fees").text
    assert "fee-00" in fees and "fee-50" not in fees and "K10***001" not in fees
    following = re.search(r'id="next-accounts" href="([^"]+)"', fees)[1].replace("&amp;", "&")
    rest = client.get(following).text
    assert "fee-50" in rest and "fee-59" in rest and "fee-00" not in rest
