"""The audit chain is appended at COMMIT: the lock is not held while the transaction works, a
rollback leaves nothing, a retried transaction writes its entries once, the chain verifies."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hub.audit import service as audit
from hub.audit.models import AuditEntry
from hub.db import Database


def note(session, clock, subject: str) -> AuditEntry:
    return audit.record(session, actor="system", action="test", subject=subject, now=clock())


def subjects(db: Database) -> list[str]:
    with db.session() as s:
        return [e.subject for e in reversed(audit.recent(s, 100))]


def intact_entries(db: Database) -> int:
    with db.session() as s:
        report = audit.verify(s)
    assert report.intact, report
    return report.entries


@pytest.mark.postgres
def test_an_open_transaction_does_not_hold_the_chain_lock_until_it_commits(pg: Database, clock):
    first = pg.sessions()
    note(first, clock, "held:open")
    first.execute(text("SELECT 1"))  # the transaction has begun and stays open

    # Had the first entry taken the chain lock when recorded, this would wait: fail fast then.
    def second(s):
        s.execute(text("SET LOCAL lock_timeout = '3s'"))
        note(s, clock, "committed:meanwhile")

    try:
        pg.transaction(second)
        first.commit()
    finally:
        first.close()
    assert subjects(pg) == ["committed:meanwhile", "held:open"]
    assert intact_entries(pg) == 2


@pytest.mark.postgres
def test_the_chain_lock_is_held_from_the_append_to_the_commit(pg: Database, clock):
    """Once a COMMIT has appended, another append waits for that COMMIT (no fork)."""
    first = pg.sessions()
    note(first, clock, "first")
    audit.recent(first, 1)  # appends now, under the lock, as reading the trail does
    try:
        with pytest.raises(OperationalError, match="lock timeout"), pg.session() as s:
            s.execute(text("SET LOCAL lock_timeout = '200ms'"))
            note(s, clock, "second")
            s.commit()
    finally:
        first.commit()
        first.close()
    assert subjects(pg) == ["first"]
    assert intact_entries(pg) == 1


def test_a_rolled_back_transaction_leaves_no_entry(db: Database, clock):
    def fails(s):
        note(s, clock, "lost")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.transaction(fails)
    with db.session() as s:  # the same session again after a rollback: only its new entry
        note(s, clock, "dropped")
        s.rollback()
        note(s, clock, "kept")
        s.commit()
    assert subjects(db) == ["kept"]
    assert intact_entries(db) == 1


def test_a_closed_uncommitted_session_leaves_nothing_behind(db: Database, clock):
    with db.session() as s:
        note(s, clock, "abandoned")
        s.close()
        note(s, clock, "kept")
        s.commit()
    assert subjects(db) == ["kept"]


def test_a_retried_transaction_appends_its_entries_once(db: Database, clock):
    db.transaction(lambda s: note(s, clock, "earlier"))
    with db.session() as s:
        taken = audit.recent(s, 1)[0].hash
    attempts = []

    def work(s):
        attempts.append(1)
        note(s, clock, "once")
        if len(attempts) == 1:  # a unique-key race: the boundary runs the work again
            s.add(
                AuditEntry(
                    at=clock(),
                    actor="x",
                    action="x",
                    subject="x",
                    details={},
                    prev_hash="x",
                    hash=taken,
                )
            )
            s.flush()

    db.transaction(work)
    assert len(attempts) == 2
    assert subjects(db) == ["earlier", "once"]
    assert intact_entries(db) == 2


def test_entries_of_one_transaction_are_chained_in_the_order_recorded(db: Database, clock):
    db.transaction(lambda s: [note(s, clock, f"n{i}") for i in range(4)])
    db.transaction(lambda s: note(s, clock, "next"))
    assert subjects(db) == ["n0", "n1", "n2", "n3", "next"]
    assert intact_entries(db) == 5


def test_reading_the_trail_in_the_same_transaction_sees_what_it_recorded(db: Database, clock):
    def work(s):
        note(s, clock, "mine")
        seen = [e.subject for e in audit.recent(s, 5)]
        note(s, clock, "after")
        return seen

    assert db.transaction(work) == ["mine"]
    assert subjects(db) == ["mine", "after"]
    assert intact_entries(db) == 2


def test_a_rolled_back_savepoint_drops_only_its_own_entries(db: Database, clock):
    def work(s):
        note(s, clock, "before")
        savepoint = s.begin_nested()
        note(s, clock, "inside")
        savepoint.rollback()
        with s.begin_nested():
            note(s, clock, "released")
        note(s, clock, "after")

    db.transaction(work)
    assert subjects(db) == ["before", "released", "after"]
    assert intact_entries(db) == 3


@pytest.mark.postgres
def test_concurrent_appends_make_one_unbroken_chain(pg: Database, clock):
    def writer(n: int) -> None:
        for i in range(10):
            pg.transaction(lambda s, i=i: [note(s, clock, f"w{n}:{i}:{k}") for k in range(2)])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert intact_entries(pg) == 80
