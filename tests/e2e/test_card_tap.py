"""A card in the virtual reader pays a hospital, end to end over the real stacks:
vpcd -> pcscd -> pyscard -> the agent's card-tap flow -> signed HTTP -> the hub on uvicorn ->
issuer and ledger -> ARPC -> the card's TC. Then every refusal, the outbox, and the logs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from devices.agent.agent import TerminalAgent
from devices.agent.card_tap import CardTapFlow, for_agent
from devices.agent.hub_client import HubClient, HubRefused
from devices.agent.outbox import Outbox, connect
from devices.pcsc.errors import CardBlocked, CardRemoved
from devices.protocol.card_payments import CARD_PAYMENTS_PATH
from hub.app import create_app
from hub.audit import service as audit
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalIn
from hub.issuer import service as issuer
from hub.issuer.models import CardStatus
from hub.ledger import service as ledger
from tests.devices.emulators.sscard.virtual_card import TEST_IMK, CardSlots, ensure_pcscd
from tests.hub.payments.card_taps.world import Terminal, World

pytestmark = pytest.mark.pcsc
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
DEAD_HUB = "http://127.0.0.1:9"  # discard port: nothing answers


@pytest.fixture
def hub_url(db, clock, settings) -> Iterator[str]:
    """The hub served by uvicorn on a loopback port, on the test's database and clock."""
    app = create_app(settings, database=db, clock=clock, run_workers=False)
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


@pytest.fixture
def world(db, clock, client) -> World:
    made = World(db, clock, client)
    made.issuer_key()
    return made


@pytest.fixture
def slots() -> Iterator[CardSlots]:
    ensure_pcscd()
    made = CardSlots()
    yield made
    made.remove_all()


@pytest.fixture
def terminal(world) -> Terminal:
    return world.terminal(world.unit())


def flow_for(terminal: Terminal, url: str, clock, tmp_path: Path, **options: Any) -> CardTapFlow:
    client = HubClient(url, terminal.id, terminal.key, clock=lambda: clock().timestamp())
    outbox = Outbox(connect(tmp_path / "agent.db"))
    options.setdefault("pin_threshold_fen", 50_000)
    return CardTapFlow(client, outbox, tmp_path, card_timeout=5, **options)


def payment_actions(world: World) -> list[str]:
    with world.db.session() as s:
        return [e.action for e in reversed(audit.recent(s, 200)) if e.action.startswith("payment.")]


def enrolled_agent(world: World, unit: tuple[int, str], hub_url: str, state: Path) -> TerminalAgent:
    """A technician's enrollment: a pre-registered serial, a one-time code, the agent enrols."""

    def register(s: Any) -> str:
        spec = TerminalIn(unit_id=unit[0], serial="CR300-E2E-0001", model="SSC-CR300")
        terminal = gateway.preregister_terminal(s, spec, actor="test", now=world.now())
        return gateway.create_enrollment_code(
            s, terminal.id, actor="test", now=world.now(), hub_url=hub_url
        ).code

    code = world.db.transaction(register)
    agent = TerminalAgent(state, clock=lambda: world.now().timestamp())
    agent.enrol(hub_url, code, "CR300-E2E-0001", "SSC-CR300")
    return agent


def test_a_card_in_the_reader_pays_a_hospital_end_to_end(world, slots, hub_url, tmp_path):
    unit = world.unit()
    institution = unit[1]
    agent = enrolled_agent(world, unit, hub_url, tmp_path / "agent")
    holder = world.cardholder(80_000)
    slots.insert(holder.chip.profile)
    flow = for_agent(agent)
    tap = flow.pay(12_345)
    assert tap.approved and tap.card_cryptogram == "TC" and tap.response_code == "00"
    assert (tap.card_number, tap.holder_name) == (holder.card_number, "张秀英")
    # authorised: the money is held on the card account, not yet with the hospital
    assert world.balance(holder.account_id) == (80_000, 80_000 - 12_345)
    assert world.settlement(institution) == (0, 0)
    assert flow.capture(tap.payment_id) == "captured"
    # captured: posted from the card to the hospital's settlement account
    assert world.balance(holder.account_id) == (80_000 - 12_345, 80_000 - 12_345)
    assert world.settlement(institution) == (12_345, 12_345)
    with world.db.session() as s:
        assert ledger.check_invariants(s) == []
        assert issuer.last_atc(s, issuer.card_by_number(s, holder.card_number).id) == 1
    assert payment_actions(world) == ["payment.authorized", "payment.captured"]


