"""The transaction boundary: commit, rollback, and re-running work the database says to retry."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

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
