"""Money the console pages show, seeded as the domains make it (HTTP and browser tests)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import SecretStr
from sqlalchemy.orm import Session

from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from hub.payments import service as payments
from hub.payments.models import Channel

PAN = "6231701234567510"  # a test card: it must never appear on a page


def paid_card(
    s: Session, keys: CardDataKeys, caller: payments.Caller, now: datetime, tag: str
) -> int:
    """Zhang Wei's card with 500.00 CNY and one captured card payment of 123.45 CNY by `caller`;
    returns the payment's id. `tag` prefixes the transfer ids."""
    card = issuer.register_card(
        s,
        CardIn(
            card_number="K10000001",
            card_id_code="CID000001",
            holder_name="Zhang Wei",
            id_number=SecretStr("370102198001011234"),
            pan=SecretStr(PAN),
            expiry=date(2030, 12, 31),
        ),
        keys,
        now,
    )
    treasury = ledger.ensure_account(s, AccountIn(kind="treasury", owner_ref="bank"), now)
    deposit = TransferIn(
        id=f"{tag}:deposit",
        debit_account_id=treasury.id,
        credit_account_id=card.account_id,
        amount=500_00,
        code="deposit",
    )
    ledger.transfer(s, deposit, now)
    paid = payments.pay_card(
        s,
        payments.HoldRequest(
            idempotency_key=f"{tag}:pay:1",
            channel=Channel.CARD_TAP,
            card_id=card.id,
            card_account_id=card.account_id,
            amount=123_45,
            caller=caller,
            timeout_seconds=300,
            transaction_id="T0001",
            pan_masked=card.pan_masked,
        ),
        now,
    )
    return paid.id
