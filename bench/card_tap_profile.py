"""Where a card payment's time goes: SQL statements per authorise and capture, and (under
concurrency) how long each kind of statement takes, lock waits included.

(a) One terminal, the whole signed API in this process (TestClient): the statements of one
authorise and one capture, in order, and each request's wall time split into SQL round trips,
COMMIT, the pool's pre-ping and the rest (Python). `--profile` adds cProfile's top functions.
(b) Client processes call the payments service directly (no HTTP), each its own transaction
per step, and sum the time of each kind of statement: a kind that waits on a lock shared by
every payment (the audit chain, a unit's settlement account) grows with the clients.

Run: .venv/bin/python bench/card_tap_profile.py [--payments 200] [--clients 8] [--units 2]
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import pstats
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi.testclient import TestClient
from sqlalchemy import event

from bench.card_taps import CARDS_PER_CLIENT, IMK, BenchTerminal, CardChip, _cards, _enrol
from bench.common import fresh_database, percentile
from devices.agent.hub_client import HubClient
from devices.protocol.card_payments import CARD_PAYMENTS_PATH, capture_path
from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.gateway import service as gateway
from hub.gateway.schemas import UnitIn
from hub.issuer import service as issuer
from hub.issuer.keys import IssuerSecrets
from hub.ledger import service as ledger
from hub.payments import service as payments
from hub.payments.schemas import CardTapIn


class Meter:
    """Counts and times every statement, COMMIT and pre-ping of one engine."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, float]] = []
        self.commits: list[float] = []
        self.pings: list[float] = []
        self._started: list[float] = []
        engine = db.engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        dialect = engine.dialect
        ping = dialect.do_ping

        def timed_ping(conn: Any) -> bool:
            started = time.perf_counter()
            try:
                return ping(conn)
            finally:
                self.pings.append(time.perf_counter() - started)

        dialect.do_ping = timed_ping  # type: ignore[method-assign]
        commit = dialect.do_commit

        def timed_commit(conn: Any) -> None:
            started = time.perf_counter()
            try:
                commit(conn)
            finally:
                self.commits.append(time.perf_counter() - started)

        dialect.do_commit = timed_commit  # type: ignore[method-assign]

    def _before(self, *_: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append((statement, time.perf_counter() - self._started.pop()))

    def reset(self) -> None:
        self.statements.clear()
        self.commits.clear()
        self.pings.clear()

    def sql_seconds(self) -> float:
        return sum(s for _, s in self.statements) + sum(self.commits) + sum(self.pings)


def kind(statement: str) -> str:
    """A short name for a statement: its verb and table, the lock it takes."""
    text = " ".join(statement.split())
    if "pg_advisory_xact_lock" in text:
        return "audit: chain lock"
    if text.startswith("SELECT audit_entries.hash"):
        return "audit: last hash"
    verb = text.split(" ", 1)[0]
    table = re.search(r"(?:FROM|INTO|UPDATE)\s+(\w+)", text)
    name = f"{verb} {table.group(1) if table else '?'}"
    if "FOR UPDATE" in text or "FOR NO KEY UPDATE" in text:
        name += " (lock)"
    return name


# --- setup -------------------------------------------------------------------------------------


def setup(url: str, clients: int, units: int) -> list[tuple[BenchTerminal, int, str]]:
    """An issuer key, `units` units, one terminal per client (+1), 25 funded cards per client."""
    db = Database(url)
    now = datetime.now(UTC)
    secrets = IssuerSecrets.from_settings(Settings(database_url=url))
    db.transaction(lambda s: issuer.create_issuer_key(s, secrets, now, key=IMK))
    codes = [f"H330102{u:05d}" for u in range(units)]
    unit_ids = [
        db.transaction(
            lambda s, c=c: (
                gateway.create_unit(
                    s, UnitIn(institution_code=c, name=c, region_code="330102"), actor="b", now=now
                ).id
            )
        )
        for c in codes
    ]
    terminals = []
    for i in range(clients + 1):
        u = i % units
        terminals.append((_enrol(db, unit_ids[u], f"BP{i:08d}", now), unit_ids[u], codes[u]))
    cards = (clients + 1) * CARDS_PER_CLIENT + 1
    for start in range(0, cards, 200):
        db.transaction(lambda s, a=start: _cards(s, secrets, a, min(cards, a + 200), now))
    db.dispose()
    return terminals


# --- (a) one terminal through the signed API ---------------------------------------------------


@dataclass
class Step:
    """Per request of one kind (authorise or capture): wall time and what SQL took of it."""

    wall: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    commit: list[float] = field(default_factory=list)
    ping: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    listing: list[str] = field(default_factory=list)

    def add(self, wall: float, meter: Meter) -> None:
        self.wall.append(wall)
        self.sql.append(sum(s for _, s in meter.statements) * 1000)
        self.commit.append(sum(meter.commits) * 1000)
        self.ping.append(sum(meter.pings) * 1000)
        self.statements.append(len(meter.statements))
        if not self.listing:
            self.listing = [kind(s) for s, _ in meter.statements] + ["COMMIT"] * len(meter.commits)

    def report(self, name: str) -> None:
        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        wall, sql, commit, ping = (mean(v) for v in (self.wall, self.sql, self.commit, self.ping))
        print(f"\n  {name}: {mean(self.statements):.1f} statements + COMMIT + pre-ping")
        print(f"    wall p50 {percentile(self.wall, 50):.2f} ms, mean {wall:.2f} ms, of which")
        print(f"      SQL statements {sql:.2f} ms, COMMIT {commit:.2f} ms, pre-ping {ping:.2f} ms")
        print(f"      the rest (HTTP, signing, ORM, crypto) {wall - sql - commit - ping:.2f} ms")
        print("    statements of one request, in order:")
        for line in self.listing:
            print(f"      {line}")


def single(url: str, terminal: BenchTerminal, count: int) -> None:
    db = Database(url)
    meter = Meter(db)
    app = create_app(
        Settings(database_url=url, log_level="WARNING"), database=db, run_workers=False
    )
    key = load_pem_private_key(terminal.key_pem, None)
    chips = [CardChip(n) for n in range(1, 1 + CARDS_PER_CLIENT)]
    steps = {"authorise": Step(), "capture": Step()}
    warm_up = 5
    with TestClient(app) as http:
        hub = HubClient("http://testserver", terminal.terminal_id, key, http=http)  # type: ignore[arg-type]

        def timed(name: str, path: str, body: dict[str, Any], measured: bool) -> dict[str, Any]:
            meter.reset()
            started = time.perf_counter()
            answer = hub.post(path, body)
            if measured:
                steps[name].add((time.perf_counter() - started) * 1000, meter)
            return answer

        for i in range(count + warm_up):
            body = chips[i % len(chips)].tap_body(1 + i // len(chips), f"p-{i}")
            answer = timed("authorise", CARD_PAYMENTS_PATH, body, i >= warm_up)
            assert answer["approved"], answer
            timed("capture", capture_path(answer["payment_id"]), {}, i >= warm_up)
    db.dispose()
    print(f"(a) one terminal, signed API in process, {count} payments (after {warm_up} warm-up)")
    print("    (psycopg also sends BEGIN before a transaction's first statement)")
    for name, step in steps.items():
        step.report(name)


def profile(url: str, terminal: BenchTerminal, unit_id: int, code: str, count: int) -> None:
    """cProfile of service-level payments in this thread (the API runs them in a thread pool)."""
    db = Database(url)
    settings = Settings(database_url=url)
    secrets = IssuerSecrets.from_settings(settings)
    rules = payments.CardRules.from_settings(settings)
    caller = payments.Caller.terminal(terminal.terminal_id, unit_id, code)
    chips = [CardChip(n) for n in range(1, 1 + CARDS_PER_CLIENT)]
    taps = [
        CardTapIn.model_validate(chips[i % len(chips)].tap_body(500 + i // len(chips), f"c-{i}"))
        for i in range(count)
    ]
    profiler = cProfile.Profile()
    profiler.enable()
    for tap in taps:
        pay(db, tap, caller, secrets, rules, datetime.now(UTC))
    profiler.disable()
    db.dispose()
    print(f"\n(c) cProfile of {count} payments through the service (cumulative, top 25)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


# --- (b) concurrent payments, statement time by kind -------------------------------------------


def worker(args: tuple[str, BenchTerminal, int, str, int, int, float, float]) -> dict[str, Any]:
    url, terminal, unit_id, code, index, count, start_at, seconds = args
    db = Database(url, pool_size=1)
    meter = Meter(db)
    secrets = IssuerSecrets.from_settings(Settings(database_url=url))
    rules = payments.CardRules.from_settings(Settings(database_url=url))
    caller = payments.Caller.terminal(terminal.terminal_id, unit_id, code)
    first = 1 + (index + 1) * CARDS_PER_CLIENT
    chips = [CardChip(n) for n in range(first, first + CARDS_PER_CLIENT)]
    taps = [
        CardTapIn.model_validate(
            chips[i % len(chips)].tap_body(1 + i // len(chips), f"w{index}-{i}")
        )
        for i in range(count)
    ]
    with db.session() as s:
        s.connection()
    time.sleep(max(0.0, start_at - time.time()))
    meter.reset()
    by_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    done, latencies = 0, []
    deadline = time.perf_counter() + seconds
    for tap in taps:
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        now = datetime.now(UTC)
        pay(db, tap, caller, secrets, rules, now)
        latencies.append((time.perf_counter() - started) * 1000)
        done += 1
    for statement, spent in meter.statements:
        entry = by_kind[kind(statement)]
        entry[0] += 1
        entry[1] += spent
    by_kind["COMMIT"] = [len(meter.commits), sum(meter.commits)]
    by_kind["pre-ping"] = [len(meter.pings), sum(meter.pings)]
    db.dispose()
    return {"done": done, "latencies": latencies, "kinds": dict(by_kind)}


def pay(
    db: Database,
    tap: CardTapIn,
    caller: payments.Caller,
    secrets: IssuerSecrets,
    rules: payments.CardRules,
    now: datetime,
) -> None:
    """Authorise, then capture: two transactions, as the terminal's two requests are."""
    payment = db.transaction(
        lambda s: payments.authorize_card_tap(s, tap, caller, secrets, rules, now)
    )
    assert payment.status == "authorized", payment.decline_code
    db.transaction(lambda s: payments.capture(s, payment.id, None, caller, now))


def concurrent(
    url: str, terminals: list[tuple[BenchTerminal, int, str]], clients: int, seconds: float
) -> None:
    start_at = time.time() + 5
    jobs = [
        (url, t, unit_id, code, i, 5000, start_at, seconds)
        for i, (t, unit_id, code) in enumerate(terminals[1 : clients + 1])
    ]
    with mp.get_context("spawn").Pool(clients) as pool:
        results = pool.map(worker, jobs)
    done = sum(r["done"] for r in results)
    latencies = [lat for r in results for lat in r["latencies"]]
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in results:
        for name, (count, spent) in r["kinds"].items():
            totals[name][0] += count
            totals[name][1] += spent
    units = len({t[1] for t in terminals[1 : clients + 1]})
    print(f"\n(b) {clients} processes at {units} unit(s), service calls, no HTTP, {seconds:.0f} s")
    print(
        f"    payments/s {done / seconds:,.0f}, p50 {percentile(latencies, 50):.1f} ms, "
        f"p99 {percentile(latencies, 99):.1f} ms"
    )
    print(f"    {'statement kind':<44}{'per payment':>12}{'ms each':>9}{'ms/payment':>12}")
    for name, (count, spent) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(
            f"    {name:<44}{count / done:>12.2f}{spent / count * 1000:>9.2f}"
            f"{spent / done * 1000:>12.2f}"
        )
    sql = sum(spent for _, spent in totals.values())
    mean = sum(latencies) / len(latencies)
    print(
        f"    mean payment {mean:.1f} ms: SQL incl. waits {sql / done * 1000:.1f} ms, "
        f"Python {mean - sql / done * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--units", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    url = fresh_database("sshub_bench_card_tap_profile")
    terminals = setup(url, args.clients, args.units)
    single(url, terminals[0][0], args.payments)
    if args.profile:
        profile(url, *terminals[0], args.payments)
    if args.clients:
        concurrent(url, terminals, args.clients, args.seconds)
    with Database(url).session() as s:
        problems = ledger.check_invariants(s)
    print("\nledger invariants after the run:", "hold" if not problems else problems[:3])


if __name__ == "__main__":
    main()
