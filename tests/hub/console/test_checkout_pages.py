"""Hospital checkouts as the console lists and shows them."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

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


def test_bill_and_day_filters_run_in_the_query_not_over_a_scan(as_role, opened, db, fleet, clock):
    # More checkouts than the page shows: the one searched for is still found by its bill.
    def more(s) -> None:
        unit = gateway.get_unit(s, fleet["unit"])
        caller = Caller.terminal(fleet["terminal"], unit.id, unit.institution_code)
        for n in range(120):
            bill = Bill.model_validate({**BILL, "bill_no": f"MZ20261129-{1000 + n}"})
            checkout.open_checkout(s, bill, caller, clock())

    db.transaction(more)
    client, _ = as_role("vera")
    row = f'href="/console/checkouts/{opened}"'
    assert row not in client.get("/console/checkouts").text  # older than the newest 100
    assert row in client.get("/console/checkouts?bill=0042").text
    assert row in client.get("/console/checkouts?bill=0042&day=2026-11-29").text
    assert client.get("/console/checkouts?day=tomorrow").status_code == 422


def _reconcile_with_the_platform_away(settings, db, clock) -> None:
    """A real run of the reconciliation whose platform does not answer (a closed port)."""
    from hub.app import checkout_flow
    from hub.checkout.reconciliation import Reconciler

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    away = settings.model_copy(update={"insurance_base_url": f"http://127.0.0.1:{closed}"})
    flow = checkout_flow(away, db, clock)
    try:
        report = Reconciler(flow, ZoneInfo("Asia/Shanghai")).run(date(2026, 11, 29))
    finally:
        flow.close()
    assert [d.kind for d in report.discrepancies] == ["platform_unreachable"]


def test_reconciliation_differences_are_an_alert_and_shown_with_the_checkouts(
    as_role, fleet, settings, db, clock
):
    client, _ = as_role("vera")
    assert "Reconciliation of" not in client.get("/console/").text
    _reconcile_with_the_platform_away(settings, db, clock)
    dashboard = client.get("/console/").text
    alerts = dashboard[dashboard.index("Needs attention") :]
    assert "Reconciliation of 2026-11-29 found 1 difference" in alerts
    assert "0 unit(s) differ, 1 unreachable" in alerts
    assert 'href="/console/checkouts?day=2026-11-29#reconciliation"' in alerts
    page = client.get("/console/checkouts?day=2026-11-29").text
    assert 'id="reconciliation"' in page and "platform_unreachable" in page


def test_dashboard_counts_todays_checkouts(as_role, opened):
    client, _ = as_role("vera")
    page = client.get("/console/").text
    money = page[page.index('id="money-today"') : page.index('id="channels-today"')]
    assert "0 settled · 0 revoked · 1 opened" in money
