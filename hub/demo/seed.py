"""Demo data for the quick start: funding accounts and a few funded card accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn

TREASURY = AccountIn(kind="treasury", owner_ref="bank")
LOAN_FUNDING = AccountIn(
    kind="loan_funding", owner_ref="programme", debits_must_not_exceed_credits=True
)
DEMO_CARDS = {"K10000001": 50_000, "K10000002": 120_000, "K10000003": 8_800}  # fen


def card_account(card_ref: str) -> AccountIn:
    return AccountIn(kind="card", owner_ref=card_ref, debits_must_not_exceed_credits=True)


def seed(session: Session, now: datetime) -> dict[str, int]:
    """Idempotent: a second run finds everything in place and moves no money."""
    treasury = ledger.ensure_account(session, TREASURY, now)
    funding = ledger.ensure_account(session, LOAN_FUNDING, now)
    opening = [
        TransferIn(
            id="demo:fund:loan_funding",
            debit_account_id=treasury.id,
            credit_account_id=funding.id,
            amount=1_000_000_000,
            code="funding",
        )
    ]
    ids = {"treasury": treasury.id, "loan_funding": funding.id}
    for card_ref, amount in DEMO_CARDS.items():
        card = ledger.ensure_account(session, card_account(card_ref), now)
        ids[f"card:{card_ref}"] = card.id
        opening.append(
            TransferIn(
                id=f"demo:deposit:{card_ref}",
                debit_account_id=treasury.id,
                credit_account_id=card.id,
                amount=amount,
                code="deposit",
            )
        )
    ledger.create_transfers(session, opening, now)
    return ids
