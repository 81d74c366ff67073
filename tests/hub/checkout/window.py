"""A hospital window for checkout tests: a unit, its enrolled combo terminal signing with the
real HubClient, the demo cardholders and their funded cards, the simulators behind the hub,
and the books read the way an accountant would."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from devices.agent.hub_client import HubClient, encode_body
from devices.protocol.messages import EnrolmentRequest
from devices.protocol.signing import public_key_text
from hub.app import outbox_worker
from hub.checkout import service as checkout_service
from hub.config import Settings
from hub.db import Database
from hub.demo.seed import seed
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalIn, UnitIn
from hub.ledger import service as ledger
from hub.ledger.models import TransferFlag
from integrations.his.client import Bill, Patient
from integrations.his.simulator import DEMO_ITEMS, HisSimulator, bill_line
from integrations.his.simulator import create_app as his_app
from integrations.medical_insurance.platform import Fault, InsurancePlatform
from integrations.medical_insurance.policy import PlatformConfig
from integrations.medical_insurance.simulator import SimulatorControl
from integrations.medical_insurance.simulator import create_app as insurance_app

PATH = "/api/terminal/checkouts"
INSTITUTION = "H33010200001"
REGION = "330102"
HELD = 0.6  # an injected timeout holds the answer longer than the hub waits (0.3 s)
ITEMS = {item.item_code: item for item in DEMO_ITEMS}
STEPS = {
    TransferFlag.PENDING: "hold",
    TransferFlag.POST_PENDING: "post",
    TransferFlag.VOID_PENDING: "void",
}
_serials = itertools.count(1)
_bills = itertools.count(1)

# The demo cardholders (hub/demo/seed.py), as the platform knows them too.
ZHANG_WEI = {"card_number": "K10000001", "card_id_code": "3301000000001A"}  # account 30.00
WANG_FANG = {"card_number": "K10000002", "card_id_code": "3301000000002B"}  # deductible used
ZHANG_WEI_ID = "330102199001011234"
ZHANG_WEI_EVOUCHER = "ECT330100ZHANGWEI0000000000000001"


class Simulators:
    """The two outside systems of one test, each a fresh app on the shared test server."""

    def __init__(self, mount: Callable[[FastAPI], str], config: PlatformConfig) -> None:
        self.platform = InsurancePlatform(config)
        self.insurance_url = mount(insurance_app(self.platform))
        self.his = HisSimulator()
        self.his_url = mount(his_app(self.his))
        self.control = SimulatorControl(self.insurance_url)

    def fault(self, kind: str, infno: str = "*", times: int = 1, **more: Any) -> None:
        """Misbehave on the next `times` messages of `infno`."""
        self.platform.add_fault(
            Fault(kind=kind, infno=infno, times=times, hold_seconds=HELD, **more)
        )  # type: ignore[arg-type]


@dataclass(frozen=True)
class Leg:
    """One ledger transfer, as an accountant writes it."""

    debit: str
    credit: str
    amount: int
    code: str


def bill(*lines: tuple[str, int | str], bill_no: str | None = None) -> Bill:
    """A HIS bill of (item code, quantity) lines, priced from the hospital's list."""
    dept, doctor = ("0101", "内科"), ("D0101", "刘建国")
    made = [
        bill_line(n, ITEMS[code], Decimal(str(qty)), dept, doctor)
        for n, (code, qty) in enumerate(lines, 1)
    ]
    return Bill(
        bill_no=bill_no or f"MZ{next(_bills):06d}",
        patient=Patient(patient_no="P0001", name="张伟", certno=ZHANG_WEI_ID),
        created_at="2026-11-29T01:30:00Z",  # type: ignore[arg-type]
        lines=made,
    )


