"""Demo data for the quick start: funding accounts, a few registered, funded cards, and the
living district's units, terminals, operator and loan client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pydantic import SecretStr
from sqlalchemy.orm import Session

from hub.console import service as console
from hub.console.models import Role
from hub.console.service import SessionPolicy
from hub.disbursements import clients
from hub.disbursements import service as disbursements
from hub.disbursements.schemas import IssuedKey
from hub.disbursements.service import Rules
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalIn, UnitIn
from hub.issuer import service as issuer
from hub.issuer.keys import IssuerSecrets
from hub.issuer.protection import CardDataKeys
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn
from hub.payments import cardholders

FUNDING_FEN = 1_000_000_000  # 10 million CNY for the loan programme
# Demo cardholders only: card number, chip code, name, ID number, PAN, opening balance in fen.
DEMO_CARDS = [
    ("K10000001", "3301000000001A", "张伟", "330102199001011234", "6231700000000003", 50_000),
    ("K10000002", "3301000000002B", "王芳", "330102198505052345", "6231700000000011", 120_000),
    ("K10000003", "3301000000003C", "李娜", "33010219700707345X", "6231700000000029", 8_800),
]


def seed(session: Session, keys: CardDataKeys, now: datetime) -> dict[str, int]:
    """Idempotent: a second run finds everything in place and moves no money."""
    treasury = ledger.ensure_account(session, disbursements.TREASURY_ACCOUNT, now)
    funding = ledger.ensure_account(session, disbursements.FUNDING_ACCOUNT, now)
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


# --- the living district (`sshub demo run`) ----------------------------------------------------
# The demo launcher seeds through each domain's own modules, like a bank's set-up script would.

DEMO_OPERATOR = "demo"
DEMO_OPERATOR_PASSWORD = "ssc-demo-district"  # demo mode only; printed by `sshub demo run`
LOAN_CLIENT = "demo-micro-loans"
SEED_ACTOR = "system:demo"
# Terminal models of a unit's windows: the cashier's combo, a QR scanner, a card reader.
UNIT_TERMINALS = (("CT", "SSC-CT500"), ("QS", "SSC-QS210"), ("CR", "SSC-CR300"))


@dataclass(frozen=True)
class DemoTerminal:
    id: int
    serial: str
    model: str
    kind: str


@dataclass(frozen=True)
class DemoUnit:
    id: int
    institution_code: str
    name: str
    terminals: tuple[DemoTerminal, ...]


def unit_code(n: int) -> str:
    return f"H3301020{n:04d}"


def seed_units(session: Session, count: int, now: datetime) -> list[DemoUnit]:
    """`count` hospitals, each with its three terminals pre-registered (idempotent)."""
    return [_seed_unit(session, n, now) for n in range(1, count + 1)]


def _seed_unit(session: Session, n: int, now: datetime) -> DemoUnit:
    code = unit_code(n)
    try:
        unit = gateway.find_unit(session, code)
    except HubError:
        spec = UnitIn(institution_code=code, name=f"示范医院 {n:02d}", region_code="330102")
        unit = gateway.create_unit(session, spec, actor=SEED_ACTOR, now=now)
    terminals = []
    for suffix, model in UNIT_TERMINALS:
        serial = f"{code}-{suffix}"
        try:
            terminal = gateway.find_terminal(session, serial)
        except HubError:
            spec_t = TerminalIn(unit_id=unit.id, serial=serial, model=model)
            terminal = gateway.preregister_terminal(session, spec_t, actor=SEED_ACTOR, now=now)
        terminals.append(DemoTerminal(terminal.id, serial, model, str(terminal.kind)))
    return DemoUnit(unit.id, code, unit.name, tuple(terminals))


def enrollment_code(session: Session, terminal_id: int, hub_url: str, now: datetime) -> str:
    """A one-time code, as an operator would hand it to the technician."""
    return gateway.create_enrollment_code(
        session, terminal_id, actor=SEED_ACTOR, now=now, hub_url=hub_url
    ).code


def seed_issuer_key(session: Session, secrets: IssuerSecrets, now: datetime) -> None:
    """The issuer master key the demo cards are personalised under (made once)."""
    if not issuer.list_issuer_keys(session):
        issuer.create_issuer_key(session, secrets, now)


def card_profiles(session: Session, secrets: IssuerSecrets) -> dict[str, dict[str, object]]:
    """Chip data of the demo cards under the active key, with their last ATC from the registry."""
    profiles = {}
    for number, _chip, _name, id_number, _pan, _balance in DEMO_CARDS:
        profile = issuer.personalisation(session, number, secrets)
        profiles[number] = profile | {"id_number": id_number}
    return profiles


def seed_operator(session: Session, policy: SessionPolicy, now: datetime) -> None:
    """The demo console account (admin), unless it exists."""
    if any(o.username == DEMO_OPERATOR for o in console.list_operators(session)):
        return
    console.create_operator(
        session,
        username=DEMO_OPERATOR,
        display_name="Demo operator",
        password=DEMO_OPERATOR_PASSWORD,
        role=Role.ADMIN,
        policy=policy,
        actor=SEED_ACTOR,
        now=now,
    )


def seed_loan_client(session: Session, rules: Rules, callback_url: str, now: datetime) -> IssuedKey:
    """The loan system's client and a fresh key for this run (older keys age out)."""
    try:
        return clients.rotate_key(session, LOAN_CLIENT, rules, now, actor=SEED_ACTOR)
    except HubError:
        return clients.create_client(
            session, LOAN_CLIENT, callback_url, rules, now, actor=SEED_ACTOR
        )


def cardholder_tokens(session: Session, now: datetime) -> dict[str, str]:
    """One app token per demo card, for payment codes and bill payments."""
    return {
        number: cardholders.issue_token(session, number, now).token for number, *_ in DEMO_CARDS
    }
