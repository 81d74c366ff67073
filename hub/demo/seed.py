"""Demo data for the quick start: funding accounts and a few registered, funded cards."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import SecretStr
from sqlalchemy.orm import Session

from hub.issuer import service as issuer
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn

TREASURY = AccountIn(kind="treasury", owner_ref="bank")
LOAN_FUNDING = AccountIn(
    kind="loan_funding", owner_ref="programme", debits_must_not_exceed_credits=True
)
FUNDING_FEN = 1_000_000_000  # 10 million CNY for the loan programme
# Demo cardholders only: card number, chip code, name, ID number, PAN, opening balance in fen.
DEMO_CARDS = [
    ("K10000001", "3301000000001A", "张伟", "330102199001011234", "6231700000000003", 50_000),
    ("K10000002", "3301000000002B", "王芳", "330102198505052345", "6231700000000011", 120_000),
    ("K10000003", "3301000000003C", "李娜", "33010219700707345X", "6231700000000029", 8_800),
]


def seed(session: Session, keys: issuer.CardDataKeys, now: datetime) -> dict[str, int]:
    """Idempotent: a second run finds everything in place and moves no money."""
    treasury = ledger.ensure_account(session, TREASURY, now)
    funding = ledger.ensure_account(session, LOAN_FUNDING, now)
    opening = [_opening("demo:fund:loan_funding", treasury.id, funding.id, FUNDING_FEN, "funding")]
    ids = {"treasury": treasury.id, "loan_funding": funding.id}
    for number, chip, name, id_number, pan, balance in DEMO_CARDS:
        card = issuer.find_card(session, number) or issuer.register_card(
            session,
            CardIn(
                card_number=number,
                card_id_code=chip,
                holder_name=name,
                id_number=SecretStr(id_number),
                pan=SecretStr(pan),
                expiry=date(2035, 12, 31),
            ),
            keys,
            now,
        )
        ids[f"card {number}"] = card.account_id
        opening.append(
            _opening(f"demo:deposit:{number}", treasury.id, card.account_id, balance, "deposit")
        )
    ledger.create_transfers(session, opening, now)
    return ids


def _opening(transfer_id: str, debit: int, credit: int, amount: int, code: str) -> TransferIn:
    return TransferIn(
        id=transfer_id, debit_account_id=debit, credit_account_id=credit, amount=amount, code=code
    )
