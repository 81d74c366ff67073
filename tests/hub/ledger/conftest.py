"""A small chart of accounts for ledger tests: the bank, a unit and two cards."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hub.db import Database
from hub.ledger import service
from hub.ledger.schemas import AccountIn, TransferIn


@dataclass
class Books:
    db: Database
    clock: object
    ids: dict[str, int]

    def post(self, *transfers: TransferIn) -> list[str]:
        results = self.db.transaction(
            lambda s: service.create_transfers(s, list(transfers), self.clock())
        )
        return [r.result for r in results]

    def t(
        self,
        id: str,
        debit: str | None = None,
        credit: str | None = None,
        amount: int | None = None,
        **kw,
    ) -> TransferIn:
        return TransferIn(
            id=id,
            debit_account_id=self.ids[debit] if debit else None,
            credit_account_id=self.ids[credit] if credit else None,
            amount=amount,
            code=kw.pop("code", "card_payment"),
            **kw,
        )

    def table(self) -> dict[str, tuple[int, int, int, int]]:
        """name -> (debits_posted, credits_posted, debits_pending, credits_pending)"""
        with self.db.session() as s:
            out = {}
            for name, account_id in self.ids.items():
                a = service.get_account(s, account_id)
                out[name] = (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
            return out

    def check(self) -> list[str]:
        with self.db.session() as s:
            return service.check_invariants(s)


@pytest.fixture
def books(db, clock) -> Books:
    specs = {
        "bank": AccountIn(kind="treasury", owner_ref="bank"),
        "unit": AccountIn(kind="unit_settlement", owner_ref="H33010001"),
        "card": AccountIn(kind="card", owner_ref="K1", debits_must_not_exceed_credits=True),
        "card2": AccountIn(kind="card", owner_ref="K2", debits_must_not_exceed_credits=True),
    }
    ids = db.transaction(
        lambda s: {n: service.create_account(s, spec, clock()).id for n, spec in specs.items()}
    )
    b = Books(db, clock, ids)
    assert b.post(b.t("open:card", "bank", "card", 10_000, code="deposit")) == ["ok"]
    return b
