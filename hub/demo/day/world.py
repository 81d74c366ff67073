"""The district the hub serves on the day, seeded through the domains' own services
(hub/demo/seed.py): the demo cards and a few more, the loan programme, three hospitals with a
combo terminal, a QR scanner and a card reader each. Terminals enrol over the API with one-time
codes and keys made from the seed. The model's books open with the same balances, which it
learns from the seed's constants.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy.orm import Session

from devices.agent.hub_client import post_unsigned
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.profile import profile_from_dict
from devices.protocol.messages import ENROL_PATH
from devices.protocol.signing import public_key_text
from hub.config import Settings
from hub.console.rendering import card_masked
from hub.demo import seed as demo
from hub.demo.day.clients import App, LoanSystem, Terminal
from hub.demo.day.clock import SimClock
from hub.demo.day.model import Books, Key
from hub.demo.day.network import BASE_URL, Hub, Network
from hub.demo.day.outside import Outside
from hub.disbursements.service import Rules
from hub.issuer import service as issuer
from hub.issuer.keys import IssuerSecrets
from hub.issuer.protection import CardDataKeys, luhn_valid
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn
from hub.payments import cardholders
from integrations.loans.client import ClientKey

UNITS = 3
EXTRA_CARDS = 5  # beside the three demo cards; not insured, so they never check out
TREASURY: Key = ("treasury", "bank")
FUNDING: Key = ("loan_funding", "programme")
TERMINAL_DRIFT = 120  # seconds a terminal's clock may be off and still be within the skew


# --- the district -------------------------------------------------------------------------------


@dataclass
class Card:
    number: str
    card_id_code: str
    id_number: str
    chip: SocialSecurityCard
    app: App

    @property
    def key(self) -> Key:
        return ("card", self.number)

    @property
    def masked(self) -> str:
        """The card number as the console shows it (K10***001): the day's log is printed."""
        return card_masked(self.number)


@dataclass
class Unit:
    code: str
    combo: Terminal  # the cashier's window: checkouts
    scanner: Terminal  # payment codes and bill codes
    reader: Terminal  # card taps, captures, refunds

    @property
    def key(self) -> Key:
        return ("unit_settlement", self.code)


@dataclass
class District:
    units: list[Unit]
    cards: list[Card]
    loans: LoanSystem
    id_hash_key: bytes


@dataclass
class _Seeded:
    units: list[demo.DemoUnit]
    cards: list[tuple[str, str, str, int]]  # number, chip code, ID number, opening balance
    profiles: dict[str, dict[str, object]]
    tokens: dict[str, str]
    loan_key: ClientKey


def signer_clock(clock: SimClock, network: Network, drift: int) -> Callable[[], float]:
    """A signer's clock: the day's, its own drift, and a step's skew fault when one is due."""
    return lambda: clock().timestamp() + drift + network.faults.skew()


def open_district(
    hub: Hub,
    settings: Settings,
    outside: Outside,
    network: Network,
    clock: SimClock,
    rng: random.Random,
    books: Books,
) -> District:
    """Seed the district, open the model's books alike, enrol every terminal."""
    http = httpx.Client(base_url=BASE_URL, transport=network)
    extra = _extra_cards(rng)
    seeded = hub.db.transaction(lambda s: _seed(s, settings, outside, extra, clock()))
    _open_books(books, seeded.cards)
    outside.inbox.keys[seeded.loan_key.key_id] = seeded.loan_key.secret
    units = [
        _unit(hub, http, unit, lambda: signer_clock(clock, network, _drift(rng)), rng)
        for unit in seeded.units
    ]
    loans = LoanSystem(http, seeded.loan_key, signer_clock(clock, network, _drift(rng)))
    id_key = settings.id_hash_key.get_secret_value().encode()
    return District(units, _cards(seeded, http), loans, id_key)


def _cards(seeded: _Seeded, http: httpx.Client) -> list[Card]:
    """Each card with its chip (personalised under the issuer key) and its app."""
    return [
        Card(
            number,
            chip,
            id_number,
            SocialSecurityCard(
                profile_from_dict(seeded.profiles[number] | {"id_number": id_number})
            ),
            App(http, seeded.tokens[number]),
        )
        for number, chip, id_number, _ in seeded.cards
    ]


