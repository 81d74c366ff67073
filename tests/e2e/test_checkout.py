"""A patient pays a hospital bill end to end at the cashier's combo terminal: the agent's
checkout desk -> signed HTTP -> the hub on uvicorn (with its outbox worker) -> the insurance
platform and HIS simulators as real HTTP servers -> the ledger; the card in the virtual reader
goes through pcscd for identification and for the tap that pays the cash part."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from devices.agent.card_tap import CardTapFlow
from devices.agent.checkout import CheckoutDesk, CheckoutView
from devices.agent.hub_client import HubClient
from devices.agent.outbox import Outbox, connect
from hub.app import create_app
from hub.config import Settings
from hub.db import utcnow
from hub.demo.day.outside import serving
from hub.issuer import service as issuer
from integrations.medical_insurance.policy import demo_config
from tests.conftest import OPS_TOKEN
from tests.devices.emulators.sscard.virtual_card import (
    TEST_IMK,
    CardSlots,
    ensure_pcscd,
    make_profile,
)
from tests.hub.checkout.test_worked_example import BILL_LINES
from tests.hub.checkout.window import INSTITUTION, ZHANG_WEI_EVOUCHER, Simulators, Window
from tests.integrations.conftest import Switchboard

sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
# Zhang Wei's demo card (hub/demo/seed.py) as its chip carries it.
ZHANG_WEI_CHIP = make_profile(
    card_number="K10000001",
    card_id_code="3301000000001A",
    holder_name="张伟",
    id_number="330102199001011234",
    pan="6231700000000003",
)


@pytest.fixture(scope="module")
def board() -> Iterator[tuple[Switchboard, str]]:
    made = Switchboard()
    with serving(made) as url:
        yield made, url


@pytest.fixture
def simulators(board: tuple[Switchboard, str]) -> Iterator[Simulators]:
    switchboard, url = board

    def mount(app: FastAPI) -> str:
        return f"{url}/{switchboard.mount(app)}"

    made = Simulators(mount, demo_config())
    yield made
    made.control.close()


@pytest.fixture
def settings(db: Any, simulators: Simulators) -> Settings:
    return Settings(
        database_url=db.url,
        ops_api_token=OPS_TOKEN,
        insurance_base_url=simulators.insurance_url,
        insurance_timeout_seconds=0.5,
        his_base_url=simulators.his_url,
        outbox_poll_seconds=0.05,
    )


@pytest.fixture
def window(client: Any, db: Any, clock: Any, simulators: Simulators, settings: Settings) -> Window:
    made = Window(client, db, clock, simulators, settings)
    secrets = issuer.IssuerSecrets.from_settings(settings)
    db.transaction(lambda s: issuer.create_issuer_key(s, secrets, clock(), key=TEST_IMK))
    return made


@pytest.fixture
def hub_url(db: Any, settings: Settings) -> Iterator[str]:
    """The hub on a loopback port with its background jobs (the outbox) on the real clock."""
    app = create_app(settings, database=db, clock=utcnow, run_workers=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def desk_for(window: Window, url: str, tmp_path: Path) -> CheckoutDesk:
    own = window.terminal
    hub = HubClient(url, own.terminal_id, own.private_key)
    taps = CardTapFlow(
        hub,
        Outbox(connect(tmp_path / "agent.db")),
        tmp_path,
        pin_threshold_fen=50_000,
        card_timeout=5,
    )
    return CheckoutDesk(hub, card_taps=taps, card_timeout=5, poll_seconds=0.05, wait_seconds=15)


@pytest.mark.pcsc
@sqlite_only
def test_a_patient_pays_a_hospital_bill_with_the_card_in_the_reader(window, hub_url, tmp_path):
    ensure_pcscd()
    slots = CardSlots()
    window.his_bill(*BILL_LINES, bill_no="MZ500001")
    shown: list[CheckoutView] = []
    try:
        slots.insert(ZHANG_WEI_CHIP)
        receipt = desk_for(window, hub_url, tmp_path).checkout(
            "MZ500001", confirm=lambda view: shown.append(view) or True
        )
    finally:
        slots.remove_all()
    (split,) = shown
    assert (split.patient_name, split.pre_settlement.cash) == ("张伟", 5_976)  # type: ignore[union-attr]
    text = receipt.text()
    assert "Insurance fund   11.84" in text and "Personal account 30.00" in text
    assert "Paid by card     59.76  623170******0003" in text
    # The ledger and the platform agree: the hospital has the whole bill, the card paid its part.
    assert window.posted("unit_settlement", INSTITUTION) == 10_160
    assert window.available("K10000001") == 50_000 - 5_976
    (booked,) = window.sims.platform.booked_settlements()
    assert (booked.setl_id, booked.cash_fen) == (receipt.data["setl_id"], 5_976)
    assert window.invariants() == []


@sqlite_only
def test_an_e_voucher_and_a_payment_code_through_a_platform_timeout_and_a_revoke(
    window, hub_url, tmp_path
):
    window.his_bill(*BILL_LINES, bill_no="MZ500002")
    desk = desk_for(window, hub_url, tmp_path)
    view = desk.open("MZ500002")
    view = desk.identify_by_code(view.checkout_id, f" {ZHANG_WEI_EVOUCHER}\r\n")
    assert view.state == "pre_settled"
    # The platform books the settlement and the answer is lost: the hub's outbox resends the
    # same msgid while the desk waits, and the checkout completes once.
    window.sims.fault("timeout_after", "2207")
    done = desk.pay_by_code(view, _payment_code(hub_url, "K10000001"))
    assert (done.state, done.settlement.cash) == ("completed", 5_976)  # type: ignore[union-attr]
    assert len(window.sims.platform.booked_settlements()) == 1
    assert window.available("K10000001") == 50_000 - 5_976
    assert desk.revoke(done.checkout_id).state == "revoked"
    assert "REVOKED" in desk.receipt(done.checkout_id).text()
    assert window.available("K10000001") == 50_000
    assert window.posted("unit_settlement", INSTITUTION) == 0
    assert window.invariants() == []


def _payment_code(hub_url: str, card_number: str) -> str:
    """The cardholder's app shows a payment code (the bank issued the app its token)."""
    ops = {"Authorization": f"Bearer {OPS_TOKEN}"}
    issued = httpx.post(
        f"{hub_url}/api/payments/cardholder-tokens", json={"card_number": card_number}, headers=ops
    )
    app = {"Authorization": f"Bearer {issued.json()['token']}"}
    response = httpx.post(f"{hub_url}/api/cardholder/payment-codes", headers=app)
    assert response.status_code == 201, response.text
    return str(response.json()["payload"])
