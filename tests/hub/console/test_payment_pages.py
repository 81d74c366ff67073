"""A card payment's page and refunds: masked card only, ledger legs, role-checked refunds."""

from __future__ import annotations

import re

import pytest

from hub.audit import service as audit
from hub.ledger import service as ledger
from tests.hub.console.conftest import PAN

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


def test_latest_payments_are_listed_and_filtered(as_role, payment):
    client, _ = as_role("vera")
    listed = client.get("/console/payments").text
    assert f'href="/console/payments/{payment}"' in listed and "623170******7510" in listed
    for query in ("card=7510", "card=623170******7510", "status=captured", "day=2026-11-29"):
        assert (
            f'href="/console/payments/{payment}"' in client.get(f"/console/payments?{query}").text
        )
    for query in ("card=1234", "status=declined", "day=2026-11-28"):
        assert "No payments match" in client.get(f"/console/payments?{query}").text
    assert client.get("/console/payments?day=29/11").status_code == 422
    assert client.get(f"/console/payments?payment={payment}").status_code == 303


def test_dashboard_counts_todays_money(as_role, payment):
    client, csrf = as_role("oscar")
    path = f"/console/payments/{payment}"
    refund_id = _refund_id(client.get(path).text)
    client.post(
        f"{path}/refunds", data={"amount": "3.45", "refund_id": refund_id, "csrf_token": csrf}
    )
    page = client.get("/console/").text
    assert "123.45" in page and "1 captured" in page  # paid to units
    assert "3.45" in page and "1 refund" in page