def _unit(
    hub: Hub,
    http: httpx.Client,
    unit: demo.DemoUnit,
    clock: Callable[[], Callable[[], float]],
    rng: random.Random,
) -> Unit:
    """A hospital's three terminals, each enrolled with a clock of its own."""
    by_kind = {t.kind: _enrol(hub, http, t, clock(), rng) for t in unit.terminals}
    return Unit(
        unit.institution_code, by_kind["combo"], by_kind["qr_scanner"], by_kind["card_reader"]
    )


def _drift(rng: random.Random) -> int:
    return rng.randint(-TERMINAL_DRIFT, TERMINAL_DRIFT)


def _extra_cards(rng: random.Random) -> list[tuple[str, str, str, str, int]]:
    """Cards beyond the demo ones: number, chip code, ID number, PAN, opening balance."""
    made = []
    for n in range(1, EXTRA_CARDS + 1):
        body = f"62317020{n:07d}"
        pan = next(body + d for d in "0123456789" if luhn_valid(body + d))
        balance = rng.randrange(0, 300_000, 100)
        made.append((f"K2{n:07d}", f"3302000000{n:03d}E", f"3301021980{n:07d}X", pan, balance))
    return made


def _seed(
    session: Session,
    settings: Settings,
    outside: Outside,
    extra: list[tuple[str, str, str, str, int]],
    now: datetime,
) -> _Seeded:
    secrets = IssuerSecrets.from_settings(settings)
    ids = demo.seed(session, CardDataKeys.from_settings(settings), now)
    demo.seed_issuer_key(session, secrets, now)
    cards = [(n, chip, id_no, balance) for n, chip, _, id_no, _, balance in demo.DEMO_CARDS]
    for number, chip, id_number, pan, balance in extra:
        _register(session, settings, ids["treasury"], number, chip, id_number, pan, balance, now)
        cards.append((number, chip, id_number, balance))
    issued = demo.seed_loan_client(
        session, Rules.from_settings(settings), outside.callback_url, now
    )
    return _Seeded(
        units=demo.seed_units(session, UNITS, now),
        cards=cards,
        profiles={n: issuer.personalisation(session, n, secrets) for n, *_ in cards},
        tokens={n: cardholders.issue_token(session, n, now).token for n, *_ in cards},
        loan_key=ClientKey(issued.key_id, issued.secret),
    )


def _register(
    session: Session,
    settings: Settings,
    treasury: int,
    number: str,
    chip: str,
    id_number: str,
    pan: str,
    balance: int,
    now: datetime,
) -> None:
    spec = CardIn(
        card_number=number,
        card_id_code=chip,
        holder_name="赵敏",
        id_number=SecretStr(id_number),
        pan=SecretStr(pan),
        expiry=date(2035, 12, 31),
    )
    card = issuer.register_card(session, spec, CardDataKeys.from_settings(settings), now)
    if balance:
        deposit = TransferIn(
            id=f"day:deposit:{number}",
            debit_account_id=treasury,
            credit_account_id=card.account_id,
            amount=balance,
            code="deposit",
        )
        ledger.transfer(session, deposit, now)


def _open_books(books: Books, cards: list[tuple[str, str, str, int]]) -> None:
    """The opening balances the seed writes, as the model learns them from its constants."""
    books.limited.add(FUNDING)
    books.transfer(TREASURY, FUNDING, demo.FUNDING_FEN)
    for number, _, _, balance in cards:
        books.limited.add(("card", number))
        books.transfer(TREASURY, ("card", number), balance)


def _enrol(
    hub: Hub,
    http: httpx.Client,
    terminal: demo.DemoTerminal,
    clock: Callable[[], float],
    rng: random.Random,
) -> Terminal:
    """As a technician does: a one-time code from the bank, then the terminal's own key."""
    now = hub.clock()
    code = hub.db.transaction(
        lambda s: demo.enrollment_code(s, terminal.id, hub_url=BASE_URL, now=now)
    )
    key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    body = {
        "code": code,
        "serial": terminal.serial,
        "model": terminal.model,
        "public_key": public_key_text(key.public_key()),
        "firmware_version": "1.0.0",
    }
    enrolled = post_unsigned(BASE_URL, ENROL_PATH, body, http=http)
    return Terminal(int(enrolled["terminal_id"]), terminal.serial, key, http, clock)
