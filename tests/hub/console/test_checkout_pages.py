"""Hospital checkouts as the console lists and shows them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.checkout import service as checkout
from hub.gateway import service as gateway
from hub.payments.service import Caller
from integrations.his.schemas import Bill

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

BILL = {
    "bill_no": "MZ20261129-0042",
    "patient": {"patient_no": "P001", "name": "Zhang Wei"},
    "created_at": datetime(2026, 11, 29, 7, 30, tzinfo=UTC),
    "lines": [
        {
            "line_no": "1",
            "item_code": "H01",
            "national_code": "XA01",
            "name": "Amoxicillin",
            "item_class": "A",
            "quantity": "2",
            "price_fen": 1250,
            "amount_fen": 2500,
            "dept_code": "D1",
            "dept_name": "Internal medicine",
            "doctor_code": "Dr1",
            "doctor_name": "Li",
        },
    ],
}


@pytest.fixture
def opened(db, fleet, clock) -> int:
    def open_it(s) -> int:
        unit = gateway.get_unit(s, fleet["unit"])
        caller = Caller.terminal(fleet["terminal"], unit.id, unit.institution_code)
        return checkout.open_checkout(s, Bill.model_validate(BILL), caller, clock()).id

    return db.transaction(open_it)


def test_checkouts_are_listed_and_searched_by_bill_state_and_day(as_role, opened):
    client, _ = as_role("vera")
    row = f'href="/console/checkouts/{opened}"'
    assert row in client.get("/console/checkouts").text
    for query in ("bill=0042", "state=bill_received", "day=2026-11-29"):
        assert row in client.get(f"/console/checkouts?{query}").text
    for query in ("bill=9999", "state=completed", "day=2026-11-30"):
        assert "No checkouts match" in client.get(f"/console/checkouts?{query}").text


def test_checkout_page_shows_the_bill_lines_and_no_money_yet(as_role, opened):
    client, _ = as_role("vera")
    page = client.get(f"/console/checkouts/{opened}").text
    assert "Amoxicillin" in page and "25.00" in page
    assert "No money moved yet" in page
    assert client.get("/console/checkouts/999").status_code == 404
