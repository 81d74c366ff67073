"""End to end on a real hub (uvicorn, PostgreSQL): a patient's payment code read by a scan
engine on a serial port, a camera frame, the `sshub scanner` command, a hub outage, and a bill
code paid twice. The terminal is a real agent with its own key; nothing is simulated but the
people."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devices.agent.agent import TerminalAgent
from devices.agent.scanning import ScanDesk
from devices.scanner.camera import SpoolCamera
from devices.scanner.engine import open_serial, read_scans
from devices.scanner.framing import Framing, Scan, Suffix
from hub.config import Settings
from hub.db import Database, utcnow
from hub.demo.seed import seed
from hub.issuer.protection import CardDataKeys
from hub.ledger import service as ledger
from tests.devices.agent.conftest import HubServer

# A served hub is started per test; the outage test runs the app in process behind a network
# it can cut.

ROOT = Path(__file__).resolve().parents[2]
SSHUB = Path(sys.executable).parent / "sshub"
INSTITUTION = "H33010200001"
ZHANG, WANG = "K10000001", "K10000002"


class Unit:
    """The bank's side of the set-up, over the ops API of a hub (served, or in process)."""

    def __init__(self, ops: httpx.Client, url: str, db: Database, now: Callable[[], Any]) -> None:
        self.ops, self.url, self.db, self.now = ops, url, db, now
        db.transaction(lambda s: seed(s, CardDataKeys.from_settings(Settings()), now()))
        unit = {"institution_code": INSTITUTION, "name": "City Hospital", "region_code": "330102"}
        self.unit_id = self.ok("POST", "/api/gateway/units", json=unit)["id"]

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.ops.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def scanning_terminal(self, state_dir: Path, http: httpx.Client | None = None) -> TerminalAgent:
        serial = f"QS{time.monotonic_ns() % 10**8:08d}"
        body = {"unit_id": self.unit_id, "serial": serial, "model": "SSC-QS210"}
        terminal = self.ok("POST", "/api/gateway/terminals", json=body)
        code = self.ok("POST", f"/api/gateway/terminals/{terminal['id']}/enrollment-codes")
        agent = TerminalAgent(state_dir, http=http, clock=lambda: self.now().timestamp())
        agent.enrol(self.url, code["code"], serial, "SSC-QS210")
        return agent

    def app_token(self, card_number: str) -> dict[str, str]:
        """The cardholder's phone app is signed in with the token the bank issued."""
        token = self.ok(
            "POST", "/api/payments/cardholder-tokens", json={"card_number": card_number}
        )
        return {"Authorization": f"Bearer {token['token']}"}

    def app_of(self, card_number: str) -> httpx.Client:
        headers = self.app_token(card_number)
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def balance(self, kind: str, owner: str) -> int:
        with self.db.session() as s:
            account = ledger.find_account(s, kind, owner)
            return 0 if account is None else ledger.balance(account).posted


@pytest.fixture
def hub(pg: Database) -> Iterator[Unit]:
    server = HubServer(pg.url)
    server.start()
    try:
        yield Unit(server.ops(), server.url, pg, utcnow)
    finally:
        server.stop()


def _scan_from_serial_engine(payload: str) -> Scan:
    """The patient holds the phone to the window's scan engine (CR LF suffix, on a serial port)."""
    engine, terminal_side = os.openpty()
    try:
        fd = open_serial(os.ttyname(terminal_side))
        os.write(engine, payload.encode() + b"\r\n")
        deadline = time.monotonic() + 5
        scans = read_scans(
            fd, Framing(suffix=Suffix.CRLF), stop=lambda: time.monotonic() > deadline
        )
        scan = next(scans)
        os.close(fd)
    finally:
        os.close(engine)
        os.close(terminal_side)
    assert isinstance(scan, Scan)
    return scan


