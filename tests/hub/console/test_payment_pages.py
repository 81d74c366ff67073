"""A card payment's page and refunds: masked card only, ledger legs, role-checked refunds."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from hub.audit import service as audit
from hub.ledger import service as ledger
from tests.hub.console.seeding import PAN

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _refund_id(html: str) -> str:
    return re.search(r'name="refund_id" value="([^"]+)"', html)[1]


def test_payment_page_shows_masked_card_amounts_and_ledger_legs(as_role, payment):
    client, _ = as_role("vera")
    page = client.get(f"/console/payments/{payment}").text
    assert "623170******7510" in page
    assert PAN not in page
    assert "123.45" in page and "Captured" in page
    assert "card_payment" in page or "payment:" in page


def test_operator_refunds_part_then_the_rest_and_no_more(as_role, payment, db):
    client, csrf = as_role("oscar")
    path = f"/console/payments/{payment}"
    first = _refund_id(client.get(path).text)
    answer = client.post(
        f"{path}/refunds", data={"amount": "23.45", "refund_id": first, "csrf_token": csrf}
    )
    assert answer.status_code == 303
    again = client.post(
        f"{path}/refunds", data={"amount": "23.45", "refund_id": first, "csrf_token": csrf}
    )
    assert again.status_code == 303  # a double submit refunds once
    page = client.get(path).text
    assert "23.45" in page and "100.00" in page  # refunded, and left to refund
    too_much = client.post(
        f"{path}/refunds",
        data={"amount": "100.01", "refund_id": _refund_id(page), "csrf_token": csrf},
    )
    assert too_much.status_code == 422 and 'id="e-amount"' in too_much.text
    with db.session() as s:
        legs = ledger.transfers_for(s, f"payment:{payment}")
        entry = audit.recent(s, 1)[0]
    assert sum(t.amount for t in legs if t.code == "refund") == 23_45
    assert entry.actor == "operator:oscar"


@pytest.mark.parametrize("amount", ["-1", "0", "12.345", "abc", "1e3"])
def test_refund_amount_must_be_yuan_with_two_decimals(as_role, payment, amount):
    client, csrf = as_role("oscar")
    path = f"/console/payments/{payment}"
    refund_id = _refund_id(client.get(path).text)
    answer = client.post(
        f"{path}/refunds", data={"amount": amount, "refund_id": refund_id, "csrf_token": csrf}
    )
    assert answer.status_code == 422
    assert "Refunded" in answer.text and "0.00" in answer.text


def test_viewer_sees_the_refund_button_disabled_and_is_refused(as_role, payment, db):
    client, csrf = as_role("vera")
    path = f"/console/payments/{payment}"
    page = client.get(path).text
    assert "Refunds need the operator role" in page
    answer = client.post(
        f"{path}/refunds",
        data={"amount": "1.00", "refund_id": _refund_id(page), "csrf_token": csrf},
    )
    assert answer.status_code == 403
    with db.session() as s:
        assert not [t for t in ledger.transfers_for(s, f"payment:{payment}") if t.code == "refund"]


def test_payments_are_searched_in_the_payments_domain(as_role, payment):
    client, _ = as_role("vera")
    row = f'href="/console/payments/{payment}"'
    listed = client.get("/console/payments").text
    assert row in listed and "623170******7510" in listed and "Card tap" in listed
    for query in (
        "card=7510",
        "card=623170******7510",
        "card=623170*7510",
        "status=captured",
        "channel=card_tap",
        "day_from=2026-11-29&day_to=2026-11-29",
        "unit_id=1",
    ):
        assert row in client.get(f"/console/payments?{query}").text, query
    for query in (
        "card=1234",
        "status=declined",
        "channel=payment_code",
        "channel=bill_code",
        "bill_number=HIS",
        "day_to=2026-11-28",
        "unit_id=99",
    ):
        assert "No payments match" in client.get(f"/console/payments?{query}").text, query
    assert client.get(f"/console/payments?payment={payment}").status_code == 303


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("day_from=29/11", "day_from"),
        ("card=12345", "card"),
        ("day_from=2026-11-30&day_to=2026-11-29", "day_to"),
        ("channel=cash", "channel"),
        ("unit_id=x", "unit_id"),
    ],
)
def test_a_search_it_cannot_read_names_the_field(as_role, payment, query, field):
    client, _ = as_role("vera")
    answer = client.get(f"/console/payments?{query}")
    assert answer.status_code == 422 and f'id="e-{field}"' in answer.text


def test_a_full_card_number_typed_is_never_shown_back(as_role, payment):
    client, _ = as_role("vera")
    answer = client.get(f"/console/payments?card={PAN}")
    assert answer.status_code == 422 and 'id="e-card"' in answer.text
    assert PAN not in answer.text and "623170******7510" in answer.text


@pytest.mark.parametrize("typed", [PAN, "6231 7000 0000 7510", "6231-7000-0000-7510"])
def test_a_card_number_typed_as_a_payment_number_is_refused_unseen(as_role, payment, typed):
    client, _ = as_role("vera")
    answer = client.get("/console/payments", params={"payment": typed}, follow_redirects=False)
    assert answer.status_code == 422 and 'id="e-payment"' in answer.text
    assert all(part not in answer.text for part in ("7000 0000", "70000000", "7000-0000"))
    assert PAN[6:12] not in answer.text


def test_older_payments_are_a_page_away(as_role, payment, db, clock):
    from hub.payments import service as payments

    def more(s) -> None:
        first = payments.get_payment(s, payment, payments.Caller("test", None))
        caller = payments.Caller("terminal:test", first.unit_id, first.institution_code)
        for n in range(60):
            payments.hold_card(
                s,
                payments.HoldRequest(
                    idempotency_key=f"test:more:{n}",
                    channel=payments.Channel.CARD_TAP,
                    card_id=first.card_id,
                    card_account_id=first.card_account_id,
                    amount=1,
                    caller=caller,
                    timeout_seconds=300,
                    pan_masked=first.pan_masked,
                ),
                clock(),
            )

    db.transaction(more)
    client, _ = as_role("vera")
    first_page = client.get("/console/payments?card=7510").text
    assert f'href="/console/payments/{payment}"' not in first_page  # the oldest of 61
    older = re.search(r'id="older" href="([^"]+)"', first_page)[1].replace("&amp;", "&")
    assert "card=7510" in older and "before=" in older
    second_page = client.get(older).text
    assert f'href="/console/payments/{payment}"' in second_page
    assert 'id="older"' not in second_page


def test_dashboard_counts_todays_money_from_the_payments(as_role, payment, db):
    client, csrf = as_role("oscar")
    path = f"/console/payments/{payment}"
    refund_id = _refund_id(client.get(path).text)
    client.post(
        f"{path}/refunds", data={"amount": "3.45", "refund_id": refund_id, "csrf_token": csrf}
    )
    with db.session() as s:  # the figures do not come from the audit trail
        s.execute(text("DELETE FROM audit_entries"))
        s.commit()
    page = client.get("/console/").text
    money = page[page.index('id="money-today"') : page.index('id="channels-today"')]
    assert "Card taps today" in money and "123.45" in money and "1 captured" in money
    channels = page[page.index('id="channels-today"') :]
    assert "3.45" in channels and "1 refund" in channels
