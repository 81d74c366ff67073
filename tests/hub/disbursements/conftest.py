"""A loan programme ready to disburse: funding, registered cards, a loan client and its API."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import date

import pytest
from pydantic import SecretStr

from hub.disbursements import clients, service
from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn
from integrations.loans.client import ClientKey, DisbursementApi, id_number_check

TREASURY, FUNDING = service.TREASURY_ACCOUNT, service.FUNDING_ACCOUNT
# card number, chip code, holder, ID number, PAN
CARDS = {
    "K10000001": ("3301000000001A", "张伟", "330102199001011234", "6231700000000003"),
    "K10000002": ("3301000000002B", "王芳", "330102198505052345", "6231700000000011"),
    "K10000003": ("3301000000003C", "李娜", "33010219700707345X", "6231700000000029"),
}
NO_CALLBACKS = "http://127.0.0.1:9/callbacks"  # nothing listens on the discard port


@dataclass
class Programme:
    treasury: int
    funding: int
    cards: dict[str, int]  # card number -> card account id


@pytest.fixture
def rules(settings):
    return service.Rules.from_settings(settings)


@pytest.fixture
def card_keys(settings):
    return CardDataKeys.from_settings(settings)


def fund(db, clock, programme, amount, transfer_id="fund:1"):
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id=transfer_id,
                debit_account_id=programme.treasury,
                credit_account_id=programme.funding,
                amount=amount,
                code="funding",
            ),
            clock(),
        )
    )


@pytest.fixture
def programme(db, clock, card_keys):
    """The funding account with 1,000,000 CNY and three registered cards with empty accounts."""

    def setup(s):
        treasury = ledger.create_account(s, TREASURY, clock())
        funding = ledger.create_account(s, FUNDING, clock())
        cards = {}
        for number, (chip, name, id_number, pan) in CARDS.items():
            spec = CardIn(
                card_number=number,
                card_id_code=chip,
                holder_name=name,
                id_number=SecretStr(id_number),
                pan=SecretStr(pan),
                expiry=date(2035, 12, 31),
            )
            cards[number] = issuer.register_card(s, spec, card_keys, clock()).account_id
        return Programme(treasury.id, funding.id, cards)

    made = db.transaction(setup)
    fund(db, clock, made, 100_000_000)
    return made


@pytest.fixture
def issued(db, clock, rules):
    return db.transaction(
        lambda s: clients.create_client(
            s, "micro-loans", NO_CALLBACKS, rules, clock(), actor="operator:test"
        )
    )


@pytest.fixture
def api(client, issued, clock):
    """The loan system's signed client of the hub's API, on the test app."""
    key = ClientKey(issued.key_id, issued.secret)
    return DisbursementApi(client, key, clock=lambda: clock().timestamp())


@pytest.fixture
def order(settings, clock):
    """An order for 10,000 CNY to K10000001 by its holder; keyword arguments change fields."""
    id_key = settings.id_hash_key.get_secret_value().encode()

    def make(**changes):
        card = changes.get("card_number", "K10000001")
        id_number = changes.pop("id_number", CARDS.get(card, CARDS["K10000001"])[2])
        fields = {
            "external_id": "L-0001",
            "loan_ref": "LN-2026-0001",
            "amount": 1_000_000,
            "card_number": card,
            "id_number_hash": id_number_check(id_number, id_key),
            "purpose": "spring planting",
            "value_date": date(2026, 11, 29).isoformat(),
        }
        return fields | changes

    return make


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def balance(db, account_id):
    with db.session() as s:
        return ledger.balance(ledger.get_account(s, account_id)).posted


def error_code(response):
    return response.json()["error"]["code"]
