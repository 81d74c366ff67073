"""The day's run loop: events, faults, hand-stepped workers, a check after every step, the report.

    report = run_day(DayOptions(seed=7, events=300))
    print("\\n".join(report.summary()))     # report.failure names the seed, step and difference

One `random.Random(seed)` draws everything (event times and kinds, amounts, cards, ids, keys,
faults); time is the day's own clock; the workers (hold expiry, the outbox, presence) run by
hand after each event. So the same seed gives the same event log, and its SHA-256 (the digest)
shows it did.
"""

from __future__ import annotations

import os
import random
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from devices.protocol.messages import HEARTBEAT_PATH
from hub.config import Settings
from hub.db import Database
from hub.demo.day import flows, payments
from hub.demo.day.clock import CLOSES, OPENS, ZONE, SimClock, local
from hub.demo.day.faults import CRASH, KILLED, FaultPlan, StepFaults
from hub.demo.day.model import Books, Counters
from hub.demo.day.network import BASE_URL, Hub, Network
from hub.demo.day.outside import Outside, outside
from hub.demo.day.report import DayReport, Failure
from hub.demo.day.scene import Mismatch, Outcome, Scene
from hub.demo.day.world import TREASURY, open_district
from hub.ledger import service as ledger

Event = Callable[[Scene], Outcome]
# How often each kind of event happens, out of 100.
EVENTS: dict[str, tuple[int, Event]] = {
    "tap": (30, payments.card_tap),
    "code": (18, payments.payment_code),
    "bill": (10, payments.bill_code),
    "checkout": (15, flows.checkout),
    "loan": (12, flows.disbursement),
    "refund": (7, payments.refund),
    "undo": (3, flows.undo),
    "revoke": (5, flows.revoke),
}
HEARTBEAT_SECONDS = 1800  # every terminal beats every half hour of the day
CLOSING_ROUNDS = 6  # after closing, outbox runs 10 minutes apart until nothing is in flight


@dataclass
class DayOptions:
    seed: int
    events: int = 300
    database_url: str | None = None  # None: a fresh SQLite file in a temporary directory
    plant_mismatch_at: int | None = None  # tests: the model is put 1 fen off at this step


def run_day(options: DayOptions, say: Callable[[str], None] | None = None) -> DayReport:
    """Run one seeded day; `say` hears each event line as it is logged."""
    rng = random.Random(options.seed)
    clock = SimClock(local(OPENS) - timedelta(minutes=30))
    with _database(options.database_url) as url, outside(options.seed, clock) as world:
        settings = _settings(url, world)
        hub = Hub(settings, clock, rng)
        try:
            network = Network(hub)
            books = Books()
            district = open_district(hub, settings, world, network, clock, rng, books)
            scene = Scene(rng, clock, books, district, world, hub, network, settings)
            report = DayReport(
                options.seed, options.events, "postgresql" if not hub.db.is_sqlite else "sqlite"
            )
            _Day(scene, report, options, say or (lambda _line: None)).run()
            report.workers["hub starts"] = hub.starts
        finally:
            hub.stop()
    return report


def _settings(url: str, world: Outside) -> Settings:
    return Settings(
        database_url=url,
        # The report says what happened; the hub's own lines would drown it unless asked for.
        log_level=os.environ.get("HUB_LOG_LEVEL", "CRITICAL"),
        insurance_base_url=world.insurance_url,
        his_base_url=world.his_url,
        # Real seconds: each platform timeout costs this much, and an answer slower than this
        # on a loaded machine would change the day, so keep a wide margin over normal answers.
        insurance_timeout_seconds=1.0,
        card_hold_seconds=2 * 3600,  # authorisations left alone expire within the day
        outbox_concurrency=1,  # deliveries in one order, every replay
        gateway_public_url=BASE_URL,
        gateway_heartbeat_interval_seconds=HEARTBEAT_SECONDS,
    )


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    from hub.migrations import upgrade

    if url is not None:
        upgrade(url)
        _require_empty(url)
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="sshub-day-") as directory:
        url = f"sqlite:///{Path(directory) / 'hub.db'}"
        upgrade(url)
        yield url


def _require_empty(url: str) -> None:
    db = Database(url)
    try:
        with db.session() as session:
            accounts, _ = ledger.list_accounts(session, limit=1)
    finally:
        db.dispose()
    if accounts:
        raise ValueError("the day needs an empty database: its model starts from nothing")


