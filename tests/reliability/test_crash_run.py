"""The crash run, short form (the long one is bench/crash.py): card taps, captures, refunds and
loan orders with client retries against a real hub process on PostgreSQL that is killed with
SIGKILL three times at seeded random moments and started again. Afterwards every success a
client saw is in the ledger exactly once, nothing is applied twice or without a client being
told, uncaptured holds expire, every callback reached the loan system and the books balance."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.crash import Options, run
from hub.db import Database

pytestmark = pytest.mark.postgres

SHORT = Options(kills=3, seconds=15, clients=3, seed=20261129, hold_seconds=6)
CHECKS = {
    "card taps answered",
    "card payments seen captured",
    "refunds seen",
    "holds never captured",
    "loans seen credited",
    "loans seen rejected",
    "callbacks owed for answered orders",
    "callbacks the loan system refused",
    "day's export reconciles with the loan book",
    "outbox",
    "business ids with two money movements of a kind",
    "payments in the hub no client saw answered",
    "money movements in the ledger no client saw succeed",
    "card accounts",
    "fen still held on card accounts (no live holds left)",
    "ledger invariants broken",
    "clients that gave up",
    "5xx answers seen by clients",
    "refusals nobody planted",
    "unhandled errors in the hub's logs",
    "failed background jobs in the hub's logs",
}


def test_every_success_is_booked_once_through_sigkills_of_the_hub(pg: Database):
    report = run(replace(SHORT, database_url=pg.url))

    figures = report.figures
    assert figures["hub kills (SIGKILL at random moments)"] == 3
    assert figures["  that needed retries"] > 0  # the kills met traffic in flight
    # Every kind of operation happened, so every check below had something to check.
    assert figures["  captured"] > 0
    assert figures["  refunded in part"] > 0
    assert figures["  left uncaptured on purpose"] > 0
    assert figures["  credited"] > 0
    assert {c.name for c in report.checks} == CHECKS
    assert [c.figure for c in report.checks if not c.ok] == []
