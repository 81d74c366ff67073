"""A process killed between any two statements of a transfer batch leaves no partial transfer.

The child opens a batch (a linked chain of a hold, a payment and a fee) and SIGKILLs itself just
before its k-th SQL statement; the parent then checks that nothing of that chain is stored and
that the books still balance. k walks every statement the batch makes, the COMMIT included; a
run that is not killed stores the whole chain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from sqlalchemy import text

from hub.ledger import service
from hub.ledger.schemas import AccountIn, TransferIn

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from sqlalchemy import event
    from hub.db import Database
    from hub.ledger import service
    from hub.ledger.schemas import TransferIn

    url, kill_at, card, unit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    round_ = sys.argv[5]
    db = Database(url)
    count = 0

    def before(conn, cursor, statement, *args):
        global count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(db.engine, "before_cursor_execute", before)
    # COMMIT is not a cursor statement; count it too, so a kill can land right before it.
    event.listen(db.engine, "commit", lambda conn: before(conn, None, "COMMIT"))
    now = datetime.now(UTC)
    chain = [
        TransferIn(id=f"{round_}:hold", debit_account_id=card, credit_account_id=unit, amount=300,
                   code="card_payment", pending=True, linked=True),
        TransferIn(id=f"{round_}:pay", debit_account_id=card, credit_account_id=unit, amount=200,
                   code="card_payment", linked=True),
        TransferIn(id=f"{round_}:fee", debit_account_id=unit, credit_account_id=card, amount=1,
                   code="fees"),
    ]
    print(db.transaction(lambda s: [r.result for r in service.create_transfers(s, chain, now)]))
    print("statements", count)
    """
)


def run_child(db, kill_at: int, card: int, unit: int) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": os.getcwd()}
    args = [sys.executable, "-c", CHILD, db.url, str(kill_at), str(card), str(unit), str(kill_at)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def test_kill_between_any_two_statements_leaves_all_or_nothing(db, clock):
    def open_books(s):
        card = service.create_account(
            s, AccountIn(kind="card", owner_ref="K1", debits_must_not_exceed_credits=True), clock()
        )
        unit = service.create_account(s, AccountIn(kind="unit_settlement", owner_ref="U1"), clock())
        bank = service.create_account(s, AccountIn(kind="treasury", owner_ref="bank"), clock())
        fund = TransferIn(
            id="open",
            debit_account_id=bank.id,
            credit_account_id=card.id,
            amount=1_000,
            code="deposit",
        )
        service.create_transfers(s, [fund], clock())
        return card.id, unit.id

    card, unit = db.transaction(open_books)
    clean = run_child(db, 0, card, unit)  # never killed: how many statements a batch takes
    assert "['ok', 'ok', 'ok']" in clean.stdout, clean.stderr
    with db.session() as s:
        assert service.check_invariants(s) == []
    statements = int(clean.stdout.split("statements")[1])
    assert statements >= 4  # lock, read, write (one statement on PostgreSQL), COMMIT

    killed = 0
    for kill_at in range(1, statements + 1):
        result = run_child(db, kill_at, card, unit)
        killed += result.returncode == -signal.SIGKILL
        with db.session() as s:
            legs = set(
                s.scalars(
                    text("SELECT id FROM ledger_transfers WHERE id LIKE :p"), {"p": f"{kill_at}:%"}
                )
            )
            assert legs == set(), (kill_at, legs)  # killed before COMMIT: nothing of it is there
            assert service.check_invariants(s) == [], kill_at
    assert killed == statements
