"""The crash run (issue #9): mixed money operations with client retries against a hub on
PostgreSQL that is killed with SIGKILL at random moments and restarted, then every promise
checked against the books.

Client threads (one terminal and its own cards each) tap cards through the signed terminal
API: authorise, usually capture, sometimes refund a part; some holds are never captured and
must expire. They also send loan orders through the HMAC-signed API, a share with a wrong
identity check (rejected, with a callback). Every operation has a client-chosen id and is
retried through connection errors (and 409 `disbursement_in_flight`) until a definitive
answer: 2xx or a 4xx refusal. A killer thread sends SIGKILL to the hub (`uvicorn --factory
hub.app:create_app`, workers on) at seeded random moments and starts a new one on the same
port. Afterwards the hub is restarted once more, the holds expire and the outbox drains, and
what the clients saw is compared with the ledger, the outbox and the loan system's inbox.

Run: .venv/bin/python bench/crash.py [--kills 20] [--seconds 120] [--clients 6] [--seed 9]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import text

from bench import card_taps, disbursements
from bench.card_taps import AMOUNT, CARDS_PER_CLIENT, BenchTerminal, CardChip
from bench.common import free_port, fresh_database
from devices.agent.hub_client import HubClient, HubUnavailable, encode_body
from devices.protocol.card_payments import CARD_PAYMENTS_PATH, capture_path, refunds_path
from hub.config import Settings
from hub.db import Database
from hub.disbursements import export
from hub.ledger import service as ledger
from integrations.loans.client import ClientKey, DisbursementApi
from integrations.loans.simulator import (
    Borrower,
    CallbackInbox,
    CallbackServer,
    LoanBook,
    make_orders,
    reconcile,
)

ROOT = Path(__file__).resolve().parents[1]
FUNDED = 10**10  # what card_taps.setup puts on every card
POST_PENDING = 2  # hub.ledger.models.TransferFlag.POST_PENDING
# 409s that ask for a retry rather than refuse: an order a killed hub left in flight, contention.
RETRY_LATER = {"disbursement_in_flight", "conflict_retry_exhausted"}
# Refusals the run provokes on purpose; any other 4xx is a finding.
PLANTED = {"identity_mismatch", "authorization_expired"}
# Refusals at the edge that record nothing, so no callback follows them.
EDGE_REFUSALS = {"amount_not_positive", "amount_over_cap", "value_date_invalid", "invalid_request"}
ANSWER_DEADLINE = 120.0  # seconds one operation may go without a definitive answer


@dataclass(frozen=True)
class Options:
    kills: int = 20
    seconds: float = 120.0  # clients send at least this long, and until the last kill is over
    clients: int = 6
    seed: int = 9
    hold_seconds: int = 20  # HUB_CARD_HOLD_SECONDS: short, so uncaptured holds expire in the run
    capture_share: float = 0.8
    refund_share: float = 0.2
    loan_share: float = 0.25
    wrong_identity_share: float = 0.1
    database: str = "sshub_crash"  # made afresh, unless database_url is given
    database_url: str | None = None  # an empty migrated database (the test's)
    progress_seconds: float = 5.0


# --- what the clients saw -------------------------------------------------------------------


@dataclass
class Tap:
    """One card tap as its terminal saw it; `lost` holds when an answer was last lost, per step."""

    terminal_id: int
    transaction_id: str
    card: int
    payment_id: int | None = None
    approved: bool = False
    refusal: str | None = None
    captured: int | None = None
    capture_refusal: str | None = None
    refund_id: str | None = None
    refunded: int | None = None
    lost: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Loan:
    external_id: str
    card_number: str
    amount: int
    outcome: str = ""  # "credited" or the refusal's code
    replayed: bool = False  # the hub answered a retry with the first result


@dataclass
class Tally:
    """One client's operations (authorise, capture, refund, loan order)."""

    done: int = 0
    succeeded: int = 0
    retried: int = 0  # operations that needed at least one retry
    attempts_lost: int = 0  # attempts without an answer (connection refused, reset, timeout)
    cut_in_flight: int = 0  # of those, requests the hub had taken when it was killed
    retry_later: Counter[str] = field(default_factory=Counter)  # RETRY_LATER answers by code
    server_errors: Counter[str] = field(default_factory=Counter)  # "status path"
    refusals: Counter[str] = field(default_factory=Counter)


