"""Loan disbursements on PostgreSQL: order-to-credited latency p50/p99 and sustained orders/s.

The hub runs in its own uvicorn process(es) on loopback, with its outbox worker on. This
process plays the loan system with the simulator: it sends signed orders at a fixed rate for a
bounded time (latency counts from each order's scheduled send time, so queueing is not hidden),
receives the signed callbacks, and reconciles the day's export at the end.
Goal (issue 7): p99 under 200 ms at 200 orders/s on a 2-core machine.

Run: .venv/bin/python bench/disbursements.py [--rate 200] [--seconds 30] [--hub-workers 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_seconds, free_port, fresh_database, start_hub
from hub.config import Settings
from hub.db import Database
from hub.disbursements import clients, export, service
from hub.disbursements.schemas import IssuedKey
from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys, with_check_digit
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from integrations.loans.client import ClientKey, DisbursementApi
from integrations.loans.simulator import (
    Answer,
    Borrower,
    CallbackInbox,
    CallbackServer,
    LoanBook,
    latency_summary,
    make_orders,
    reconcile,
    send_orders,
)

CARDS = 300
HUB_ENV = {
    "HUB_LOG_LEVEL": "WARNING",
    "HUB_DISBURSEMENT_DAILY_COUNT": str(10**9),
    "HUB_DISBURSEMENT_DAILY_AMOUNT_FEN": str(10**15),
}


def open_programme(s: Session, callback_url: str, settings: Settings, now: datetime) -> IssuedKey:
    """The funded loan funding account and one loan client (also used by bench/crash.py)."""
    service.fund_programme(s, "fund", 10**14, now)
    rules = service.Rules.from_settings(settings)
    return clients.create_client(s, "bench", callback_url, rules, now, actor="bench")


def setup(url: str, callback_url: str) -> tuple[IssuedKey, list[Borrower]]:
    """A funded programme, CARDS registered cards and one loan client."""
    settings = Settings(database_url=url)
    keys = CardDataKeys.from_settings(settings)
    db, now = Database(url), datetime.now(UTC)
    borrowers = [Borrower(f"B{n:08d}", f"3301021990{n:08d}") for n in range(CARDS)]

    def programme(s: Session) -> IssuedKey:
        for n, b in enumerate(borrowers):
            spec = CardIn(
                card_number=b.card_number,
                card_id_code=f"BENCH{n:08d}",
                holder_name=f"Borrower {n}",
                id_number=SecretStr(b.id_number),
                pan=SecretStr(with_check_digit(f"623170{n:09d}")),
                expiry=date(2035, 12, 31),
            )
            issuer.register_card(s, spec, keys, now)
        return open_programme(s, callback_url, settings, now)

    issued = db.transaction(programme)
    db.dispose()
    return issued, borrowers


def run(rate: float, seconds: float, workers: int) -> None:
    url = fresh_database("sshub_bench_disbursements")
    hub_port, callback_port = free_port(), free_port()
    issued, borrowers = setup(url, f"http://127.0.0.1:{callback_port}/callbacks")
    key = ClientKey(issued.key_id, issued.secret)
    inbox = CallbackInbox({key.key_id: key.secret})
    hub = start_hub(url, hub_port, workers=workers, env=HUB_ENV)
    today = datetime.now(ZoneInfo(Settings().business_timezone)).date()
    id_key = Settings().id_hash_key.get_secret_value().encode()
    rng = random.Random(7)
    book = LoanBook()
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        with (
            CallbackServer(inbox, port=callback_port),
            httpx.Client(base_url=f"http://127.0.0.1:{hub_port}", limits=limits) as http,
        ):
            api = DisbursementApi(http, key)

            def orders(count: int, prefix: str) -> list[dict[str, object]]:
                return make_orders(
                    borrowers, count, id_hash_key=id_key, value_date=today, prefix=prefix, rng=rng
                )

            send_orders(api, orders(int(rate * 2), "WARM"), book, rate=rate, workers=64)
            cpu_before, started = cpu_seconds(hub.pid), time.perf_counter()
            own_before = time.process_time()
            answers = send_orders(
                api, orders(int(rate * seconds), "RUN"), book, rate=rate, workers=64
            )
            finished = max(a.sent_at + a.latency for a in answers)
            hub_cpu = cpu_seconds(hub.pid) - cpu_before
            loan_system_cpu = time.process_time() - own_before
            inbox.wait_for(len(book.orders), timeout=60)
        report(answers, inbox, started, finished, (hub_cpu, loan_system_cpu), rate)
        book.events = dict(inbox.events)
        check(url, book, today)
    finally:
        hub.terminate()
        hub.wait(timeout=10)


def report(
    answers: list[Answer],
    inbox: CallbackInbox,
    started: float,
    finished: float,
    cpu: tuple[float, float],
    rate: float,
) -> None:
    elapsed = finished - started
    credited = [a for a in answers if a.outcome == "credited"]
    to_callback = [
        inbox.arrived[f"disb.credited.{a.external_id}"] - a.sent_at
        for a in credited
        if f"disb.credited.{a.external_id}" in inbox.arrived
    ]
    print(f"machine            {os.cpu_count()} cores; PostgreSQL on loopback")
    print(f"offered rate       {rate:.0f} orders/s for {len(answers) / rate:.0f} s")
    sustained = len(answers) / elapsed
    print(f"sustained          {sustained:.1f} orders/s ({len(answers)} in {elapsed:.1f} s)")
    print(f"outcomes           {dict(Counter(a.outcome for a in answers))}")
    print(f"order-to-credited  {latency_summary([a.latency for a in credited])}")
    print(f"order-to-callback  {latency_summary(to_callback)}  ({len(to_callback)} callbacks)")
    print(f"callbacks          {inbox.duplicates} duplicates, {inbox.refused} refused")
    print(
        f"CPU                hub {cpu[0] / elapsed * 100:.0f}%, loan system simulator"
        f" {cpu[1] / elapsed * 100:.0f}% of one core; load average {os.getloadavg()[0]:.1f}"
    )


def check(url: str, book: LoanBook, today: date) -> None:
    db = Database(url)
    with db.session() as s:
        problems = ledger.check_invariants(s)
        result = reconcile(export.day_file(s, today), book)
    db.dispose()
    print(f"ledger             {problems or 'ok'}")
    print(
        f"reconciliation     {'clean' if result.clean else result.differences[:5]}"
        f" ({result.disbursements} disbursements, {result.disbursed_fen} fen)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send")
    parser.add_argument("--hub-workers", type=int, default=1, help="uvicorn processes")
    args = parser.parse_args()
    print(f"hub                {args.hub_workers} uvicorn process(es)")
    run(args.rate, args.seconds, args.hub_workers)


if __name__ == "__main__":
    main()
