"""Phase 2 of a disbursement: post accepted orders and record the outcome, several at a time.

Every disbursement debits the one loan funding account and counts against the one row of the
day's totals, so their locks are held by one transaction at a time. Taking them once per batch
instead of once per order, with one ledger batch and one commit, is what lets the programme
post hundreds of orders a second (the same idea as TigerBeetle's batches). A batch of one is
the plain case; `PostingQueue` gathers the orders that arrive while a batch is being posted.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from hub.db import Database
from hub.disbursements import repository as repo
from hub.disbursements import service
from hub.disbursements.errors import DisbursementNotFound
from hub.disbursements.models import Disbursement, DisbursementStatus
from hub.errors import HubError
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn

OVER_DAILY_LIMIT = ("daily_limit_exceeded", "over the programme's limit for today")
NOT_COVERED = ("funding_insufficient", "the loan funding account does not cover this loan")
# A ledger refusal met although the checks passed (a concurrent change): what to record.
LEDGER_REFUSALS = {
    "exceeds_credits": NOT_COVERED,
    "debit_account_frozen": ("funding_unavailable", "the loan funding account is frozen"),
    "debit_account_closed": ("funding_unavailable", "the loan funding account is closed"),
    "credit_account_closed": ("card_account_not_active", "the card account is closed"),
}


def settle(
    session: Session, external_ids: Sequence[str], rules: service.Rules, now: datetime
) -> list[Disbursement]:
    """Post accepted orders in one transaction; one result per external id, in order.

    An order that another request settled already (a retry that took it over) is returned as
    it stands; each of the others ends credited or rejected, with its callback queued.
    """
    rows = repo.lock_by_external_ids(session, external_ids)
    if any(x not in rows for x in external_ids):
        raise DisbursementNotFound(message="accept the order first")
    open_rows = [
        rows[x]
        for x in dict.fromkeys(external_ids)
        if rows[x].status == DisbursementStatus.PROCESSING
    ]
    refusals = _post(session, open_rows, rules, now) if open_rows else {}
    for d in open_rows:
        service.record_outcome(d, refusals[d.external_id], rules, now)
    session.flush()
    service.queue_callbacks(session, [(d, d.status) for d in open_rows], now)
    return [rows[x] for x in external_ids]


def _post(
    session: Session, accepted: list[Disbursement], rules: service.Rules, now: datetime
) -> dict[str, service.Refusal | None]:
    """Count each order against the day's limits and the funding account's cover, in order,
    then post the ones that fit as one ledger batch.

    The day's row is locked first and every disbursement takes it, so the funding balance read
    under it stays put for the batch; the ledger still refuses anything that would overdraw.
    """
    day = rules.business_day(now)
    totals = repo.lock_daily_total(session, day)
    funding = service.funding_account(session)  # read under the day's lock: current
    cover = ledger.balance(funding).available
    refusals: dict[str, service.Refusal | None] = {}
    fitting: list[Disbursement] = []
    for d in accepted:
        if totals.count + 1 > rules.daily_count or totals.amount + d.amount > rules.daily_amount:
            refusals[d.external_id] = OVER_DAILY_LIMIT
        elif d.amount > cover:
            refusals[d.external_id] = NOT_COVERED
        else:
            fitting.append(d)
            totals.count += 1
            totals.amount += d.amount
            cover -= d.amount
    transfers = [_transfer(d, funding.id) for d in fitting]
    for d, result in zip(fitting, ledger.create_transfers(session, transfers, now), strict=True):
        if result.ok:
            d.transfer_id = result.id
            refusals[d.external_id] = None
            continue
        if result.result not in LEDGER_REFUSALS:
            raise HubError(result.result, "the ledger refused the transfer", 409)
        refusals[d.external_id] = LEDGER_REFUSALS[result.result]
        totals.count -= 1
        totals.amount -= d.amount
    return refusals


def _transfer(d: Disbursement, funding_id: int) -> TransferIn:
    assert d.card_account_id is not None
    return TransferIn(
        id=f"disb:{d.external_id}",  # derived from the order: a retry can never post twice
        debit_account_id=funding_id,
        credit_account_id=d.card_account_id,
        amount=d.amount,
        code="loan_disbursement",
        reference=service.reference(d),
    )


@dataclass
class _Waiting:
    external_id: str
    now: datetime
    result: Future[Disbursement] = field(default_factory=Future)


class PostingQueue:
    """Gathers accepted orders from request threads and settles them in batches.

    One posting thread per process runs a batch while the next one gathers; it stops after a
    few idle seconds and starts again on demand. If a batch fails as a whole, each of its
    orders is settled alone, so an error reaches only the request it belongs to.
    """

    def __init__(
        self, db: Database, rules: service.Rules, *, max_batch: int = 64, idle_seconds: float = 5
    ) -> None:
        self.db = db
        self.rules = rules
        self.max_batch = max_batch
        self.idle_seconds = idle_seconds
        self._waiting: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def settle(self, external_id: str, now: datetime) -> Disbursement:
        """Post one accepted order; returns once its batch has committed."""
        waiting = _Waiting(external_id, now)
        self._waiting.put(waiting)
        self._ensure_running()
        return waiting.result.result()

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="disbursement-posting", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._waiting.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._waiting.empty():  # a put after this check starts a new thread
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch and not self._waiting.empty():
                batch.append(self._waiting.get_nowait())
            self._post(batch)

    def _post(self, batch: list[_Waiting]) -> None:
        now = max(w.now for w in batch)
        external_ids = [w.external_id for w in batch]
        try:
            settled = self.db.transaction(lambda s: settle(s, external_ids, self.rules, now))
        except Exception as exc:
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
                return
            for waiting in batch:  # find whose order it was
                self._post([waiting])
            return
        for waiting, d in zip(batch, settled, strict=True):
            waiting.result.set_result(d)
