"""The transaction boundary: commit, rollback, and re-running work the database says to retry."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hub.db import Database
from hub.ledger import service
from hub.ledger.schemas import AccountIn


def test_error_rolls_back_everything(db, clock):
    def work(s):
        service.create_account(s, AccountIn(kind="treasury", owner_ref="bank"), clock())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.transaction(work)
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM ledger_accounts")).scalar_one() == 0


@pytest.mark.postgres
def test_serialization_failures_are_retried_until_both_commit(pg: Database, clock):
    account = pg.transaction(
        lambda s: service.create_account(s, AccountIn(kind="fees", owner_ref="x"), clock())
    )
    barrier = threading.Barrier(2)
    attempts = []

    def bump(s):
        # Both read, then both write the same row under SERIALIZABLE: one must fail with 40001.
        s.connection(execution_options={"isolation_level": "SERIALIZABLE"})
        attempts.append(1)
        value = s.execute(
            text("SELECT debits_posted FROM ledger_accounts WHERE id = :i"), {"i": account.id}
        ).scalar_one()
        if len(attempts) <= 2:  # the first two attempts meet; a retry runs alone
            barrier.wait(timeout=5)
        s.execute(
            text("UPDATE ledger_accounts SET debits_posted = :v WHERE id = :i"),
            {"v": value + 1, "i": account.id},
        )

    threads = [threading.Thread(target=pg.transaction, args=(bump,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg.session() as s:
        final = s.execute(
            text("SELECT debits_posted FROM ledger_accounts WHERE id = :i"), {"i": account.id}
        ).scalar_one()
    assert final == 2  # no lost update: the loser ran again on fresh data
    assert len(attempts) >= 3  # and it did run again


# A pooled PostgreSQL connection whose server session died: pinged when it sat idle, and a
# transaction that meets it at its first statement runs again; later in a transaction, never.


def _backend(s) -> int:
    return s.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _kill(pg: Database, pid: int) -> None:
    """Terminate a server session and wait until it is gone (terminating only signals it)."""
    with pg.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})


@pytest.fixture
def one_connection(pg: Database):
    db = Database(pg.url, pool_size=1)
    with db.session() as s:
        pid = _backend(s)  # the pool's one connection, idle in the pool from here
    yield db, pid
    db.dispose()


@pytest.mark.postgres
def test_an_idle_pooled_connection_that_died_is_replaced_before_use(
    pg: Database, one_connection, monkeypatch
):
    db, pid = one_connection
    _kill(pg, pid)
    monkeypatch.setattr("hub.db.IDLE_PING_SECONDS", 0.0)  # it has been idle long enough
    with db.session() as s:  # a read outside any retry still works
        assert _backend(s) != pid


@pytest.mark.postgres
def test_a_transaction_meeting_a_dead_connection_at_its_first_statement_runs_again(
    pg: Database, one_connection, monkeypatch, clock
):
    db, pid = one_connection
    _kill(pg, pid)
    monkeypatch.setattr("hub.db.IDLE_PING_SECONDS", 3600.0)  # not pinged: used just now
    attempts = []

    def work(s):
        attempts.append(_backend(s))
        return service.create_account(s, AccountIn(kind="fees", owner_ref="x"), clock()).id

    db.transaction(work)
    assert len(attempts) == 1 and attempts[0] != pid  # the failed first statement returned nothing
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM ledger_accounts")).scalar_one() == 1


@pytest.mark.postgres
def test_a_connection_lost_after_the_first_statement_is_not_retried(
    pg: Database, one_connection, clock
):
    db, _ = one_connection
    attempts = []

    def work(s):
        attempts.append(1)
        service.create_account(s, AccountIn(kind="fees", owner_ref="x"), clock())
        _kill(pg, _backend(s))
        s.execute(text("SELECT 1"))

    with pytest.raises(OperationalError):
        db.transaction(work)
    assert attempts == [1]
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM ledger_accounts")).scalar_one() == 0