@sqlite_only
def test_every_refusal_through_the_reader_moves_no_money(
    world, terminal, slots, hub_url, clock, tmp_path
):
    flow = flow_for(terminal, hub_url, clock, tmp_path)
    untouched = []

    def tap_with(holder, amount: int, code: str) -> None:
        slots.insert(holder.chip.profile)
        result = flow.pay(amount)
        assert (result.approved, result.decline_code) == (False, code)
        assert result.card_cryptogram == "AAC"
        slots.remove_all()
        untouched.append(holder)

    tap_with(world.cardholder(1_000), 1_001, "insufficient_funds")
    expired = world.cardholder(50_000, expiry=date(2026, 10, 31))
    tap_with(expired, 100, "card_expired")
    blocked = world.cardholder(50_000)
    world.db.transaction(
        lambda s: issuer.set_card_status(
            s, issuer.card_by_number(s, blocked.card_number).id, CardStatus.BLOCKED
        )
    )
    tap_with(blocked, 100, "card_blocked")
    forged = world.cardholder(50_000, imk=bytes(16))  # a chip not personalised by this bank
    tap_with(forged, 100, "cryptogram_invalid")
    stranger = world.cardholder(50_000)
    stranger.chip.profile.pan = "6231709999999999994"
    tap_with(stranger, 100, "card_unknown")

    pulled = world.cardholder(50_000)
    pulled.chip.profile.pull_after_apdus = 12
    slots.insert(pulled.chip.profile)
    with pytest.raises(CardRemoved):
        flow.pay(100)
    slots.remove_all()
    locked = world.cardholder(50_000)
    locked.chip.profile.blocked = True
    slots.insert(locked.chip.profile)
    with pytest.raises(CardBlocked):
        flow.pay(100)
    slots.remove_all()
    for holder in [*untouched, pulled, locked]:
        posted, available = world.balance(holder.account_id)
        assert posted == available
    assert world.settlement(terminal.institution_code) == (0, 0)


@sqlite_only
def test_three_wrong_pins_at_the_pin_pad_block_the_card(
    world, terminal, slots, hub_url, clock, tmp_path
):
    holder = world.cardholder(90_000, pin="246810")
    flow = flow_for(terminal, hub_url, clock, tmp_path, pin_pad=lambda: "135790")
    slots.insert(holder.chip.profile)
    codes = []
    for _ in range(3):
        codes.append(flow.pay(60_000).decline_code)
    assert codes == ["pin_incorrect", "pin_incorrect", "pin_tries_exceeded"]
    flow.pin_pad = lambda: "246810"
    assert flow.pay(60_000).decline_code == "card_blocked"
    assert world.balance(holder.account_id) == (90_000, 90_000)


@sqlite_only
def test_a_terminal_of_another_unit_cannot_capture(
    world, terminal, slots, hub_url, clock, tmp_path
):
    holder = world.cardholder(50_000)
    slots.insert(holder.chip.profile)
    tap = flow_for(terminal, hub_url, clock, tmp_path).pay(1_000)
    other = world.terminal(world.unit("H33010200077"))
    with pytest.raises(HubRefused) as caught:
        flow_for(other, hub_url, clock, tmp_path / "other").capture(tap.payment_id)
    assert (caught.value.status, caught.value.code) == (403, "payment_of_another_unit")
    assert world.settlement(terminal.institution_code) == (0, 0)


