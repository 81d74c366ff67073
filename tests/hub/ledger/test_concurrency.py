"""PostgreSQL under contention: 32 threads, 10 accounts, repeated ids, holds, posts and voids."""

from __future__ import annotations

import random
import threading

import pytest
from sqlalchemy import text

from hub.ledger import service
from hub.ledger.errors import OK, STATE_DEPENDENT
from hub.ledger.schemas import AccountIn, TransferIn

THREADS = 32
OPS_PER_THREAD = 40
EXPECTED_CODES = (
    OK | STATE_DEPENDENT | {"exists_with_different_fields", "accounts_must_be_different"}
)


@pytest.mark.postgres
def test_32_threads_keep_the_books_balanced(pg, clock):
    specs = [AccountIn(kind="treasury", owner_ref=f"bank{i}") for i in range(2)] + [
        AccountIn(kind="card", owner_ref=f"K{i}", debits_must_not_exceed_credits=True)
        for i in range(8)
    ]
    ids = pg.transaction(lambda s: [service.create_account(s, a, clock()).id for a in specs])
    banks, cards = ids[:2], ids[2:]
    opening = [
        TransferIn(
            id=f"open{c}",
            debit_account_id=banks[0],
            credit_account_id=c,
            amount=5_000,
            code="deposit",
        )
        for c in cards
    ]
    pg.transaction(lambda s: service.create_transfers(s, opening, clock()))

    holds: list[str] = []
    seen: dict[str, set[str]] = {}
    failures: list[BaseException] = []
    lock = threading.Lock()

    def one_op(rng: random.Random, worker: int, n: int) -> TransferIn:
        # A small shared id space, so threads collide on ids on purpose.
        tid = f"x{rng.randrange(300)}" if rng.random() < 0.3 else f"w{worker}-{n}"
        roll = rng.random()
        with lock:
            hold = rng.choice(holds) if holds and roll < 0.35 else None
        if hold:
            post = rng.random() < 0.6
            return TransferIn(
                id=tid,
                pending_id=hold,
                code="card_payment",
                post_pending=post,
                void_pending=not post,
                amount=rng.choice([None, 10]) if post else None,
            )
        debit, credit = rng.sample(ids, 2)
        pending = roll > 0.7
        return TransferIn(
            id=tid,
            debit_account_id=debit,
            credit_account_id=credit,
            code="card_payment",
            amount=rng.choice([1, 25, 400, 2_000]),
            pending=pending,
            timeout=60 if pending else 0,
        )

    def worker(index: int) -> None:
        rng = random.Random(index)
        try:
            for n in range(OPS_PER_THREAD):
                batch = [one_op(rng, index, n * 3 + k) for k in range(rng.choice([1, 1, 3]))]
                results = pg.transaction(lambda s, b=batch: service.create_transfers(s, b, clock()))
                with lock:
                    for t, r in zip(batch, results, strict=True):
                        seen.setdefault(t.id, set()).add(r.result)
                        if r.result == "ok" and t.pending:
                            holds.append(t.id)
        except BaseException as exc:  # the test reports whatever reached a caller
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == [], failures[:3]  # no deadlock or serialization error reached a caller
    unexpected = {c for codes in seen.values() for c in codes} - EXPECTED_CODES
    assert unexpected <= {"linked_event_failed"}, unexpected
    with pg.session() as s:
        assert service.check_invariants(s) == []
        stored = set(s.scalars(text("SELECT id FROM ledger_transfers")))
        negative = s.execute(
            text(
                "SELECT count(*) FROM ledger_accounts WHERE debits_must_not_exceed_credits"
                " AND debits_posted + debits_pending > credits_posted"
            )
        ).scalar_one()
    assert negative == 0
    # Every id some caller saw succeed is stored; nothing is stored that nobody saw succeed.
    succeeded = {tid for tid, codes in seen.items() if "ok" in codes}
    assert succeeded <= stored
    assert stored - {t.id for t in opening} <= succeeded
    # An id that succeeded once never also "succeeded" a second time: the rest saw exists/refusal.
    assert all(len(codes & {"ok"}) <= 1 for codes in seen.values())


def _race_first_uses(pg, clock, spec: AccountIn, threads: int = 8) -> list[object]:
    start = threading.Barrier(threads)
    got: list[object] = []

    def first_use() -> None:
        start.wait()
        try:
            got.append(pg.transaction(lambda s: service.ensure_account(s, spec, clock()).id))
        except Exception as exc:
            got.append(exc)

    racers = [threading.Thread(target=first_use) for _ in range(threads)]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    return got


@pytest.mark.postgres
def test_first_uses_of_an_account_racing_all_get_the_one_account(pg, clock):
    """A unit's first payments arrive together: each opens its settlement account on first use."""
    for unit in range(20):
        spec = AccountIn(kind="unit_settlement", owner_ref=f"H{unit:011d}")
        got = _race_first_uses(pg, clock, spec)
        assert len(set(got)) == 1 and isinstance(got[0], int), got