# --- the hub process --------------------------------------------------------------------------


class Hub:
    """`uvicorn --factory hub.app:create_app` on a fixed port, killed and started again."""

    def __init__(self, database_url: str, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = os.environ | env | {"HUB_DATABASE_URL": database_url}
        self.logs = logs
        self.starts = 0
        self.kills = 0
        self.outages: list[float] = []  # seconds from each SIGKILL to a healthy new process
        self._killed_at: float | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        command = [sys.executable, "-m", "uvicorn", "--factory", "hub.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning", "--no-access-log"]
        with (self.logs / f"hub-{self.starts:03d}.log").open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    if self._killed_at is not None:
                        self.outages.append(time.monotonic() - self._killed_at)
                        self._killed_at = None
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the hub did not start within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no rollback, the process is simply gone."""
        assert self.process is not None
        self._killed_at = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_count(self, word: str) -> int:
        return sum(p.read_text(errors="replace").count(word) for p in self.logs.glob("*.log"))


def hub_env(options: Options) -> dict[str, str]:
    """Workers on and quick: holds expire and leases of dead processes lapse within the run."""
    return disbursements.HUB_ENV | {
        "HUB_CARD_HOLD_SECONDS": str(options.hold_seconds),
        "HUB_HOLD_SWEEP_SECONDS": "1",
        "HUB_OUTBOX_POLL_SECONDS": "0.2",
        # A message claimed by a killed hub is delivered by the next one once its lease lapses.
        "HUB_OUTBOX_LEASE_SECONDS": "5",
        "HUB_OUTBOX_BACKOFF_BASE_SECONDS": "0.5",
        "HUB_OUTBOX_BACKOFF_CAP_SECONDS": "5",
        "HUB_LOAN_CALLBACK_TIMEOUT_SECONDS": "2",
        # An order accepted by a killed hub is taken over by a retry after this lease.
        "HUB_DISBURSEMENT_IN_FLIGHT_SECONDS": "2",
    }


class Killer(threading.Thread):
    """Kills the hub `kills` times at seeded random moments spread over `seconds`."""

    def __init__(self, hub: Hub, options: Options) -> None:
        super().__init__(name="killer", daemon=True)
        self.hub = hub
        self.options = options
        self.rng = random.Random(options.seed)
        self.error: BaseException | None = None

    def run(self) -> None:
        uptime = self.options.seconds / max(1, self.options.kills)
        try:
            for _ in range(self.options.kills):
                time.sleep(self.rng.uniform(0.2, 1.8) * uptime)
                self.hub.kill()
                time.sleep(self.rng.uniform(0, 0.5))  # clients meet a closed port meanwhile
                self.hub.start()
        except BaseException as exc:  # reported by run(); a dead killer must not hang the run
            self.error = exc


# --- the clients ------------------------------------------------------------------------------


class Client(threading.Thread):
    """A terminal with its own cards that also plays a loan officer; retries until answered."""

    def __init__(
        self,
        n: int,
        hub_url: str,
        terminal: BenchTerminal,
        loans: tuple[ClientKey, list[Borrower], bytes],
        options: Options,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n = n
        self.options = options
        self.stop = stop
        self.rng = random.Random(f"{options.seed}:{n}")
        key = load_pem_private_key(terminal.key_pem, None)
        self.terminal_id = terminal.terminal_id
        self.hub = HubClient(hub_url, terminal.terminal_id, key, timeout=10)  # type: ignore[arg-type]
        self.http = httpx.Client(base_url=hub_url, timeout=10)
        self.api = DisbursementApi(self.http, loans[0])
        self.borrowers, self.id_hash_key = loans[1], loans[2]
        first = 1 + n * CARDS_PER_CLIENT  # the cards card_taps.setup gives this terminal
        self.chips = [CardChip(c) for c in range(first, first + CARDS_PER_CLIENT)]
        self.atc = [0] * CARDS_PER_CLIENT
        self.value_date = datetime.now(ZoneInfo(Settings().business_timezone)).date()
        self.taps: list[Tap] = []
        self.loans: list[Loan] = []
        self.tally = Tally()
        self.error: str | None = None

    def run(self) -> None:
        count = 0
        try:
            while not self.stop.is_set():
                count += 1
                if self.rng.random() < self.options.loan_share:
                    self.loan(count)
                else:
                    self.tap(count)
        except Exception as exc:  # kept for the report: the run must say a client gave up
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.hub.close()
            self.http.close()

    def tap(self, count: int) -> None:
        slot = count % len(self.chips)
        self.atc[slot] += 1  # a new tap; a retry below re-presents the same ATC
        tap = Tap(self.terminal_id, f"c{self.n}-{count}", self.chips[slot].n)
        self.taps.append(tap)
        body = self.chips[slot].tap_body(self.atc[slot], tap.transaction_id)
        answer = self.terminal("authorise", CARD_PAYMENTS_PATH, body, tap)
        if "error" in answer:
            tap.refusal = answer["error"]["code"]
            return
        tap.payment_id, tap.approved = answer["payment_id"], answer["approved"]
        if not tap.approved:
            tap.refusal = answer["decline_code"]
            return
        self.tally.succeeded += 1
        if self.rng.random() >= self.options.capture_share:
            return  # authorised and never captured: the hold must expire
        answer = self.terminal("capture", capture_path(tap.payment_id), {}, tap)
        if "error" in answer:
            tap.capture_refusal = answer["error"]["code"]
            return
        tap.captured = answer["captured"]
        self.tally.succeeded += 1
        if self.rng.random() >= self.options.refund_share:
            return
        tap.refund_id = f"{tap.transaction_id}-r"
        amount = self.rng.randrange(1, AMOUNT)
        refund = {"refund_id": tap.refund_id, "amount": amount}
        answer = self.terminal("refund", refunds_path(tap.payment_id), refund, tap)
        if "error" not in answer:
            tap.refunded = answer["amount"]
            self.tally.succeeded += 1

    def terminal(self, step: str, path: str, body: dict[str, Any], tap: Tap) -> dict[str, Any]:
        raw = encode_body(body)

        def send() -> httpx.Response | None:
            try:
                return self.hub.send("POST", path, raw)
            except HubUnavailable as exc:
                tap.lost[step] = datetime.now(UTC)
                self.lost(exc.__cause__)
                return None

        return self.answered(send, path).json()  # type: ignore[no-any-return]

    def loan(self, count: int) -> None:
        borrower = self.rng.choice(self.borrowers)
        (order,) = make_orders(
            [borrower],
            1,
            id_hash_key=self.id_hash_key,
            value_date=self.value_date,
            prefix=f"S{self.options.seed}C{self.n}N{count}",
            rng=self.rng,
            wrong_identity_share=self.options.wrong_identity_share,
        )
        loan = Loan(order["external_id"], order["card_number"], order["amount"])
        self.loans.append(loan)

        def send() -> httpx.Response | None:
            try:
                return self.api.create(order)
            except httpx.TransportError as exc:
                self.lost(exc)
                return None

        response = self.answered(send, "/api/loans/disbursements")
        loan.replayed = response.headers.get("Idempotent-Replayed") == "true"
        if response.status_code == 201:
            loan.outcome = "credited"
            self.tally.succeeded += 1
        else:
            loan.outcome = response.json()["error"]["code"]

    def lost(self, cause: BaseException | None) -> None:
        """An attempt without an answer; not refused at connect means the kill cut it off."""
        if not isinstance(cause, httpx.ConnectError):
            self.tally.cut_in_flight += 1

    def answered(self, send: Callable[[], httpx.Response | None], path: str) -> httpx.Response:
        """Send until the hub gives a definitive answer: 2xx, or a 4xx that is not 'retry'."""
        deadline = time.monotonic() + ANSWER_DEADLINE
        pause, retried = 0.05, False
        while True:
            response = send()
            if response is None:
                self.tally.attempts_lost += 1
            elif response.status_code >= 500:
                self.tally.server_errors[f"{response.status_code} {path}"] += 1
            elif _code(response) in RETRY_LATER:
                self.tally.retry_later[_code(response)] += 1
            else:
                break
            retried = True
            if time.monotonic() > deadline:
                raise RuntimeError(f"no definitive answer for {path} in {ANSWER_DEADLINE:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        self.tally.done += 1
        self.tally.retried += retried
        if response.status_code >= 400:
            self.tally.refusals[_code(response)] += 1
        return response


def _code(response: httpx.Response) -> str:
    if response.status_code < 400:
        return ""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    figure: str
    ok: bool


def counted(name: str, seen: int, found_as: str, found: int) -> Check:
    """Every one of `seen` things must be found: 'captured: 412, in ledger exactly once: 412'."""
    return Check(name, f"{name}: {seen}, {found_as}: {found}", seen == found)


def none(name: str, found: int, detail: object = "") -> Check:
    tail = f"  {detail}" if found and detail else ""
    return Check(name, f"{name}: {found}{tail}", found == 0)


@dataclass
class Report:
    options: Options
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def print(self) -> None:
        print("\nwhat the run did")
        for name, value in self.figures.items():
            print(f"  {name:<60}{value}")
        print("\nwhat was checked")
        for check in self.checks:
            print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.figure}")
        verdict = "every check holds" if not self.failed else f"{len(self.failed)} checks FAILED"
        print(f"\n{verdict}")


# --- the run ------------------------------------------------------------------------------------


def run(options: Options) -> Report:
    """Set up, run the clients while the killer kills, restart once more, drain, check."""
    url = options.database_url or fresh_database(options.database)
    print(f"setting up {options.clients} terminals, {options.clients * CARDS_PER_CLIENT} cards")
    terminals, cards = card_taps.setup(url, options.clients)
    borrowers = [Borrower(f"B{n:08d}", f"3301021958{n:08d}") for n in range(1, cards)]
    settings = Settings(database_url=url)
    inbox_port = free_port()
    callback_url = f"http://127.0.0.1:{inbox_port}/callbacks"
    db = Database(url)
    try:
        issued = db.transaction(
            lambda s: disbursements.open_programme(s, callback_url, settings, datetime.now(UTC))
        )
        key = ClientKey(issued.key_id, issued.secret)
        inbox = CallbackInbox({key.key_id: key.secret})
        loans = (key, borrowers, settings.id_hash_key.get_secret_value().encode())
        logs = _log_dir(url)
        with (
            CallbackServer(inbox, port=inbox_port),
            _running(Hub(url, hub_env(options), logs)) as hub,
        ):
            report = Report(options)
            clients = _traffic(hub, terminals, loans, options, report)
            _settle(hub, db, inbox, clients, options, report)
            hub.stop()
        report.figures["hub logs"] = str(logs)
        _check(db, inbox, clients, settings, report)
        report.checks += [
            none("unhandled errors in the hub's logs", hub.log_count("unhandled_error")),
            none("failed background jobs in the hub's logs", hub.log_count("periodic_job_failed")),
        ]
    finally:
        db.dispose()
    report.print()
    return report


def _log_dir(url: str) -> Path:
    """var/crash/<database>/: one log per hub process, kept for a look after a failed check."""
    logs = ROOT / "var" / "crash" / url.rpartition("/")[2]
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return logs


@contextmanager
def _running(hub: Hub) -> Iterator[Hub]:
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def _traffic(
    hub: Hub,
    terminals: list[BenchTerminal],
    loans: tuple[ClientKey, list[Borrower], bytes],
    options: Options,
    report: Report,
) -> list[Client]:
    """Clients send while the killer kills; both end after `seconds` and the last kill."""
    stop = threading.Event()
    clients = [
        Client(n, hub.url, terminals[n + 1], loans, options, stop) for n in range(options.clients)
    ]
    killer = Killer(hub, options)
    started = time.monotonic()
    for client in clients:
        client.start()
    killer.start()
    next_line = started + options.progress_seconds
    while killer.is_alive() or time.monotonic() - started < options.seconds:
        time.sleep(0.1)
        if time.monotonic() >= next_line:
            _progress(time.monotonic() - started, hub, clients, options)
            next_line += options.progress_seconds
        if not any(c.is_alive() for c in clients):
            break
    stop.set()
    killer.join()
    for client in clients:
        client.join(ANSWER_DEADLINE + 30)
    elapsed = time.monotonic() - started
    _progress(elapsed, hub, clients, options)
    if killer.error is not None:
        raise RuntimeError(f"the killer failed: {killer.error}")
    tallies = [c.tally for c in clients]
    outages = hub.outages or [0.0]
    report.figures |= {
        "seconds of traffic": round(elapsed, 1),
        "client threads": options.clients,
        "hub kills (SIGKILL at random moments)": hub.kills,
        "outage per kill, kill to healthy, mean / max s": (
            f"{sum(outages) / len(outages):.1f} / {max(outages):.1f}"
        ),
        "operations answered": sum(t.done for t in tallies),
        "  that needed retries": sum(t.retried for t in tallies),
        "  attempts without an answer (refused, reset)": sum(t.attempts_lost for t in tallies),
        "    requests cut off in flight by a kill": sum(t.cut_in_flight for t in tallies),
        "  409 retry-later answers": dict(sum((t.retry_later for t in tallies), Counter[str]())),
    }
    return clients


def _progress(elapsed: float, hub: Hub, clients: list[Client], options: Options) -> None:
    tallies = [c.tally for c in clients]
    print(
        f"{elapsed:6.1f} s  kills {hub.kills}/{options.kills}  operations"
        f" {sum(t.done for t in tallies)} done, {sum(t.succeeded for t in tallies)} succeeded,"
        f" {sum(t.retried for t in tallies)} retried",
        flush=True,
    )


def _settle(
    hub: Hub,
    db: Database,
    inbox: CallbackInbox,
    clients: list[Client],
    options: Options,
    report: Report,
) -> None:
    """Restart the hub once more; wait until no hold is pending and every callback arrived."""
    hub.kill()
    hub.start()
    report.figures["hub processes started"] = hub.starts
    expected = len(_expected_events([loan for c in clients for loan in c.loans]))
    began = time.monotonic()
    deadline = began + options.hold_seconds + 90
    while time.monotonic() < deadline:
        with db.session() as s:
            holds = s.execute(text("SELECT count(*) FROM ledger_holds WHERE state = 'pending'"))
            outbox = s.execute(text("SELECT count(*) FROM outbox_messages WHERE state = 'pending'"))
            pending = holds.scalar_one() + outbox.scalar_one()
        if pending == 0 and len(inbox.events) >= expected:
            break
        time.sleep(0.5)
    report.figures["seconds to drain holds and callbacks after"] = round(
        time.monotonic() - began, 1
    )


def _expected_events(loans: list[Loan]) -> set[str]:
    """The callback every answered order must bring: credited, or rejected with its reason."""
    return {
        f"disb.credited.{loan.external_id}"
        if loan.outcome == "credited"
        else f"disb.rejected.{loan.external_id}"
        for loan in loans
        if loan.outcome not in EDGE_REFUSALS
    }


# --- the checks ---------------------------------------------------------------------------------


@dataclass
class Books:
    """What the hub's database holds, read once after the run."""

    payments: dict[str, Any]  # by idempotency key
    operations: dict[tuple[int, str], Any]  # (payment id, kind)
    transfers: list[Any]
    holds: dict[str, str]  # transfer id -> state
    accounts: dict[int, Any]
    card_accounts: dict[str, int]  # card number -> account id
    outbox: Counter[str]
    loan_days: dict[str, date]  # external id -> the business day of its outcome (posted_on)


def _books(db: Database) -> Books:
    def rows(sql: str) -> list[Any]:
        with db.session() as s:
            return list(s.execute(text(sql)))

    return Books(
        payments={p.idempotency_key: p for p in rows("SELECT * FROM payments")},
        operations={(o.payment_id, o.kind): o for o in rows("SELECT * FROM payment_operations")},
        transfers=rows("SELECT * FROM ledger_transfers WHERE reference IS NOT NULL"),
        holds={h.transfer_id: h.state for h in rows("SELECT * FROM ledger_holds")},
        accounts={a.id: a for a in rows("SELECT * FROM ledger_accounts")},
        card_accounts={
            c.card_number: c.account_id
            for c in rows("SELECT card_number, account_id FROM issuer_cards")
        },
        outbox=Counter(
            {
                r.state: r.n
                for r in rows("SELECT state, count(*) AS n FROM outbox_messages GROUP BY state")
            }
        ),
        loan_days={
            d.external_id: d.posted_on
            for d in rows("SELECT external_id, posted_on FROM disbursements")
            if d.posted_on is not None
        },
    )


def _check(
    db: Database, inbox: CallbackInbox, clients: list[Client], settings: Settings, report: Report
) -> None:
    books = _books(db)
    taps = [t for c in clients for t in c.taps]
    loans = [loan for c in clients for loan in c.loans]
    _tap_figures(taps, books, report)
    _loan_figures(loans, inbox, report)
    report.checks += _tap_checks(taps, books)
    report.checks += _loan_checks(loans, books, inbox, db, settings)
    report.checks += _book_checks(taps, loans, books, db)
    tallies = [c.tally for c in clients]
    errors = sum((t.server_errors for t in tallies), Counter[str]())
    refusals = sum((t.refusals for t in tallies), Counter[str]())
    unplanned = {code: n for code, n in refusals.items() if code not in PLANTED}
    report.checks += [
        none(
            "clients that gave up",
            sum(c.error is not None for c in clients),
            [c.error for c in clients if c.error],
        ),
        none("5xx answers seen by clients", sum(errors.values()), dict(errors)),
        none("refusals nobody planted", sum(unplanned.values()), unplanned),
    ]


def _tap_figures(taps: list[Tap], books: Books, report: Report) -> None:
    f = report.figures
    f["card taps"] = len(taps)
    f["  approved (hold taken)"] = sum(t.approved for t in taps)
    f["  captured"] = sum(t.captured is not None for t in taps)
    f["  capture refused (hold expired during an outage)"] = sum(
        t.capture_refusal is not None for t in taps
    )
    f["  refunded in part"] = sum(t.refunded is not None for t in taps)
    f["  left uncaptured on purpose"] = sum(
        t.approved and t.captured is None and t.capture_refusal is None for t in taps
    )
    applied_before_lost = 0
    for t in taps:
        p = books.payments.get(_key(t))
        if p is None:
            continue
        steps = {
            "authorise": p,
            **{k: books.operations.get((p.id, k)) for k in ("capture", "refund")},
        }
        applied_before_lost += sum(
            1
            for step, lost in t.lost.items()
            if steps.get(step) is not None and steps[step].created_at < lost
        )
    f["  steps whose answer a kill lost, found applied on retry"] = applied_before_lost


def _loan_figures(loans: list[Loan], inbox: CallbackInbox, report: Report) -> None:
    f = report.figures
    f["loan orders"] = len(loans)
    f["  credited"] = sum(loan.outcome == "credited" for loan in loans)
    f["  rejected (wrong identity check)"] = sum(
        loan.outcome == "identity_mismatch" for loan in loans
    )
    f["  orders whose answer a kill lost, replayed on retry"] = sum(loan.replayed for loan in loans)
    f["callbacks received (distinct)"] = len(inbox.events)
    f["  duplicates the loan system ignored"] = inbox.duplicates


def _key(tap: Tap) -> str:
    return f"tap:{tap.terminal_id}:{tap.transaction_id}"


def _movements(books: Books) -> dict[str, Counter[str]]:
    """Per business reference, how many transfers of each kind (code, flags) it has."""
    found: dict[str, Counter[str]] = {}
    for t in books.transfers:
        found.setdefault(t.reference, Counter())[f"{t.code}/{t.flags}"] += 1
    return found


def _tap_checks(taps: list[Tap], books: Books) -> list[Check]:
    by_ref: dict[str, list[Any]] = {}
    for t in books.transfers:
        by_ref.setdefault(t.reference, []).append(t)
    captured = [t for t in taps if t.captured is not None]
    refunded = [t for t in taps if t.refunded is not None]
    uncaptured = [t for t in taps if t.approved and t.captured is None]
    answered = [t for t in taps if t.payment_id is not None]

    def payment(t: Tap) -> Any:
        return books.payments.get(_key(t))

    def transfers(t: Tap, code: str, flags: int | None = None) -> list[Any]:
        p = payment(t)
        found = by_ref.get(f"payment:{p.id}", []) if p is not None else []
        return [x for x in found if x.code == code and (flags is None or x.flags & flags)]

    def capture_once(t: Tap) -> bool:
        posts = transfers(t, "card_payment", POST_PENDING)
        return len(posts) == 1 and posts[0].amount == t.captured == payment(t).captured

    def refund_once(t: Tap) -> bool:
        refunds = transfers(t, "refund")
        return len(refunds) == 1 and refunds[0].amount == t.refunded == payment(t).refunded

    def expired(t: Tap) -> bool:
        return books.holds.get(payment(t).hold_transfer_id) == "expired"

    return [
        counted(
            "card taps answered",
            len(answered),
            "the same payment in the hub",
            sum(payment(t) is not None and payment(t).id == t.payment_id for t in answered),
        ),
        counted(
            "card payments seen captured",
            len(captured),
            "in ledger exactly once",
            sum(capture_once(t) for t in captured),
        ),
        counted(
            "refunds seen",
            len(refunded),
            "in ledger exactly once",
            sum(refund_once(t) for t in refunded),
        ),
        counted(
            "holds never captured",
            len(uncaptured),
            "expired in the ledger",
            sum(expired(t) for t in uncaptured),
        ),
    ]


def _loan_checks(
    loans: list[Loan], books: Books, inbox: CallbackInbox, db: Database, settings: Settings
) -> list[Check]:
    movements = _movements(books)
    credited = [loan for loan in loans if loan.outcome == "credited"]
    rejected = [loan for loan in loans if loan.outcome != "credited"]
    by_id = {t.id: t for t in books.transfers}

    def credited_once(loan: Loan) -> bool:
        moved = movements.get(f"disbursement:{loan.external_id}", Counter())
        t = by_id.get(f"disb:{loan.external_id}")
        return (
            sum(moved.values()) == 1
            and t is not None
            and t.amount == loan.amount
            and (t.credit_account_id == books.card_accounts[loan.card_number])
        )

    expected = _expected_events(loans)
    today = datetime.now(ZoneInfo(settings.business_timezone)).date()
    with db.session() as s:
        results = {
            day: reconcile(export.day_file(s, day), book)
            for day, book in _day_books(loans, inbox, books, today).items()
        }
    differences = [f"{day}: {d}" for day, r in results.items() for d in r.differences]
    return [
        counted(
            "loans seen credited",
            len(credited),
            "in ledger exactly once",
            sum(credited_once(loan) for loan in credited),
        ),
        counted(
            "loans seen rejected",
            len(rejected),
            "with no money moved",
            sum(f"disbursement:{loan.external_id}" not in movements for loan in rejected),
        ),
        counted(
            "callbacks owed for answered orders",
            len(expected),
            "received by the loan system",
            len(expected & inbox.events.keys()),
        ),
        none("callbacks the loan system refused", inbox.refused),
        Check(
            "day's export reconciles with the loan book",
            "day's export reconciles with the loan book: "
            + (
                f"clean ({len(results)} day(s),"
                f" {sum(r.disbursements for r in results.values())} disbursements,"
                f" {sum(r.disbursed_fen for r in results.values())} fen)"
                if not differences
                else f"{len(differences)} differences {differences[:3]}"
            ),
            not differences,
        ),
        Check(
            "outbox",
            f"outbox messages delivered: {books.outbox['delivered']}, pending:"
            f" {books.outbox['pending']}, dead-lettered: {books.outbox['dead']}",
            books.outbox["pending"] == 0 and books.outbox["dead"] == 0,
        ),
    ]


def _day_books(
    loans: list[Loan], inbox: CallbackInbox, books: Books, today: date
) -> dict[date, LoanBook]:
    """The loan book split by the business day the hub booked each outcome on, one book per
    export: a run that crosses midnight (Asia/Shanghai) has two. An outcome the hub has no day
    for goes to today's, whose export then misses it."""
    days: dict[date, LoanBook] = {today: LoanBook()}

    def book_of(external_id: str) -> LoanBook:
        return days.setdefault(books.loan_days.get(external_id, today), LoanBook())

    for loan in loans:
        book = book_of(loan.external_id)
        book.orders[loan.external_id] = {"amount": loan.amount}
        book.outcomes[loan.external_id] = loan.outcome
    for key, event in inbox.events.items():
        book_of(event["disbursement"]["external_id"]).events[key] = event
    return days


def _book_checks(taps: list[Tap], loans: list[Loan], books: Books, db: Database) -> list[Check]:
    """The other direction: nothing in the books that no client saw, nothing twice, balances."""
    twice = {ref: kinds for ref, kinds in _movements(books).items() if max(kinds.values()) > 1}
    seen_payments = {_key(t) for t in taps}
    unseen = [k for k in books.payments if k not in seen_payments]
    captured = {t.payment_id for t in taps if t.captured is not None}
    refunded = {t.payment_id for t in taps if t.refunded is not None}
    credited = {loan.external_id for loan in loans if loan.outcome == "credited"}
    unseen_moves = [t.id for t in books.transfers if _unseen_move(t, captured, refunded, credited)]
    # Per card: funding + refunds + credited loans in, captures out, as the clients saw them.
    expected = {number: [0, FUNDED] for number in books.card_accounts}
    for t in taps:
        number = f"B{t.card:08d}"
        expected[number][0] += t.captured or 0
        expected[number][1] += t.refunded or 0
    for loan in loans:
        if loan.outcome == "credited":
            expected[loan.card_number][1] += loan.amount
    matching = sum(
        [books.accounts[account].debits_posted, books.accounts[account].credits_posted]
        == expected[number]
        for number, account in books.card_accounts.items()
    )
    pending = sum(books.accounts[a].debits_pending for a in books.card_accounts.values())
    with db.session() as s:
        problems = ledger.check_invariants(s)
    return [
        none(
            "business ids with two money movements of a kind", len(twice), list(twice.items())[:3]
        ),
        none("payments in the hub no client saw answered", len(unseen), unseen[:3]),
        none(
            "money movements in the ledger no client saw succeed",
            len(unseen_moves),
            unseen_moves[:3],
        ),
        counted(
            "card accounts", len(books.card_accounts), "balance as the clients saw it", matching
        ),
        none("fen still held on card accounts (no live holds left)", pending),
        none("ledger invariants broken", len(problems), problems[:3]),
    ]


def _unseen_move(t: Any, captured: set[int], refunded: set[int], credited: set[str]) -> bool:
    """A transfer that moved money for good although no client was told it succeeded."""
    owner = t.reference.partition(":")[2]
    if t.code == "card_payment" and t.flags & POST_PENDING:
        return int(owner) not in captured
    if t.code == "refund":
        return int(owner) not in refunded
    if t.code == "loan_disbursement":
        return owner not in credited
    return False  # a hold, or its void, moves nothing for good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = Options()
    parser.add_argument("--kills", type=int, default=defaults.kills, help="SIGKILLs (≥ 20)")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help="traffic")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="client threads")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--hold-seconds", type=int, default=defaults.hold_seconds)
    parser.add_argument("--database", default=defaults.database)
    args = parser.parse_args()
    report = run(
        Options(
            kills=args.kills,
            seconds=args.seconds,
            clients=args.clients,
            seed=args.seed,
            hold_seconds=args.hold_seconds,
            database=args.database,
        )
    )
    sys.exit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