class _Day:
    def __init__(
        self, scene: Scene, report: DayReport, options: DayOptions, say: Callable[[str], None]
    ) -> None:
        self.scene = scene
        self.report = report
        self.options = options
        self.say = say
        self.plan = FaultPlan(scene.rng)
        report.checks = scene.checks
        self.next_beat = local(OPENS)
        self.beats = 0

    def run(self) -> None:
        rng, span = self.scene.rng, (local(CLOSES) - local(OPENS)).total_seconds()
        times = sorted(
            local(OPENS) + timedelta(seconds=rng.uniform(0, span))
            for _ in range(self.options.events)
        )
        kinds, weights = list(EVENTS), [weight for weight, _ in EVENTS.values()]
        for step, when in enumerate(times, 1):
            kind = rng.choices(kinds, weights)[0]
            if not self._step(step, when, kind):
                return
        self._close(len(times) + 1)

    def _step(self, step: int, when: datetime, kind: str) -> bool:
        scene, report = self.scene, self.report
        faults = self.plan.draw(kind)
        scene.network.faults = faults
        scene.clock.set(when)
        line = f"{step:04d} {when.astimezone(ZONE):%H:%M:%S} {kind}"
        try:
            if faults.crash_first:
                scene.hub.crash()
                faults.note(CRASH)
            outcome = EVENTS[kind][1](scene)
            report.outcomes[f"{kind}:{outcome.word}"] += 1
            line = f"{line} {outcome.word} {outcome.detail}"
            after = self._workers()
            if self.options.plant_mismatch_at == step:
                scene.books.transfer(TREASURY, scene.district.cards[0].key, 1)
            self._check()
        except Exception as exc:
            return self._fail(step, _with_faults(line, faults), exc)
        self._log(_with_faults(line, faults) + "".join(f" | {note}" for note in after), faults)
        return True

    def _close(self, step: int) -> None:
        """After the last event: the outbox catches up, every loan's callback has gone out."""
        scene = self.scene
        scene.network.faults = StepFaults()
        scene.clock.set(local(CLOSES))
        line = f"{step:04d} {local(CLOSES).astimezone(ZONE):%H:%M:%S} closing"
        try:
            notes: list[str] = []
            for _ in range(CLOSING_ROUNDS):
                notes += self._workers()
                scene.clock.advance(600)
            self._check()
            stuck = [c.bill_no for c in scene.in_flight()]
            scene.expect(not stuck, f"checkouts still in flight at closing: {stuck}")
            self._callbacks_heard()
        except Exception as exc:
            self._fail(step, line, exc)
            return
        self._log(line + "".join(f" | {note}" for note in notes), scene.network.faults)
        self._balances()

    def _log(self, line: str, faults: StepFaults) -> None:
        self.report.log.append(line)
        self.report.faults.update(faults.kinds)
        self.say(line)

    def _fail(self, step: int, line: str, exc: Exception) -> bool:
        problem = str(exc) if isinstance(exc, Mismatch) else f"{type(exc).__name__}: {exc}"
        trace = "" if isinstance(exc, Mismatch) else "".join(traceback.format_exception(exc)[-6:])
        self.report.failure = Failure(step, line, problem, trace)
        self._balances()
        return False

    # --- the workers, stepped by hand ---

    def _workers(self) -> list[str]:
        scene, counts = self.scene, self.report.workers
        now = scene.clock()
        expired = scene.hub.db.transaction(lambda s: ledger.expire_holds(s, now))
        modelled = scene.books.expire(now)
        scene.expect(
            expired == modelled, f"the ledger expired {expired} holds, the model {modelled}"
        )
        counts["holds expired"] += expired
        faults = scene.network.faults
        delivered = scene.hub.run_outbox(faults.outbox_kill)
        if delivered is None:
            faults.note(KILLED, f"{KILLED}@outbox-commit{faults.outbox_kill}")
        faults.outbox_kill = 0
        counts["outbox deliveries"] += delivered or 0
        counts["outbox runs"] += 1
        seen = flows.follow_in_flight(scene)
        if now >= self.next_beat:
            self._heartbeats()
        return seen

    def _heartbeats(self) -> None:
        scene = self.scene
        self.beats += 1
        for unit in scene.district.units:
            for terminal in (unit.combo, unit.scanner, unit.reader):
                beat = {
                    "sequence": self.beats,
                    "firmware_version": "1.0.0",
                    "heartbeat_interval_seconds": HEARTBEAT_SECONDS,
                    "institution_code": unit.code,
                }
                terminal.post(HEARTBEAT_PATH, beat)
                self.report.workers["heartbeats"] += 1
        scene.hub.app.state.gateway.sweep()
        self.report.workers["presence sweeps"] += 1
        self.next_beat = scene.clock() + timedelta(seconds=HEARTBEAT_SECONDS)

    # --- the checks ---

    def _check(self) -> None:
        scene = self.scene
        with scene.hub.db.session() as session:
            actual = _ledger_books(session)
            problems = ledger.check_invariants(session)
        problems += scene.books.differences(actual)
        self.report.accounts = len(actual)
        scene.checks["ledger comparisons"] += 1
        scene.checks["invariant checks"] += 1
        if problems:
            raise Mismatch("\n".join(problems))

    def _callbacks_heard(self) -> None:
        scene = self.scene
        heard = {
            kind: scene.outside.inbox.of_type(f"disbursement.{kind}")
            for kind in ("credited", "undone")
        }
        for loan in scene.loans:
            scene.expect(
                loan.external_id in heard["credited"],
                f"no credited callback for {loan.external_id}",
            )
            if loan.undone:
                scene.expect(
                    loan.external_id in heard["undone"],
                    f"no undone callback for {loan.external_id}",
                )
        self.report.workers["loan callbacks"] = sum(len(events) for events in heard.values())

    def _balances(self) -> None:
        books = self.scene.books
        kinds = (
            "card",
            "unit_settlement",
            "loan_funding",
            "insurance_fund_clearing",
            "personal_account_clearing",
            "treasury",
        )
        self.report.balances = books.totals(kinds)


def _with_faults(line: str, faults: StepFaults) -> str:
    return f"{line} [{', '.join(faults.fired)}]" if faults.fired else line


def _ledger_books(session: Session) -> dict[tuple[str, str], Counters]:
    found: dict[tuple[str, str], Counters] = {}
    cursor: int | None = 0
    while cursor is not None:
        accounts, cursor = ledger.list_accounts(session, cursor=cursor, limit=500)
        for a in accounts:
            found[(a.kind, a.owner_ref)] = Counters(
                a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending
            )
    return found
