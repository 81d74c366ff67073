"""Reconciliation with 3201 finds what differs between the hub's books and the platform's."""

from __future__ import annotations

import csv
from datetime import date
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from hub.checkout import service as checkout
from hub.checkout.reconciliation import Reconciler, Report
from hub.cli import app as sshub
from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import BILL_LINES
from tests.hub.checkout.window import INSTITUTION, WANG_FANG, ZHANG_WEI, Window

DAY = date(2026, 11, 29)  # the test clock's day in China


def settle(window: Window, card: dict[str, str] = ZHANG_WEI, **fault: str) -> dict:
    checkout_id = window.open(window.his_bill(*BILL_LINES).bill_no)["checkout_id"]
    window.identify(checkout_id, card=card)
    if fault:
        window.sims.fault(**fault)  # type: ignore[arg-type]
    return window.self_pay(checkout_id, "card")


def reconcile(window: Window) -> Report:
    flow = window.client.app.state.checkout  # type: ignore[attr-defined]
    return Reconciler(flow, ZoneInfo("Asia/Shanghai")).run(DAY)


def found(report: Report) -> list[tuple[str, str, int | None, int | None]]:
    return [(d.kind, d.field, d.hub, d.platform) for d in report.discrepancies]


def test_a_day_of_settlements_and_a_revoke_balances(window):
    settle(window)
    revoked = settle(window, WANG_FANG)
    window.revoke(revoked["checkout_id"])
    report = reconcile(window)
    assert report.balanced, report.summary()
    (unit,) = report.units
    assert (unit.institution_code, unit.hub.count, unit.hub.medfee) == (INSTITUTION, 1, 10_160)
    assert unit.platform == unit.hub


def test_a_settlement_missing_on_the_platform_is_found(window):
    settle(window)
    lost = settle(window, WANG_FANG)
    window.sims.platform.forget_settlement(lost["setl_id"])
    assert found(reconcile(window)) == [
        ("amount_mismatch", "medfee", 20_320, 10_160),
        ("amount_mismatch", "fund", 1_184 + 4_184, 1_184),
        ("amount_mismatch", "account", 3_000 + 3_176, 3_000),
        ("amount_mismatch", "cash", 5_976 + 2_800, 5_976),
        ("missing_on_platform", "count", 2, 1),
    ]


@sqlite_only
def test_an_amount_that_differs_is_found(window):
    done = settle(window)
    window.sims.platform.amend_settlement(
        done["setl_id"], fund_fen=1_284, account_fen=3_000, cash_fen=5_976
    )
    report = reconcile(window)
    assert found(report) == [
        ("amount_mismatch", "medfee", 10_160, 10_260),
        ("amount_mismatch", "fund", 1_184, 1_284),
    ]
    assert "1 with differences" in report.summary()


@sqlite_only
def test_a_settlement_the_hub_never_heard_of_is_in_doubt_and_missing_on_the_hub(window):
    done = settle(window, **{"kind": "timeout_after", "infno": "2207"})
    assert done["state"] == "self_pay_collected"  # the platform booked it; the answer was lost
    report = reconcile(window)
    assert found(report)[0] == ("in_doubt", f"checkout:{done['checkout_id']}", None, None)
    assert ("missing_on_hub", "count", 0, 1) in found(report)
    window.outbox()  # the resend learns the settlement: now the books agree
    assert reconcile(window).balanced


@sqlite_only
def test_sshub_reconcile_writes_the_csv_report_and_the_summary(window, tmp_path, monkeypatch):
    lost = settle(window)
    window.sims.platform.forget_settlement(lost["setl_id"])
    settings = window.settings
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_INSURANCE_BASE_URL", settings.insurance_base_url)
    result = CliRunner().invoke(
        sshub, ["reconcile", "--date", DAY.isoformat(), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1, result.output  # differences found
    assert "missing_on_platform count" in result.output
    with (tmp_path / "reconciliation-2026-11-29.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["field"], r["hub"], r["platform"], r["difference"]) for r in rows][
        -1
    ] == (
        "missing_on_platform",
        "count",
        "1",
        "0",
        "1",
    )
    assert (tmp_path / "reconciliation-2026-11-29.txt").read_text().startswith("reconciliation of")


def test_each_run_is_kept_and_the_latest_says_whether_it_balanced(window):
    settle(window)
    assert reconcile(window).balanced
    with window.db.session() as s:
        first = checkout.latest_reconciliation(s)
    assert (first.day, first.units, first.discrepancies) == (DAY, 1, 0)
    lost = settle(window, WANG_FANG)
    window.sims.platform.forget_settlement(lost["setl_id"])
    report = reconcile(window)
    with window.db.session() as s:
        latest = checkout.latest_reconciliation(s)
    assert latest.id > first.id
    assert (latest.differing_units, latest.unreachable_units) == (1, 0)
    assert latest.discrepancies == len(report.discrepancies) == 5
    assert latest.summary == report.summary()


def test_the_day_summary_counts_the_days_settlements_and_revokes(window):
    settle(window)
    revoked = settle(window, WANG_FANG)
    window.revoke(revoked["checkout_id"])
    with window.db.session() as s:
        today = checkout.day_summary(s, DAY, ZoneInfo("Asia/Shanghai"))
        tomorrow = checkout.day_summary(s, date(2026, 11, 30), ZoneInfo("Asia/Shanghai"))
    assert (today.opened_count, today.settled_count, today.revoked_count) == (2, 2, 1)
    assert (today.settled_medfee, today.settled_cash) == (2 * 10_160, 5_976 + 2_800)
    assert today.revoked_medfee == 10_160
    assert (tomorrow.opened_count, tomorrow.settled_count, tomorrow.settled_medfee) == (0, 0, 0)
