"""The audit page lists the trail and its chain check names a tampered row."""

from __future__ import annotations

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def test_audit_page_shows_entries_newest_first(as_role):
    client, _ = as_role("vera")
    page = client.get("/console/audit")
    assert page.status_code == 200
    assert page.text.index("operator.login") < page.text.index("operator.created")


def test_chain_verification_reports_intact(as_role):
    client, _ = as_role("vera")
    page = client.get("/console/audit?verify=1")
    assert "Chain intact." in page.text


def test_chain_verification_detects_a_tampered_row(as_role, db):
    client, _ = as_role("vera")
    with db.engine.begin() as conn:
        seq = conn.execute(text("SELECT MIN(seq) FROM audit_entries")).scalar_one()
        conn.execute(
            text("UPDATE audit_entries SET subject = 'operator:mallory' WHERE seq = :s"),
            {"s": seq},
        )
    page = client.get("/console/audit?verify=1")
    assert f"Chain broken at entry #{seq}:" in page.text
    assert 'class="broken"' in page.text  # the row itself is marked in the list


def test_filter_by_action(as_role):
    client, _ = as_role("vera")
    page = client.get("/console/audit?action=operator.created")
    assert "operator.created" in page.text
    assert "<code>operator:vera</code>" in page.text
    assert ">operator.login<" not in page.text