@pytest.mark.postgres
def test_a_patients_code_and_a_bills_code_both_pay_once_through_the_terminal(hub, tmp_path):
    agent = hub.scanning_terminal(tmp_path / "agent")
    desk = ScanDesk(agent.client, agent.outbox, backoff_seconds=0.05)
    phone = hub.app_of(ZHANG)

    # Scan engine on a serial port.
    payload = phone.post("/api/cardholder/payment-codes").json()["payload"]
    paid = desk.submit_text(_scan_from_serial_engine(payload).text, amount_fen=2372)
    assert paid.status == "paid", paid
    again = desk.submit_text(payload, transaction_id=paid.transaction_id, amount_fen=2372)
    assert again.payment == paid.payment  # the till's retry: the first answer, nothing more
    reused = desk.submit_text(payload, amount_fen=2372)
    assert (reused.status, reused.code) == ("refused", "payment_code_used")

    # A camera scanner: the phone's PNG code photographed into the capture spool.
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "frame-1.png").write_bytes(phone.post("/api/cardholder/payment-codes/png").content)
    frame = SpoolCamera(spool).next_frame()
    assert desk.submit_frame(frame, amount_fen=1000).status == "paid"

    # The technician's simulated scan, as its own process with the agent's state.
    payload = phone.post("/api/cardholder/payment-codes").json()["payload"]
    command = [str(SSHUB), "scanner", "scan", "--text", payload]
    result = subprocess.run(
        [*command, "--amount", "500", "--state-dir", str(tmp_path / "agent")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "paid"

    assert hub.balance("card", ZHANG) == 50_000 - 2372 - 1000 - 500
    assert hub.balance("unit_settlement", INSTITUTION) == 2372 + 1000 + 500
    with hub.db.session() as s:
        assert ledger.check_invariants(s) == []

    # The cashier's terminal shows a bill code; the patient's app pays it, then pays it again.
    bill = desk.create_bill("HIS000000042", 8_800)
    zhang, wang = hub.app_of(ZHANG), hub.app_of(WANG)

    first = zhang.post("/api/cardholder/bills/pay", json={"payload": bill["payload"]})
    second = zhang.post("/api/cardholder/bills/pay", json={"payload": bill["payload"]})
    other = wang.post("/api/cardholder/bills/pay", json={"payload": bill["payload"]})
    assert first.status_code == second.status_code == 200
    assert second.json()["payment_id"] == first.json()["payment_id"]
    assert other.status_code == 409 and other.json()["error"]["code"] == "bill_already_paid"

    polled = desk.wait_for_bill("HIS000000042", timeout_seconds=5, interval_seconds=0.1)
    assert polled["status"] == "paid"
    assert hub.balance("card", ZHANG) == 50_000 - 2372 - 1000 - 500 - 8_800
    assert hub.balance("card", WANG) == 120_000
    assert hub.balance("unit_settlement", INSTITUTION) == 2372 + 1000 + 500 + 8_800


class Network(httpx.BaseTransport):
    """The unit's line to the hub app: it can be down, or lose the next answer in flight."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.down = False
        self.lose_next_answer = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        response = self.client.send(request)
        response.read()
        if self.lose_next_answer:
            self.lose_next_answer = False
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_a_lost_answer_and_a_hub_outage_never_charge_twice(client, clock, db, tmp_path):
    network = Network(client)
    ops = Unit(client, "http://testserver", db, clock)
    agent = ops.scanning_terminal(tmp_path, http=httpx.Client(transport=network))
    desk = ScanDesk(agent.client, agent.outbox, attempts=2, sleep=lambda _: None)
    phone = ops.app_token(WANG)

    def new_code() -> str:
        return str(client.post("/api/cardholder/payment-codes", headers=phone).json()["payload"])

    # The hub takes the payment but its answer is lost: the till's retry gets the first answer.
    network.lose_next_answer = True
    paid = desk.submit_text(new_code(), amount_fen=1_000)
    assert paid.status == "paid"

    # The line is down: the sale waits in the outbox under its transaction id.
    network.down = True
    unknown = desk.submit_text(new_code(), amount_fen=4_200)
    assert (unknown.status, unknown.code, unknown.queued) == ("unknown", "hub_unavailable", True)
    network.down = False
    agent.drain()
    settled = desk.payment_status(unknown.transaction_id)
    assert settled.status == "paid" and settled.payment["amount_fen"] == 4_200
    assert agent.outbox.depth() == 0

    assert ops.balance("card", WANG) == 120_000 - 1_000 - 4_200
    with db.session() as s:
        assert ledger.check_invariants(s) == []
