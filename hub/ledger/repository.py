"""Every query of the ledger. Hot paths use Core statements on the mapped tables."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    any_,
    bindparam,
    func,
    insert,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from hub.ledger.models import Account, FailedTransfer, Hold, HoldState, Transfer, TransferFlag

accounts = Account.__table__
transfers = Transfer.__table__
holds = Hold.__table__
failed = FailedTransfer.__table__

COUNTERS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


def add_account(session: Session, account: Account) -> Account:
    session.add(account)
    session.flush()
    return account


def get_account(session: Session, account_id: int) -> Account | None:
    return session.get(Account, account_id)


def list_accounts(
    session: Session, kind: str | None, after_id: int, limit: int
) -> Sequence[Account]:
    stmt = select(Account).where(Account.id > after_id).order_by(Account.id).limit(limit)
    if kind:
        stmt = stmt.where(Account.kind == kind)
    return session.scalars(stmt).all()


def find_account(session: Session, kind: str, owner_ref: str) -> Account | None:
    stmt = select(Account).where(Account.kind == kind, Account.owner_ref == owner_ref)
    return session.scalars(stmt).one_or_none()


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _among(
    session: Session, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one cached statement for any count."""
    if _postgres(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


# The accounts a batch names and those of the pending transfers it resolves, locked in one
# statement. `id = ANY(ARRAY(...))` keeps the index scan; ORDER BY puts the row locks in id order.
PG_LOCK_ACCOUNTS = text(
    """
    SELECT * FROM ledger_accounts
    WHERE id = ANY(ARRAY(
        SELECT unnest(CAST(:ids AS bigint[]))
        UNION
        SELECT unnest(ARRAY[t.debit_account_id, t.credit_account_id])
        FROM ledger_transfers AS t WHERE t.id = ANY(CAST(:pending AS text[]))
    ))
    ORDER BY id
    FOR NO KEY UPDATE
    """
)


def lock_accounts(
    session: Session, ids: Collection[int], pending_ids: Collection[str] = ()
) -> Sequence[Row[Any]]:
    """Lock in id order, always: two batches touching the same accounts cannot deadlock.

    Also locks the accounts of the pending transfers named (immutable rows, so reading them in
    the locking statement is the same as reading them first).
    FOR NO KEY UPDATE (key_share): rows of other domains that reference an account take a KEY
    SHARE lock on it through their foreign key; a plain FOR UPDATE would wait on those and
    deadlock two payments at one unit.
    """
    if not ids and not pending_ids:
        return []
    if _postgres(session):
        params = {"ids": sorted(ids), "pending": list(pending_ids)}
        return session.execute(PG_LOCK_ACCOUNTS, params).all()
    pendings = _transfer_rows(session, pending_ids)  # SQLite: in process, a query is cheap
    ids = set(ids) | {a for p in pendings for a in (p.debit_account_id, p.credit_account_id)}
    stmt = (
        select(accounts)
        .where(_among(session, accounts.c.id, sorted(ids)))
        .order_by(accounts.c.id)
        .with_for_update(key_share=True)
    )
    return session.execute(stmt).all()


def _transfer_rows(session: Session, ids: Collection[str]) -> Sequence[Row[Any]]:
    if not ids:
        return []
    return session.execute(select(transfers).where(_among(session, transfers.c.id, ids))).all()


@dataclass
class Stored:
    """What the database holds about a batch's transfer ids, read under the account locks."""

    transfers: dict[str, Row[Any]] = field(default_factory=dict)
    holds: dict[str, SimpleNamespace] = field(default_factory=dict)  # by pending transfer id
    failed: dict[str, str] = field(default_factory=dict)  # refused ids and their result code


def stored(session: Session, ids: Collection[str], pending_ids: Collection[str]) -> Stored:
    """In one statement: the stored transfers among `ids | pending_ids` with their hold state,
    and the ids of `ids` refused before (a stored transfer is never also a refused one)."""
    found = Stored()
    if not ids and not pending_ids:
        return found
    columns = [transfers.c[name] for name in TRANSFER_COLUMNS]
    known = (
        select(
            *columns,
            holds.c.state.label("hold_state"),
            holds.c.expires_at.label("hold_expires_at"),
            null().label("failed_result"),
        )
        .select_from(transfers.outerjoin(holds, holds.c.transfer_id == transfers.c.id))
        .where(_among(session, transfers.c.id, set(ids) | set(pending_ids)))
    )
    stmt: Any = known
    if ids:
        padding = (null() for _ in range(len(columns) + 1))
        refused = select(failed.c.id, *padding, failed.c.result)
        stmt = union_all(known, refused.where(_among(session, failed.c.id, ids)))
    for row in session.execute(stmt):
        if row.failed_result is not None:
            found.failed[row.id] = row.failed_result
            continue
        found.transfers[row.id] = row
        if row.hold_state is not None:
            found.holds[row.id] = SimpleNamespace(
                transfer_id=row.id, state=row.hold_state, expires_at=row.hold_expires_at
            )
    return found


# A whole batch's writes in one statement, with array parameters (unnest): a fixed text that the
# server and SQLAlchemy cache. Data-modifying CTEs run as one command, and the foreign keys (a
# hold to its transfer) are checked at its end, when every row is there. SQLite runs
# in-process, where a plain statement per table is already cheap.
PG_WRITE_BATCH = text(
    """
    WITH new_transfers AS (
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount,
                                      pending_id, code, reference, flags, timeout, currency,
                                      created_at)
        SELECT t.*, CAST(:now AS timestamptz) FROM unnest(
            CAST(:id AS text[]), CAST(:debit_account_id AS bigint[]),
            CAST(:credit_account_id AS bigint[]), CAST(:amount AS bigint[]),
            CAST(:pending_id AS text[]), CAST(:code AS text[]), CAST(:reference AS text[]),
            CAST(:flags AS int[]), CAST(:timeout AS int[]), CAST(:currency AS text[])
        ) AS t
    ), new_holds AS (
        INSERT INTO ledger_holds (transfer_id, state, expires_at, resolved_at)
        SELECT * FROM unnest(CAST(:h_id AS text[]), CAST(:h_state AS text[]),
                             CAST(:h_expires AS timestamptz[]), CAST(:h_resolved AS timestamptz[]))
    ), resolved AS (
        UPDATE ledger_holds AS h SET state = r.state, resolved_at = r.at
        FROM unnest(CAST(:r_id AS text[]), CAST(:r_state AS text[]),
                    CAST(:r_at AS timestamptz[])) AS r(id, state, at)
        WHERE h.transfer_id = r.id
    ), refused AS (
        INSERT INTO ledger_failed_transfers (id, result, created_at)
        SELECT f.*, CAST(:now AS timestamptz)
        FROM unnest(CAST(:f_id AS text[]), CAST(:f_result AS text[])) AS f
    )
    UPDATE ledger_accounts AS a
    SET debits_posted = v.dp, credits_posted = v.cp, debits_pending = v.dpe, credits_pending = v.cpe
    FROM unnest(CAST(:ids AS bigint[]), CAST(:dp AS bigint[]), CAST(:cp AS bigint[]),
                CAST(:dpe AS bigint[]), CAST(:cpe AS bigint[])) AS v(id, dp, cp, dpe, cpe)
    WHERE a.id = v.id
    """
)
TRANSFER_COLUMNS = (
    "id",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "pending_id",
    "code",
    "reference",
    "flags",
    "timeout",
    "currency",
)


def write_batch(
    session: Session,
    now: datetime,
    new_transfers: list[dict[str, Any]],
    new_holds: list[dict[str, Any]],
    resolved: list[dict[str, Any]],
    counters: list[tuple[int, int, int, int, int]],
    refused: dict[str, str],
) -> None:
    """Everything a batch writes: new transfers (in order) and holds, resolved holds, the
    accounts' counters (id, debits_posted, credits_posted, debits_pending, credits_pending) and
    refused ids with their result. One statement on PostgreSQL."""
    if not _postgres(session):
        _insert(session, transfers, new_transfers)
        _insert(session, holds, new_holds)
        _resolve_holds(session, resolved)
        _write_counters(session, counters)
        failed_rows = [{"id": i, "result": r, "created_at": now} for i, r in refused.items()]
        _insert(session, failed, failed_rows)
        return
    if not (new_transfers or new_holds or resolved or counters or refused):
        return
    ids, dp, cp, dpe, cpe = [list(c) for c in zip(*counters, strict=True)] or [[]] * 5
    params: dict[str, Any] = {
        name: [row[name] for row in new_transfers] for name in TRANSFER_COLUMNS
    } | {
        "now": now,
        "h_id": [h["transfer_id"] for h in new_holds],
        "h_state": [h["state"] for h in new_holds],
        "h_expires": [h["expires_at"] for h in new_holds],
        "h_resolved": [h["resolved_at"] for h in new_holds],
        "r_id": [r["b_id"] for r in resolved],
        "r_state": [r["b_state"] for r in resolved],
        "r_at": [r["b_at"] for r in resolved],
        "f_id": list(refused),
        "f_result": list(refused.values()),
        "ids": ids,
        "dp": dp,
        "cp": cp,
        "dpe": dpe,
        "cpe": cpe,
    }
    session.execute(PG_WRITE_BATCH, params)


def _insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:  # in order: rows of one batch share created_at, seq follows the list
        session.execute(insert(table), rows)


def _resolve_holds(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        stmt = (
            update(holds)
            .where(holds.c.transfer_id == bindparam("b_id"))
            .values(state=bindparam("b_state"), resolved_at=bindparam("b_at"))
        )
        session.execute(stmt, rows)


def _write_counters(session: Session, rows: list[tuple[int, int, int, int, int]]) -> None:
    if not rows:
        return
    stmt = (
        update(accounts)
        .where(accounts.c.id == bindparam("b_id"))
        .values({name: bindparam(f"b_{name}") for name in COUNTERS})
    )
    session.execute(
        stmt, [dict(zip(("b_id", *(f"b_{n}" for n in COUNTERS)), row, strict=True)) for row in rows]
    )


def forget_cached_accounts(session: Session, ids: Collection[int]) -> None:
    """Counters are written by set-based statements behind the ORM's back: an Account the
    session has loaded must be read again, or the same transaction would see old balances."""
    for account_id in ids:
        cached = session.identity_map.get(identity_key(Account, account_id))
        if cached is not None:
            session.expire(cached)


def due_holds(session: Session, now: datetime, limit: int) -> Sequence[Row[Any]]:
    stmt = (
        select(holds.c.transfer_id, transfers.c.debit_account_id, transfers.c.credit_account_id)
        .join(transfers, transfers.c.id == holds.c.transfer_id)
        .where(holds.c.state == HoldState.PENDING.value, holds.c.expires_at <= now)
        .order_by(holds.c.expires_at)
        .limit(limit)
    )
    return session.execute(stmt).all()


def account_transfers(
    session: Session, account_id: int, after_seq: int, limit: int
) -> Sequence[Transfer]:
    stmt = (
        select(Transfer)
        .where(
            (Transfer.debit_account_id == account_id) | (Transfer.credit_account_id == account_id)
        )
        .where(Transfer.seq > after_seq)
        .order_by(Transfer.seq)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def get_transfer(session: Session, transfer_id: str) -> Transfer | None:
    return session.scalars(select(Transfer).where(Transfer.id == transfer_id)).one_or_none()


def transfers_by_reference(session: Session, reference: str) -> Sequence[Transfer]:
    stmt = select(Transfer).where(Transfer.reference == reference).order_by(Transfer.seq)
    return session.scalars(stmt).all()


# Invariant queries for `sshub ledger check`.


def counter_totals(session: Session) -> Row[Any]:
    return session.execute(
        select(*(func.coalesce(func.sum(accounts.c[n]), 0) for n in COUNTERS))
    ).one()


def all_accounts(session: Session) -> Sequence[Row[Any]]:
    return session.execute(select(accounts).order_by(accounts.c.id)).all()


def sums_from_transfers(session: Session) -> dict[int, dict[str, int]]:
    """Each account's four counters recomputed from the transfers alone."""
    sums: dict[int, dict[str, int]] = {}

    def add(account_id: int, name: str, amount: int) -> None:
        sums.setdefault(account_id, dict.fromkeys(COUNTERS, 0))[name] += amount

    posted = (
        select(
            transfers.c.debit_account_id,
            transfers.c.credit_account_id,
            func.sum(transfers.c.amount),
        )
        .where(
            transfers.c.flags.op("&")(int(TransferFlag.PENDING | TransferFlag.VOID_PENDING)) == 0
        )
        .group_by(transfers.c.debit_account_id, transfers.c.credit_account_id)
    )
    for debit, credit, total in session.execute(posted):
        add(debit, "debits_posted", int(total))
        add(credit, "credits_posted", int(total))
    pending = (
        select(
            transfers.c.debit_account_id,
            transfers.c.credit_account_id,
            func.sum(transfers.c.amount),
        )
        .join(holds, holds.c.transfer_id == transfers.c.id)
        .where(holds.c.state == HoldState.PENDING.value)
        .group_by(transfers.c.debit_account_id, transfers.c.credit_account_id)
    )
    for debit, credit, total in session.execute(pending):
        add(debit, "debits_pending", int(total))
        add(credit, "credits_pending", int(total))
    return sums


def orphan_holds(session: Session) -> int:
    """Pending transfers without a hold row, or holds resolved without a resolving transfer."""
    missing = (
        select(func.count())
        .select_from(transfers)
        .outerjoin(holds, holds.c.transfer_id == transfers.c.id)
        .where(
            transfers.c.flags.op("&")(int(TransferFlag.PENDING)) != 0, holds.c.transfer_id.is_(None)
        )
    )
    return int(session.execute(missing).scalar_one())