@sqlite_only
def test_a_capture_taken_while_the_hub_is_down_is_applied_once_later(
    world, terminal, slots, hub_url, clock, tmp_path
):
    holder = world.cardholder(50_000)
    slots.insert(holder.chip.profile)
    online = flow_for(terminal, hub_url, clock, tmp_path)
    tap = online.pay(7_000)
    offline = flow_for(terminal, DEAD_HUB, clock, tmp_path)
    assert offline.capture(tap.payment_id, 6_000) == "queued"
    assert offline.capture(tap.payment_id, 6_000) == "queued"  # the cashier pressed twice
    assert world.settlement(terminal.institution_code) == (0, 0)
    report = online.outbox.drain(online.client)
    assert (report.delivered, report.remaining) == (1, 0)
    assert world.balance(holder.account_id) == (44_000, 44_000)
    assert world.settlement(terminal.institution_code) == (6_000, 6_000)
    assert online.outbox.put("/api/terminal/card-payments/1/capture", {"amount": 6_000}, "again")
    assert online.outbox.drain(online.client).delivered == 1  # the hub answers the same capture
    assert world.settlement(terminal.institution_code) == (6_000, 6_000)


@sqlite_only
def test_a_lost_authorisation_answer_is_reversed_through_the_outbox(
    world, terminal, slots, hub_url, clock, tmp_path
):
    holder = world.cardholder(50_000)
    slots.insert(holder.chip.profile)
    offline = flow_for(terminal, DEAD_HUB, clock, tmp_path)
    result = offline.pay(3_000, transaction_id="LOST-1")
    assert (result.approved, result.decline_code, result.reversal) == (
        False,
        "hub_unreachable",
        "queued",
    )
    assert result.card_cryptogram == "AAC"
    online = flow_for(terminal, hub_url, clock, tmp_path)
    assert online.outbox.drain(online.client).delivered == 1
    late = {"transaction_id": "LOST-1", "amount": 3_000, "card": {"pan": holder.pan}}
    with pytest.raises(HubRefused) as caught:  # the first request arrives after its reversal
        online.client.post(CARD_PAYMENTS_PATH, {**late, "icc_data": "9F2701"})
    assert (caught.value.status, caught.value.code) == (409, "transaction_reversed")
    assert world.balance(holder.account_id) == (50_000, 50_000)


@sqlite_only
def test_no_log_line_or_response_shows_a_pan_pin_block_pin_or_key(
    world, terminal, slots, hub_url, clock, tmp_path, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    holder = world.cardholder(90_000, pin="246810")
    slots.insert(holder.chip.profile)
    seen_blocks: list[str] = []
    flow = flow_for(terminal, hub_url, clock, tmp_path, pin_pad=lambda: "246810")
    original_post = flow.client.post

    def recording_post(path: str, body: Any) -> dict[str, Any]:
        if isinstance(body, dict) and "pin_block" in body:
            seen_blocks.append(body["pin_block"])
        answer = original_post(path, body)
        responses.append(repr(answer))
        return answer

    responses: list[str] = []
    flow.client.post = recording_post  # type: ignore[method-assign]
    tap = flow.pay(60_000)
    assert tap.approved
    flow.capture(tap.payment_id)
    flow.refund(tap.payment_id, "R-1", 1_000)
    flow.pin_pad = lambda: "000000"
    assert flow.pay(60_000).decline_code == "pin_incorrect"
    slots.remove_all()
    out, err = capfd.readouterr()
    logs = out + err + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(responses)
    pin_key = flow.pin_keys.load()
    secrets = [holder.pan, "246810", TEST_IMK.hex(), holder.chip.profile.icc_master_key]
    secrets += [block for block in seen_blocks] + [pin_key[1].hex()]
    assert len(seen_blocks) == 2 and "card_tap" in logs
    for secret in secrets:
        assert secret.upper() not in logs.upper(), "a secret reached the logs or a response"
    assert holder.pan[:6] + "*" in logs  # the masked form is what they carry
