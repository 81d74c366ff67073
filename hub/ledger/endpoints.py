"""Ledger REST API for bank operations: accounts, transfers, balances, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from hub.auth import require_ops
from hub.db import Db, Now
from hub.ledger import service
from hub.ledger.errors import LedgerError
from hub.ledger.schemas import (
    AccountIn,
    AccountOut,
    AccountsPage,
    BalanceOut,
    BatchIn,
    TransferIn,
    TransferOut,
    TransferResult,
    TransfersPage,
)

# Ids and cursors are 64-bit in the database: a larger number is a 422, not a driver overflow.
MAX_ID = 2**63 - 1
AccountPathId = Annotated[int, Path(ge=1, le=MAX_ID)]
Cursor = Annotated[int, Query(ge=0, le=MAX_ID)]

router = APIRouter(prefix="/api/ledger", tags=["ledger"], dependencies=[Depends(require_ops)])


@router.post("/accounts", status_code=status.HTTP_201_CREATED)
def create_account(spec: AccountIn, db: Db, now: Now) -> AccountOut:
    return db.transaction(lambda s: AccountOut.model_validate(service.create_account(s, spec, now)))


@router.get("/accounts")
def list_accounts(
    db: Db,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccountsPage:
    with db.session() as s:
        items, next_cursor = service.list_accounts(s, kind, cursor, limit)
        return AccountsPage(
            items=[AccountOut.model_validate(a) for a in items], next_cursor=next_cursor
        )


@router.get("/accounts/{account_id}")
def get_account(account_id: AccountPathId, db: Db) -> AccountOut:
    with db.session() as s:
        return AccountOut.model_validate(service.get_account(s, account_id))


@router.get("/accounts/{account_id}/balance")
def get_balance(account_id: AccountPathId, db: Db) -> BalanceOut:
    with db.session() as s:
        return service.balance(service.get_account(s, account_id))


@router.get("/accounts/{account_id}/transfers")
def account_transfers(
    account_id: AccountPathId,
    db: Db,
    cursor: Cursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TransfersPage:
    with db.session() as s:
        items, next_cursor = service.account_transfers(s, account_id, cursor, limit)
        return TransfersPage(
            items=[TransferOut.model_validate(t) for t in items], next_cursor=next_cursor
        )


@router.post("/transfers/batch")
def create_transfers(batch: BatchIn, db: Db, now: Now) -> list[TransferResult]:
    """Per-transfer results in order ("ok", "exists" or a refusal code), like TigerBeetle."""
    return db.transaction(lambda s: service.create_transfers(s, batch.transfers, now))


@router.post("/transfers", status_code=status.HTTP_201_CREATED)
def create_transfer(spec: TransferIn, db: Db, now: Now, response: Response) -> TransferOut:
    # The batch call commits a state-dependent refusal too, so the id stays failed.
    (result,) = db.transaction(lambda s: service.create_transfers(s, [spec], now))
    if not result.ok:
        raise LedgerError(result.result)
    if result.result == "exists":
        response.status_code = status.HTTP_200_OK
    with db.session() as s:
        return TransferOut.model_validate(service.get_transfer(s, spec.id))


@router.get("/transfers/{transfer_id}")
def get_transfer(transfer_id: str, db: Db) -> TransferOut:
    with db.session() as s:
        return TransferOut.model_validate(service.get_transfer(s, transfer_id))