class Window:
    """The cashier's window at a hospital, driven through the hub's real terminal API."""

    def __init__(
        self,
        client: TestClient,
        db: Database,
        clock: Any,
        simulators: Simulators,
        settings: Settings,
    ) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        self.sims = simulators
        self.settings = settings
        keys = client.app.state.card_keys  # type: ignore[attr-defined]
        db.transaction(lambda s: seed(s, keys, clock()))
        self.unit_id = self.new_unit(INSTITUTION)
        self.terminal = self.new_terminal(self.unit_id)

    # ---- set-up ----

    def new_unit(self, code: str, name: str = "杭州市上城区人民医院") -> int:
        spec = UnitIn(institution_code=code, name=name, region_code=REGION)
        unit = self.db.transaction(
            lambda s: gateway.create_unit(s, spec, actor="test", now=self.clock())
        )
        return unit.id

    def new_terminal(self, unit_id: int, model: str = "SSC-CT500") -> HubClient:
        serial = f"CK{next(_serials):08d}"
        key = Ed25519PrivateKey.generate()
        now = self.clock()

        def work(session: Any) -> int:
            spec = TerminalIn(unit_id=unit_id, serial=serial, model=model)
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
        return HubClient(
            "http://testserver",
            terminal_id,
            key,
            http=self.client,
            clock=lambda: self.clock().timestamp(),
        )

    def his_bill(self, *lines: tuple[str, int | str], bill_no: str | None = None) -> Bill:
        made = bill(*lines, bill_no=bill_no)
        self.sims.his.add_raw(made.model_dump(mode="json"))
        return made

    # ---- the terminal's requests ----

    def send(
        self, path: str, body: Any = None, terminal: HubClient | None = None
    ) -> httpx.Response:
        hub = terminal or self.terminal
        if body is None and not path.endswith(("revoke",)):
            return hub.send("GET", path, b"")
        return hub.send("POST", path, encode_body(body or {}))

    def ok(self, path: str, body: Any = None, terminal: HubClient | None = None) -> dict[str, Any]:
        response = self.send(path, body, terminal)
        assert response.status_code < 300, response.text
        return response.json()  # type: ignore[no-any-return]

    def open(self, bill_no: str) -> dict[str, Any]:
        return self.ok(PATH, {"bill_no": bill_no})

    def identify(self, checkout_id: int, **credential: Any) -> dict[str, Any]:
        return self.ok(f"{PATH}/{checkout_id}/identify", credential)

    def self_pay(self, checkout_id: int, method: str = "card", **more: Any) -> dict[str, Any]:
        return self.ok(f"{PATH}/{checkout_id}/self-pay", {"method": method, **more})

    def revoke(self, checkout_id: int) -> dict[str, Any]:
        return self.ok(f"{PATH}/{checkout_id}/revoke", {})

    def view(self, checkout_id: int) -> dict[str, Any]:
        return self.ok(f"{PATH}/{checkout_id}")

    def receipt(self, checkout_id: int) -> dict[str, Any]:
        return self.ok(f"{PATH}/{checkout_id}/receipt")

    def pre_settled(self, bill_no: str, **credential: Any) -> dict[str, Any]:
        """Open and identify (Zhang Wei by card unless told otherwise)."""
        opened = self.open(bill_no)
        return self.identify(opened["checkout_id"], **(credential or {"card": ZHANG_WEI}))

    def outbox(self) -> int:
        """One drain of a freshly wired outbox worker, as a restarted hub would run it."""
        return outbox_worker(self.settings, self.db, self.clock).drain()

    # ---- the books ----

    def available(self, card_number: str) -> int:
        with self.db.session() as s:
            account = ledger.find_account(s, "card", card_number)
            assert account is not None
            return ledger.balance(account).available

    def posted(self, kind: str, owner: str) -> int:
        """credits - debits posted of an account (0 when it was never opened)."""
        with self.db.session() as s:
            account = ledger.find_account(s, kind, owner)
            return 0 if account is None else ledger.balance(account).posted

    def legs(self, checkout_id: int) -> list[Leg]:
        """Every posted transfer of the checkout, with its self-pay payments', in order."""
        with self.db.session() as s:
            found = list(ledger.transfers_for(s, f"checkout:{checkout_id}"))
            row = checkout_service.get_checkout(s, checkout_id, checkout_service.Caller("t", None))
            payment_ids = {row.payment_id} | _earlier_payments(s, checkout_id)
            for payment_id in sorted(p for p in payment_ids if p):
                found += ledger.transfers_for(s, f"payment:{payment_id}")
            names = {}
            for transfer in found:
                for account_id in (transfer.debit_account_id, transfer.credit_account_id):
                    account = ledger.get_account(s, account_id)
                    names[account_id] = f"{account.kind}:{account.owner_ref}"
            legs = []
            for t in sorted(found, key=lambda t: t.seq):
                step = STEPS.get(t.flags & ~TransferFlag.LINKED, "")
                code = f"{t.code}/{step}" if step else t.code
                debit, credit = names[t.debit_account_id], names[t.credit_account_id]
                legs.append(Leg(debit, credit, t.amount, code))
            return legs

    def invariants(self) -> list[str]:
        with self.db.session() as s:
            return ledger.check_invariants(s)

    def audit_actions(self, checkout_id: int) -> list[str]:
        from hub.audit import service as audit

        with self.db.session() as s:
            entries = reversed(audit.recent(s, 500))
            return [e.action for e in entries if e.subject == f"checkout:{checkout_id}"]


def _earlier_payments(session: Any, checkout_id: int) -> set[int]:
    """Payments the checkout opened itself (holds keyed checkout:{id}:selfpay:n)."""
    from sqlalchemy import text

    rows = session.execute(
        text("SELECT id FROM payments WHERE idempotency_key LIKE :key"),
        {"key": f"checkout:{checkout_id}:%"},
    )
    return {row[0] for row in rows}
