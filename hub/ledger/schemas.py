"""What crosses the ledger's API: accounts, transfers, per-transfer results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

# Amounts are strict integers in fen: a float or a string is refused at the edge. Range is
# checked by the service so that zero, negative and >64-bit amounts get their own codes.
Fen = StrictInt
TransferId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._\-]+$")]
AccountId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
AccountKind = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: AccountKind
    owner_ref: Annotated[str, Field(min_length=1, max_length=64)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    debits_must_not_exceed_credits: StrictBool = False
    credits_must_not_exceed_debits: StrictBool = False


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    owner_ref: str
    currency: str
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    status: str
    created_at: datetime


class AccountsPage(BaseModel):
    items: list[AccountOut]
    next_cursor: int | None


class BalanceOut(BaseModel):
    account_id: int
    currency: str
    posted: int = Field(description="credits_posted - debits_posted, in fen")
    available: int = Field(description="posted less debit holds, in fen")
    debits_pending: int
    credits_pending: int


class TransferIn(BaseModel):
    """One transfer; `id` is the caller's idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: TransferId
    debit_account_id: AccountId | None = None
    credit_account_id: AccountId | None = None
    amount: Fen | None = None
    pending_id: TransferId | None = None
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")]
    reference: Annotated[str, Field(max_length=128)] | None = None
    pending: StrictBool = False
    post_pending: StrictBool = False
    void_pending: StrictBool = False
    linked: StrictBool = False
    timeout: Annotated[StrictInt, Field(ge=0, le=90 * 24 * 3600)] = 0
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"


class TransferResult(BaseModel):
    index: int
    id: str
    result: str

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "exists")


class TransferOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    id: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    pending_id: str | None
    code: str
    reference: str | None
    flags: int
    timeout: int
    currency: str
    created_at: datetime


class TransfersPage(BaseModel):
    items: list[TransferOut]
    next_cursor: int | None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transfers: Annotated[list[TransferIn], Field(min_length=1, max_length=8190)]
