"""Ledger throughput on PostgreSQL: transfers/s and p50/p99 for 1, 8 and 32 concurrent clients,
single transfers and batches of 100, beside pgbench's TPC-B TPS on the same server.

Clients are separate processes calling the ledger service, each with its own connection, so
Python's GIL does not cap the figure. Run: .venv/bin/python bench/ledger.py [--seconds N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_database, percentile, pgbench_tps
from hub.db import Database
from hub.ledger import service
from hub.ledger.schemas import AccountIn, TransferIn

ACCOUNTS = 10_000


def setup(url: str) -> list[int]:
    db = Database(url)
    now = datetime.now(UTC)
    ids = db.transaction(
        lambda s: [
            service.create_account(
                s,
                AccountIn(kind="card", owner_ref=f"K{i}", debits_must_not_exceed_credits=True),
                now,
            ).id
            for i in range(ACCOUNTS)
        ]
    )
    bank = db.transaction(
        lambda s: service.create_account(s, AccountIn(kind="treasury", owner_ref="bank"), now).id
    )
    for start in range(0, ACCOUNTS, 1000):
        chunk = ids[start : start + 1000]
        opening = [
            TransferIn(
                id=f"open{a}",
                debit_account_id=bank,
                credit_account_id=a,
                amount=10_000_000,
                code="deposit",
            )
            for a in chunk
        ]
        db.transaction(lambda s, o=opening: service.create_transfers(s, o, now))
    db.dispose()
    return ids


def client(args: tuple[str, list[int], int, int, float, float, str]) -> tuple[int, list[float]]:
    url, ids, batch_size, worker, start_at, seconds, tag = args
    db = Database(url, pool_size=1)
    with db.session() as s:  # connect before the start
        s.connection()
    time.sleep(max(0.0, start_at - time.time()))
    rng = random.Random(worker)
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        batch = []
        for _ in range(batch_size):
            debit, credit = rng.sample(ids, 2)
            batch.append(
                TransferIn(
                    id=f"{tag}-{worker}-{n}",
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=1,
                    code="card_payment",
                )
            )
            n += 1
        started = time.perf_counter()
        results = db.transaction(
            lambda s, b=batch: service.create_transfers(s, b, datetime.now(UTC))
        )
        latencies.append((time.perf_counter() - started) * 1000)
        assert all(r.result == "ok" for r in results), {r.result for r in results}
        done += len(batch)
    db.dispose()
    return done, latencies


def run(
    url: str, ids: list[int], clients: int, batch_size: int, seconds: float
) -> tuple[float, float, float]:
    tag = f"c{clients}b{batch_size}"
    # Every client starts at the same wall-clock instant, after all have spawned and connected,
    # and stops `seconds` later: the rate is over a window in which all of them ran.
    start_at = time.time() + 3 + 0.15 * clients
    with mp.get_context("spawn").Pool(clients) as pool:
        results = pool.map(
            client, [(url, ids, batch_size, w, start_at, seconds, tag) for w in range(clients)]
        )
    total = sum(done for done, _ in results)
    latencies = [lat for _, lats in results for lat in lats]
    return total / seconds, percentile(latencies, 50), percentile(latencies, 99)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    url = fresh_database("sshub_bench_ledger")
    print(f"setting up {ACCOUNTS} funded card accounts ...", flush=True)
    ids = setup(url)
    header = f"{'clients':>7} {'batch':>5} {'transfers/s':>12} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"\n{header}  (latency per call)")
    best_batched = 0.0
    for batch_size in (1, 100):
        for clients in (1, 8, 32):
            tps, p50, p99 = run(url, ids, clients, batch_size, args.seconds)
            if batch_size == 100:
                best_batched = max(best_batched, tps)
            print(f"{clients:>7} {batch_size:>5} {tps:>12,.0f} {p50:>8.1f} {p99:>8.1f}", flush=True)
    tpcb = pgbench_tps()
    print(f"\npgbench TPC-B-like, 8 clients: {tpcb:,.0f} TPS")
    print(f"best batched ledger transfers/s / pgbench TPS = {best_batched / tpcb:.2f}")
    with Database(url).session() as s:
        problems = service.check_invariants(s)
    print("ledger invariants after the run:", "hold" if not problems else problems[:3])


if __name__ == "__main__":
    main()
