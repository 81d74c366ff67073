"""On PostgreSQL, racing requests leave exactly one hold, one capture, and balanced books."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from devices.agent.hub_client import HubRefused
from devices.protocol.card_payments import capture_path, refunds_path
from hub.ledger import service as ledger

postgres_only = pytest.mark.parametrize("db", ["postgres"], indirect=True)


def race(calls):
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except HubRefused as refusal:
            outcomes.append(refusal.code)
    return outcomes


@postgres_only
def test_the_same_tap_sent_eight_times_at_once_holds_once(world, terminal):
    holder = world.cardholder(50_000)
    tap = holder.tap(10_000, "T-1", world.now())
    answers = race([lambda: world.authorize(terminal, tap)] * 8)
    assert len({a["payment_id"] for a in answers}) == 1 and answers[0]["approved"]
    assert world.balance(holder.account_id) == (50_000, 40_000)


@postgres_only
def test_racing_captures_and_refunds_move_the_money_once(world, terminal):
    holder = world.cardholder(50_000)
    payment_id = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))["payment_id"]
    captures = race([lambda: terminal.hub.post(capture_path(payment_id), {})] * 6)
    assert all(c["status"] == "captured" for c in captures)
    path = refunds_path(payment_id)
    refunds = race(
        [
            lambda n=n: terminal.hub.post(path, {"refund_id": f"R-{n}", "amount": 3_000})
            for n in range(6)
        ]
    )
    assert sum(isinstance(r, dict) for r in refunds) == 3
    assert refunds.count("refund_exceeds_captured") == 3
    assert world.balance(holder.account_id) == (50_000 - 1_000, 50_000 - 1_000)
    with world.db.session() as s:
        assert ledger.check_invariants(s) == []


@postgres_only
def test_taps_of_one_card_at_two_terminals_keep_its_counter_and_balance(world, terminal):
    other = world.terminal((terminal.unit_id, terminal.institution_code))
    holder = world.cardholder(30_000)
    taps = [holder.tap(10_000, f"T-{n}", world.now()) for n in range(4)]
    answers = race(
        [lambda t=t, n=n: world.authorize((terminal, other)[n % 2], t) for n, t in enumerate(taps)]
    )
    approved = [a for a in answers if a["approved"]]
    declines = sorted(a["decline_code"] for a in answers if not a["approved"])
    # counters 1..4 race: a late lower one is a replay; funds allow three
    assert len(approved) <= 3 and set(declines) <= {"atc_replayed", "insufficient_funds"}
    assert world.balance(holder.account_id) == (30_000, 30_000 - 10_000 * len(approved))
