"""Gateway fixtures: a unit, pre-registered and enrolled terminals that sign their requests with
the real HubClient over the FastAPI test client, on the test's manual clock."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from devices.agent.hub_client import HubClient
from devices.protocol.firmware import config_hash
from devices.protocol.messages import ENROL_PATH, HEARTBEAT_PATH
from devices.protocol.signing import public_key_text
from hub.gateway.firmware import bundled_documents
from hub.gateway.runtime import GatewayRuntime

_serials = itertools.count(1)

# Variants of a rule already proven on both databases run on SQLite only, to keep the suite
# fast; every rule keeps at least one test on PostgreSQL.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@dataclass
class SimTerminal:
    """An enrolled terminal driven by the test: real keys, real signatures."""

    id: int
    serial: str
    model: str
    key: Ed25519PrivateKey
    hub: HubClient
    sequence: int = 0
    config_hash: str | None = None

    def heartbeat(self, **fields: Any) -> dict[str, Any]:
        self.sequence += 1
        body = {
            "sequence": self.sequence,
            "firmware_version": "1.0.0",
            "config_hash": self.config_hash,
            "heartbeat_interval_seconds": 60,
            **fields,
        }
        return self.hub.post(HEARTBEAT_PATH, body)


class GatewayDriver:
    """Ops actions over the real API, as bank operations would call them."""

    def __init__(self, client: TestClient, clock: Any) -> None:
        self.client = client
        self.clock = clock

    @property
    def runtime(self) -> GatewayRuntime:
        return self.client.app.state.gateway  # type: ignore[attr-defined,no-any-return]

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def unit(self, code: str = "H11010500001", region: str = "110105") -> dict[str, Any]:
        body = {"institution_code": code, "name": f"Hospital {code}", "region_code": region}
        return self.ok("POST", "/api/gateway/units", json=body)

    def register(self, unit_id: int, model: str = "SSC-CR300") -> dict[str, Any]:
        serial = f"SN{next(_serials):08d}"
        body = {"unit_id": unit_id, "serial": serial, "model": model}
        return self.ok("POST", "/api/gateway/terminals", json=body)

    def code_for(self, terminal_id: int) -> str:
        return self.ok("POST", f"/api/gateway/terminals/{terminal_id}/enrollment-codes")["code"]

    def enrol_request(self, terminal: dict[str, Any], code: str, key: Ed25519PrivateKey) -> Any:
        body = {
            "code": code,
            "serial": terminal["serial"],
            "model": terminal["model"],
            "public_key": public_key_text(key.public_key()),
            "firmware_version": "1.0.0",
        }
        return self.client.post(ENROL_PATH, json=body)

    def enrol(self, terminal: dict[str, Any], key: Ed25519PrivateKey | None = None) -> SimTerminal:
        key = key or Ed25519PrivateKey.generate()
        response = self.enrol_request(terminal, self.code_for(terminal["id"]), key)
        assert response.status_code == 201, response.text
        return self.sim(terminal, key)

    def sim(self, terminal: dict[str, Any], key: Ed25519PrivateKey) -> SimTerminal:
        hub = HubClient(
            "http://testserver",
            terminal["id"],
            key,
            http=self.client,
            clock=lambda: self.clock().timestamp(),
        )
        return SimTerminal(terminal["id"], terminal["serial"], terminal["model"], key, hub)

    def new_terminal(self, unit_id: int, model: str = "SSC-CR300") -> SimTerminal:
        return self.enrol(self.register(unit_id, model))

    def publish(self, model: str = "SSC-CR300", **changes: Any) -> dict[str, Any]:
        document = next(dict(d) for _, d in bundled_documents() if d["model"] == model)
        document.update(changes)
        return self.ok("POST", "/api/gateway/configs", json={"document": document})

    def terminal(self, terminal_id: int) -> dict[str, Any]:
        return self.ok("GET", f"/api/gateway/terminals/{terminal_id}")

    def audit_actions(self, db: Any) -> list[tuple[str, str, dict[str, Any]]]:
        from hub.audit import service as audit

        with db.session() as s:
            return [(e.action, e.subject, e.details) for e in reversed(audit.recent(s, 500))]


@pytest.fixture
def gateway(client: TestClient, clock: Any) -> GatewayDriver:
    return GatewayDriver(client, clock)


@pytest.fixture
def unit(gateway: GatewayDriver) -> dict[str, Any]:
    return gateway.unit()


def document_hash(document: dict[str, Any]) -> str:
    return config_hash(document)
