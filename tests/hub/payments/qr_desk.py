"""A hospital unit with an enrolled scanning terminal (real Ed25519 signatures over the FastAPI
test client), the demo cards with their balances, and cardholder app tokens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from devices.agent.hub_client import HubClient, encode_body
from devices.protocol.messages import ENROL_PATH
from devices.protocol.signing import public_key_text
from hub.demo.seed import seed
from hub.ledger import service as ledger

INSTITUTION = "H33010200001"
UNIT_NAME = "Hangzhou First Hospital"
PAY_PATH = "/api/terminal/payment-codes/payments"
FRAMES_PATH = "/api/terminal/frames"

_serials = itertools.count(1)


@dataclass
class Terminal:
    id: int
    hub: HubClient

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.hub.send("POST", path, encode_body(body))

    def get(self, path: str) -> httpx.Response:
        return self.hub.send("GET", path, b"")

    def frame(self, data: bytes, **query: Any) -> httpx.Response:
        suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
        return self.hub.send("POST", FRAMES_PATH + suffix, data)

    def pay(self, payload: str, amount: Any, transaction_id: str) -> httpx.Response:
        body = {"transaction_id": transaction_id, "amount_fen": amount, "payload": payload}
        return self.post(PAY_PATH, body)


class QrDesk:
    """A unit, its scanning terminal, the demo cardholders: driven through the real API."""

    def __init__(self, client: TestClient, clock: Any, db: Any) -> None:
        self.client = client
        self.clock = clock
        self.db = db
        keys = client.app.state.card_keys  # type: ignore[attr-defined]
        db.transaction(lambda s: seed(s, keys, clock()))
        self.unit = self.new_unit(INSTITUTION)
        self.terminal = self.new_terminal("SSC-QS210")

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def new_unit(self, code: str, name: str = UNIT_NAME) -> dict[str, Any]:
        body = {"institution_code": code, "name": name, "region_code": "330102"}
        return self.ok("POST", "/api/gateway/units", json=body)  # type: ignore[no-any-return]

    def new_terminal(self, model: str, unit_id: int | None = None) -> Terminal:
        serial = f"QR{next(_serials):08d}"
        body = {"unit_id": unit_id or self.unit["id"], "serial": serial, "model": model}
        registered = self.ok("POST", "/api/gateway/terminals", json=body)
        code = self.ok("POST", f"/api/gateway/terminals/{registered['id']}/enrollment-codes")
        key = Ed25519PrivateKey.generate()
        enrolment = {
            "code": code["code"],
            "serial": serial,
            "model": model,
            "public_key": public_key_text(key.public_key()),
            "firmware_version": "1.0.0",
        }
        self.ok("POST", ENROL_PATH, json=enrolment)
        hub = HubClient(
            "http://testserver",
            registered["id"],
            key,
            http=self.client,
            clock=lambda: self.clock().timestamp(),
        )
        return Terminal(registered["id"], hub)

    def cardholder(self, card_number: str) -> dict[str, str]:
        """Headers of that card's app: its bearer token, issued by the bank."""
        issued = self.ok(
            "POST", "/api/payments/cardholder-tokens", json={"card_number": card_number}
        )
        return {"Authorization": f"Bearer {issued['token']}"}

    def payment_code(self, app: dict[str, str]) -> str:
        response = self.client.post("/api/cardholder/payment-codes", headers=app)
        assert response.status_code == 201, response.text
        return str(response.json()["payload"])

    def balance(self, card_number: str) -> int:
        with self.db.session() as s:
            account = ledger.find_account(s, "card", card_number)
            return ledger.balance(account).available

    def unit_balance(self, institution_code: str = INSTITUTION) -> int:
        with self.db.session() as s:
            account = ledger.find_account(s, "unit_settlement", institution_code)
            return 0 if account is None else ledger.balance(account).posted

    @staticmethod
    def refusal(response: httpx.Response) -> tuple[int, str]:
        """(status, stable error code) of a refused request."""
        return response.status_code, str(response.json()["error"]["code"])

    def audit_actions(self) -> list[tuple[str, dict[str, Any]]]:
        from hub.audit import service as audit

        with self.db.session() as s:
            return [(e.action, e.details) for e in audit.recent(s, 200)]
