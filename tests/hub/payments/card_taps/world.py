"""A small world for card-tap tests: a unit, enrolled terminals that sign with the real
HubClient, an issuer key, funded cards whose chips are the real emulated card.

Plain module (imported by conftests and the e2e tests), built through the domains' services.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import SecretStr

from devices.agent.hub_client import HubClient
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emv.pinblock import encipher_pinblock_iso4
from devices.pcsc.channel import CardChannel
from devices.pcsc.debit import complete
from devices.pcsc.models import CardRead, Completion, TerminalData
from devices.pcsc.tap import read_card
from devices.protocol import pin_key
from devices.protocol.card_payments import CARD_PAYMENTS_PATH
from devices.protocol.messages import EnrolmentRequest
from devices.protocol.signing import public_key_text
from hub.db import Database
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalIn, UnitIn
from hub.issuer import service as issuer
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from tests.devices.emulators.sscard.virtual_card import TEST_IMK, DirectLink, make_profile

_serials = itertools.count(1)
_pans = itertools.count(1)


def luhn_pan(body: str) -> str:
    """`body` plus its Luhn check digit."""
    total = 0
    for position, digit in enumerate(int(c) for c in reversed(body)):
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


@dataclass
class Terminal:
    id: int
    unit_id: int
    institution_code: str
    key: Ed25519PrivateKey
    hub: HubClient
    pin_key: bytes | None = None
    pin_key_version: int | None = None

    def agree_pin_key(self) -> None:
        own = X25519PrivateKey.generate()
        answer = self.hub.post(pin_key.PIN_KEY_PATH, {"public_key": pin_key.public_key_text(own)})
        peer = pin_key.load_public_key(answer["hub_public_key"])
        self.pin_key_version = answer["version"]
        self.pin_key = pin_key.derive_pin_key(own, peer, self.id, self.pin_key_version)


@dataclass
class Tap:
    """One first GENERATE AC in progress: the request body, and the card waiting for the answer."""

    body: dict[str, Any] = field(repr=False)
    read: CardRead
    channel: CardChannel
    terminal: TerminalData

    def finish(self, answer: dict[str, Any]) -> Completion:
        arpc = bytes.fromhex(answer["arpc"]) if answer.get("arpc") else None
        code = (answer.get("response_code") or "Z3").encode()
        return complete(self.channel, self.read.debit, self.terminal, code, arpc)


@dataclass
class Cardholder:
    card_number: str
    pan: str = field(repr=False)
    account_id: int
    chip: SocialSecurityCard
    pin: str = "123456"

    def tap(
        self,
        amount: int,
        transaction_id: str,
        when: datetime,
        *,
        pin: str | None = None,
        terminal: Terminal | None = None,
    ) -> Tap:
        channel = CardChannel(DirectLink(self.chip), "direct")
        data = TerminalData(amount=amount, when=when)
        read = read_card(channel, data)
        body: dict[str, Any] = {
            "transaction_id": transaction_id,
            "amount": amount,
            "card": {
                "pan": read.debit.pan,
                "psn": read.debit.psn,
                "card_number": read.social_security.card_number,
            },
            "icc_data": read.arqc.icc_data().hex().upper(),
        }
        if pin is not None:
            assert terminal is not None and terminal.pin_key is not None
            block = encipher_pinblock_iso4(terminal.pin_key, pin, read.debit.pan)
            body["pin_block"] = block.hex().upper()
            body["pin_key_version"] = terminal.pin_key_version
        return Tap(body, read, channel, data)


class World:
    def __init__(self, db: Database, clock: Any, client: TestClient) -> None:
        self.db = db
        self.clock = clock
        self.client = client
        self.secrets = issuer.IssuerSecrets.from_settings(client.app.state.settings)  # type: ignore[attr-defined]

    def now(self) -> datetime:
        return self.clock()  # type: ignore[no-any-return]

    def unit(self, code: str = "H33010200001") -> tuple[int, str]:
        spec = UnitIn(institution_code=code, name=f"Hospital {code}", region_code="330102")
        unit = self.db.transaction(
            lambda s: gateway.create_unit(s, spec, actor="test", now=self.now())
        )
        return unit.id, unit.institution_code

    def terminal(self, unit: tuple[int, str], model: str = "SSC-CR300") -> Terminal:
        serial = f"CT{next(_serials):08d}"
        key = Ed25519PrivateKey.generate()
        now = self.now()

        def work(session: Any) -> int:
            spec = TerminalIn(unit_id=unit[0], serial=serial, model=model)
            terminal = gateway.preregister_terminal(session, spec, actor="test", now=now)
            code = gateway.create_enrollment_code(
                session, terminal.id, actor="test", now=now, hub_url="http://testserver"
            )
            request = EnrolmentRequest(
                code=code.code,
                serial=serial,
                model=model,
                public_key=public_key_text(key.public_key()),
                firmware_version="1.0.0",
            )
            return gateway.enrol(session, request, now=now, interval=60.0).terminal_id

        terminal_id = self.db.transaction(work)
        hub = HubClient(
            "http://testserver",
            terminal_id,
            key,
            http=self.client,
            clock=lambda: self.clock().timestamp(),
        )
        return Terminal(terminal_id, unit[0], unit[1], key, hub)

    def issuer_key(self, imk: bytes = TEST_IMK) -> None:
        self.db.transaction(
            lambda s: issuer.create_issuer_key(s, self.secrets, self.now(), key=imk)
        )

    def cardholder(
        self,
        balance: int = 100_000,
        *,
        pin: str = "123456",
        expiry: date = date(2034, 1, 31),
        imk: bytes = TEST_IMK,
        key_index: int = 1,
    ) -> Cardholder:
        n = next(_pans)
        pan = luhn_pan(f"623170{n:012d}")
        number = f"K{n:08d}"
        spec = CardIn(
            card_number=number,
            card_id_code=f"330100D15600000500{n:014d}",
            holder_name="张秀英",
            id_number=SecretStr(f"3301021958{n:08d}"),
            pan=SecretStr(pan),
            psn="01",
            expiry=expiry,
        )
        now = self.now()

        def work(session: Any) -> int:
            card = issuer.register_card(session, spec, self.secrets.card_data, now)
            issuer.set_pin(session, number, pin, self.secrets, now)
            treasury = ledger.ensure_account(
                session, AccountIn(kind="treasury", owner_ref="bank"), now
            )
            if balance:
                ledger.transfer(
                    session,
                    TransferIn(
                        id=f"test:fund:{number}",
                        debit_account_id=treasury.id,
                        credit_account_id=card.account_id,
                        amount=balance,
                        code="deposit",
                    ),
                    now,
                )
            return card.account_id

        account_id = self.db.transaction(work)
        profile = make_profile(
            imk=imk,
            card_number=number,
            card_id_code=spec.card_id_code,
            id_number=f"3301021958{n:08d}",
            pan=pan,
            key_index=key_index,
            pan_expiry=expiry.isoformat(),
        )
        return Cardholder(number, pan, account_id, SocialSecurityCard(profile), pin)

    def balance(self, account_id: int) -> tuple[int, int]:
        """(posted, available) of a ledger account."""
        with self.db.session() as s:
            out = ledger.balance(ledger.get_account(s, account_id))
        return out.posted, out.available

    def settlement(self, institution_code: str) -> tuple[int, int]:
        with self.db.session() as s:
            account = ledger.find_account(s, "unit_settlement", institution_code)
            if account is None:
                return 0, 0
            out = ledger.balance(account)
        return out.posted, out.available

    def authorize(self, terminal: Terminal, tap: Tap) -> dict[str, Any]:
        return terminal.hub.post(CARD_PAYMENTS_PATH, tap.body)
