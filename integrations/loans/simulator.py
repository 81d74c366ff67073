"""A simulator of the bank's loan system, as a real HTTP server and client.

It sends approved loans to the hub at a chosen rate, receives the hub's signed callbacks
(verifying each signature and de-duplicating by event id), undoes some loans, and reconciles the
hub's daily export against what it sent and heard. Run it with `sshub simulate loans ...` or
`python -m integrations.loans.simulator ...`.

The export it reconciles is written by `sshub disbursements export` (format: EXPORT_HEADER in
integrations/loans/client.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from integrations.loans.client import (
    EVENT_ID_HEADER,
    EXPORT_HEADER,
    KEY_ID_HEADER,
    MAX_SKEW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ClientKey,
    Clock,
    DisbursementApi,
    id_number_check,
    signature_valid,
    timestamp_fresh,
)

CALLBACK_PATH = "/callbacks"

# Receiving callbacks.


class CallbackInbox:
    """Verified callbacks by event id; a repeated event is acknowledged and has no effect."""

    def __init__(self, keys: Mapping[str, str], *, clock: Clock = time.time) -> None:
        self.keys = dict(keys)
        self.clock = clock
        self.events: dict[str, dict[str, Any]] = {}
        self.arrived: dict[str, float] = {}  # event id -> time.perf_counter() at first arrival
        self.duplicates = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._arrival = threading.Condition(self._lock)

    def receive(self, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Check one callback; returns the HTTP status and a word for the answer body."""
        refusal = self._refusal(target, headers, body)
        with self._lock:
            if refusal:
                self.refused += 1
                return 401, refusal
            event = json.loads(body)
            if event["event_id"] in self.events:
                self.duplicates += 1
                return 200, "duplicate"
            self.events[event["event_id"]] = event
            self.arrived[event["event_id"]] = time.perf_counter()
            self._arrival.notify_all()
        return 200, "accepted"

    def _refusal(self, target: str, headers: Mapping[str, str], body: bytes) -> str | None:
        secret = self.keys.get(headers.get(KEY_ID_HEADER, ""))
        if secret is None:
            return "key_unknown"
        try:
            timestamp = int(headers.get(TIMESTAMP_HEADER, ""))
        except ValueError:
            return "timestamp_missing"
        if not timestamp_fresh(timestamp, self.clock(), MAX_SKEW_SECONDS):
            return "timestamp_stale"
        signature = headers.get(SIGNATURE_HEADER, "")
        if not signature_valid(secret, "POST", target, timestamp, body, signature):
            return "signature_invalid"
        try:
            event_id = json.loads(body)["event_id"]
        except (ValueError, KeyError, TypeError):
            return "body_invalid"
        return None if event_id == headers.get(EVENT_ID_HEADER) else "event_id_mismatch"

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until `count` distinct events have arrived."""
        with self._arrival:
            return self._arrival.wait_for(lambda: len(self.events) >= count, timeout)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """Events of one type by external id."""
        with self._lock:
            return {
                e["disbursement"]["external_id"]: e
                for e in self.events.values()
                if e["type"] == kind
            }


class CallbackServer:
    """The loan system's callback endpoint: a real HTTP server on its own threads."""

    def __init__(self, inbox: CallbackInbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.inbox = inbox
        self._server = _Server((host, port), _handler_for(inbox))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{CALLBACK_PATH}"

    def start(self) -> CallbackServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the sender died mid-request (a hub killed while it sends): nothing to say
        super().handle_error(request, client_address)


def _handler_for(inbox: CallbackInbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the hub's worker reuses its connections
        disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms delayed-ACK wait

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender went away mid-body: no callback, no refusal
                self.close_connection = True
                return
            if self.path.split("?")[0] != CALLBACK_PATH:
                self._answer(404, "not_found")
                return
            headers = {k: v for k, v in self.headers.items()}
            self._answer(*inbox.receive(self.path, headers, body))

        def _answer(self, status: int, word: str) -> None:
            payload = json.dumps({"status": word}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the summary says what happened

    return Handler


# Sending orders.


@dataclass(frozen=True)
class Borrower:
    card_number: str
    id_number: str


@dataclass(frozen=True)
class Answer:
    """The hub's answer to one request, as the loan system books it."""

    external_id: str
    status: int
    outcome: str  # "credited", "undone" or the error code
    latency: float  # seconds from the scheduled send to the answer
    sent_at: float  # time.perf_counter() when it was due to be sent


@dataclass
class LoanBook:
    """What the loan system sent and was told, kept for reconciliation."""

    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # external id -> credited/code
    undone: dict[str, int] = field(default_factory=dict)  # external id -> amount undone
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: Path) -> LoanBook:
        return cls(**json.loads(path.read_text()))


def make_orders(
    borrowers: Sequence[Borrower],
    count: int,
    *,
    id_hash_key: bytes,
    value_date: date,
    prefix: str,
    rng: random.Random,
    amounts: tuple[int, int] = (50_000, 5_000_000),
    wrong_identity_share: float = 0.0,
) -> list[dict[str, Any]]:
    """`count` approved loans spread over the borrowers; a share carries a wrong ID check."""
    orders = []
    for n in range(count):
        borrower = borrowers[n % len(borrowers)]
        id_number = borrower.id_number
        if rng.random() < wrong_identity_share:
            id_number = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
        orders.append(
            {
                "external_id": f"{prefix}-{n:06d}",
                "loan_ref": f"LN{prefix}{n:06d}",
                "amount": rng.randrange(*amounts, 100),
                "card_number": borrower.card_number,
                "id_number_hash": id_number_check(id_number, id_hash_key),
                "purpose": "micro-loan",
                "value_date": value_date.isoformat(),
            }
        )
    return orders


def send_orders(
    api: DisbursementApi,
    orders: Sequence[dict[str, Any]],
    book: LoanBook,
    *,
    rate: float,
    workers: int = 32,
) -> list[Answer]:
    """Send orders at `rate` per second; latency counts from each order's scheduled time, so
    a slow hub cannot hide its queueing by slowing the sender down."""

    def one(order: dict[str, Any], scheduled: float) -> Answer:
        try:
            response = api.create(order)
        except httpx.TransportError as exc:  # no answer: the loan system would retry later
            latency = time.perf_counter() - scheduled
            return Answer(order["external_id"], 0, type(exc).__name__, latency, scheduled)
        latency = time.perf_counter() - scheduled
        outcome = "credited" if response.status_code == 201 else _error_code(response)
        return Answer(order["external_id"], response.status_code, outcome, latency, scheduled)

    futures: list[Future[Answer]] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for n, order in enumerate(orders):
            book.orders[order["external_id"]] = order
            scheduled = start + n / rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            futures.append(pool.submit(one, order, scheduled))
    answers = [f.result() for f in futures]
    for answer in answers:
        book.outcomes[answer.external_id] = answer.outcome
    return answers


def undo_loans(api: DisbursementApi, external_ids: Iterable[str], book: LoanBook) -> list[Answer]:
    answers = []
    for external_id in external_ids:
        started = time.perf_counter()
        response = api.undo(external_id, "cooling-off cancellation")
        outcome = "undone" if response.status_code == 200 else _error_code(response)
        if outcome == "undone":
            book.undone[external_id] = book.orders[external_id]["amount"]
        latency = time.perf_counter() - started
        answers.append(Answer(external_id, response.status_code, outcome, latency, started))
    return answers


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds."""
    if not latencies:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


# Reconciliation.


@dataclass(frozen=True)
class Reconciliation:
    differences: list[str]
    disbursements: int
    disbursed_fen: int
    undos: int
    undone_fen: int

    @property
    def clean(self) -> bool:
        return not self.differences


def reconcile(export_text: str, book: LoanBook) -> Reconciliation:
    """Compare the hub's export of one day with the loan system's book of that day.

    The book expects a disbursement row for every loan the hub credited (by its answer and its
    callback, which must agree), an undo row for every undo, and a trailer that adds up.
    """
    rows = list(csv.reader(io.StringIO(export_text)))
    differences: list[str] = []
    if not rows or tuple(rows[0]) != EXPORT_HEADER:
        return Reconciliation(["export has no header"], 0, 0, 0, 0)
    if len(rows) < 2 or rows[-1][0] != "trailer":
        return Reconciliation(["export has no trailer"], 0, 0, 0, 0)
    body, trailer = rows[1:-1], rows[-1]
    credited = {r[1]: r for r in body if r[0] == "disbursement"}
    undos = {r[1]: r for r in body if r[0] == "undo"}
    differences += _check_callbacks(book)
    differences += _check_rows(credited, _expected_credits(book), "disbursement")
    differences += _check_rows(undos, book.undone, "undo")
    totals = (
        len(credited),
        sum(int(r[4]) for r in credited.values()),
        len(undos),
        sum(int(r[4]) for r in undos.values()),
    )
    said = tuple(int(v) for v in trailer[2:6])
    if said != totals:
        differences.append(f"trailer says {said}, rows add up to {totals}")
    if int(trailer[6]) != totals[1] - totals[3]:
        differences.append(f"trailer net {trailer[6]} != {totals[1] - totals[3]}")
    return Reconciliation(differences, *totals)


def _expected_credits(book: LoanBook) -> dict[str, int]:
    return {
        external_id: book.orders[external_id]["amount"]
        for external_id, outcome in book.outcomes.items()
        if outcome == "credited"
    }


def _check_rows(rows: Mapping[str, list[str]], expected: Mapping[str, int], kind: str) -> list[str]:
    differences = [f"{kind} {x} missing from the export" for x in expected.keys() - rows.keys()]
    differences += [
        f"{kind} {x} in the export was never ours" for x in rows.keys() - expected.keys()
    ]
    for external_id in rows.keys() & expected.keys():
        amount = int(rows[external_id][4])
        if amount != expected[external_id]:
            differences.append(
                f"{kind} {external_id}: export {amount}, ours {expected[external_id]}"
            )
    return differences


def _check_callbacks(book: LoanBook) -> list[str]:
    """Every callback must agree with the answer, and every credit and undo must have one."""
    told: dict[str, str] = {}
    undone_told: set[str] = set()
    for event in book.events.values():
        d = event["disbursement"]
        if event["type"] == "disbursement.undone":
            undone_told.add(d["external_id"])
        else:
            credited = event["type"] == "disbursement.credited"
            told[d["external_id"]] = "credited" if credited else d["reason"]
    differences = [
        f"{x}: answer {book.outcomes.get(x, 'none')}, callback {t}"
        for x, t in told.items()
        if book.outcomes.get(x) != t
    ]
    differences += [
        f"{x}: credited without a callback"
        for x, outcome in book.outcomes.items()
        if outcome == "credited" and x not in told
    ]
    differences += [f"{x}: undone without a callback" for x in book.undone.keys() - undone_told]
    return differences


# Command line.


def _read_borrowers(path: Path) -> list[Borrower]:
    with path.open(newline="", encoding="utf-8") as f:
        return [Borrower(r["card_number"], r["id_number"]) for r in csv.DictReader(f)]


def _run(args: argparse.Namespace) -> int:
    key = ClientKey(args.key_id, args.secret or os.environ.get("LOANS_SIM_SECRET", ""))
    inbox = CallbackInbox({key.key_id: key.secret})
    host, port = args.listen.rsplit(":", 1)
    book = LoanBook()
    rng = random.Random(args.seed)
    orders = make_orders(
        _read_borrowers(Path(args.borrowers)),
        args.count,
        id_hash_key=args.id_hash_key.encode(),
        value_date=date.fromisoformat(args.value_date) if args.value_date else date.today(),
        prefix=args.prefix,
        rng=rng,
        wrong_identity_share=args.wrong_identity_share,
    )
    with CallbackServer(inbox, host=host, port=int(port)), httpx.Client(base_url=args.hub) as http:
        api = DisbursementApi(http, key)
        started = time.perf_counter()
        answers = send_orders(api, orders, book, rate=args.rate)
        elapsed = time.perf_counter() - started
        credited = [a.external_id for a in answers if a.outcome == "credited"]
        undos = undo_loans(api, rng.sample(credited, int(len(credited) * args.undo_share)), book)
        finals = sum(1 for a in answers if a.status < 500 and a.outcome != "disbursement_in_flight")
        inbox.wait_for(finals + len(undos), args.wait_callbacks)
    book.events = dict(inbox.events)
    if args.book:
        book.save(Path(args.book))
    _print_summary(answers, undos, inbox, elapsed)
    return 0


def _print_summary(
    answers: list[Answer], undos: list[Answer], inbox: CallbackInbox, elapsed: float
) -> None:
    outcomes = Counter(a.outcome for a in answers)
    print(f"orders sent       {len(answers)} in {elapsed:.1f} s ({len(answers) / elapsed:.1f}/s)")
    for outcome, n in sorted(outcomes.items()):
        print(f"  {outcome:<24}{n}")
    print(f"latency           {latency_summary([a.latency for a in answers])}")
    print(f"undos             {Counter(u.outcome for u in undos)}")
    print(
        f"callbacks         {len(inbox.events)} distinct, {inbox.duplicates} duplicates ignored, "
        f"{inbox.refused} refused"
    )


def _reconcile(args: argparse.Namespace) -> int:
    result = reconcile(
        Path(args.export).read_text(encoding="utf-8"), LoanBook.load(Path(args.book))
    )
    print(
        f"export: {result.disbursements} disbursements {result.disbursed_fen} fen, "
        f"{result.undos} undos {result.undone_fen} fen"
    )
    for difference in result.differences:
        print(f"DIFFERENCE {difference}")
    print("reconciliation clean" if result.clean else f"{len(result.differences)} differences")
    return 0 if result.clean else 1


def _serve(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("LOANS_SIM_SECRET", "")
    inbox = CallbackInbox({args.key_id: secret})
    host, port = args.listen.rsplit(":", 1)
    with CallbackServer(inbox, host=host, port=int(port)) as server:
        print(f"loan system callbacks on {server.url} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(5)
                print(f"{len(inbox.events)} events, {inbox.duplicates} duplicates")
        except KeyboardInterrupt:
            return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sshub simulate loans", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="send a day's orders, receive callbacks, undo a share")
    run.add_argument("--hub", default="http://127.0.0.1:8000")
    run.add_argument("--key-id", required=True)
    run.add_argument("--secret", help="the client secret (or LOANS_SIM_SECRET)")
    run.add_argument("--borrowers", required=True, help="CSV with card_number,id_number")
    run.add_argument("--id-hash-key", default=os.environ.get("LOANS_SIM_ID_HASH_KEY", ""))
    run.add_argument("--rate", type=float, default=20.0, help="orders per second")
    run.add_argument("--count", type=int, default=100)
    run.add_argument("--listen", default="127.0.0.1:8703", help="callback server host:port")
    run.add_argument("--value-date")
    run.add_argument("--prefix", default=f"SIM{int(time.time())}")
    run.add_argument("--wrong-identity-share", type=float, default=0.02)
    run.add_argument("--undo-share", type=float, default=0.05)
    run.add_argument("--wait-callbacks", type=float, default=30.0, help="seconds")
    run.add_argument("--seed", type=int, default=7)
    run.add_argument("--book", help="write the loan book here, for `reconcile`")
    run.set_defaults(func=_run)
    rec = sub.add_parser("reconcile", help="reconcile the hub's export with a saved book")
    rec.add_argument("--export", required=True)
    rec.add_argument("--book", required=True)
    rec.set_defaults(func=_reconcile)
    serve = sub.add_parser("serve", help="only receive callbacks")
    serve.add_argument("--key-id", required=True)
    serve.add_argument("--secret")
    serve.add_argument("--listen", default="127.0.0.1:8703")
    serve.set_defaults(func=_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
