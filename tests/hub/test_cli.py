"""`sshub` commands against a real database."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from hub.audit import service as audit
from hub.cli import app


def run(db, monkeypatch, *args):
    monkeypatch.setenv("HUB_DATABASE_URL", db.url)
    return CliRunner().invoke(app, list(args))


def test_demo_seed_twice_then_ledger_check_passes(db, monkeypatch):
    assert run(db, monkeypatch, "demo", "seed").exit_code == 0
    again = run(db, monkeypatch, "demo", "seed")
    assert again.exit_code == 0 and "card K10000001" in again.output
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM ledger_transfers")).scalar_one() == 4
    result = run(db, monkeypatch, "ledger", "check")
    assert result.exit_code == 0 and "ledger ok" in result.output


def test_ledger_check_names_a_broken_account_and_exits_1(db, monkeypatch):
    run(db, monkeypatch, "demo", "seed")
    with db.session() as s:
        s.execute(
            text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = 3")
        )
        s.commit()
    result = run(db, monkeypatch, "ledger", "check")
    assert result.exit_code == 1
    assert "account 3 credits_posted" in result.output
    assert "sum of debits_posted" in result.output


def test_audit_verify_counts_an_intact_chain_then_names_the_tampered_entry(db, monkeypatch, clock):
    for n in range(3):
        db.transaction(
            lambda s, n=n: audit.record(
                s, actor="system", action="test", subject=f"thing:{n}", now=clock.advance(1)
            )
        )
    result = run(db, monkeypatch, "audit", "verify")
    assert result.exit_code == 0 and "intact: 3 entries" in result.output
    with db.session() as s:
        second = s.execute(text("SELECT min(seq) + 1 FROM audit_entries")).scalar_one()
        s.execute(
            text("UPDATE audit_entries SET subject = 'thing:X' WHERE seq = :seq"), {"seq": second}
        )
        s.commit()
    result = run(db, monkeypatch, "audit", "verify")
    assert result.exit_code == 1
    assert f"AUDIT CHAIN BROKEN at entry {second}" in result.output
