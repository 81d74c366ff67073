"""End to end on a real hub (uvicorn, PostgreSQL) and a real agent: a request whose path has a
percent-encoded segment verifies, because both sides sign the path as it travels on the wire.
The hub used to verify the path it decoded for routing, so such a request was refused as
`signature_invalid` (and a queued one would have blocked the agent's outbox for good)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.agent.agent import TerminalAgent
from devices.agent.hub_client import HubRefused
from devices.agent.scanning import ScanDesk
from hub.db import Database
from tests.devices.agent.conftest import HubServer


@pytest.fixture
def hub(pg: Database) -> Iterator[HubServer]:
    server = HubServer(pg.url)
    server.start()
    yield server
    server.stop()


def _bill_desk(hub: HubServer, state_dir: Path) -> ScanDesk:
    """A cashier's scanning terminal of a new unit, enrolled by a real agent."""
    with hub.ops() as ops:
        unit = {
            "institution_code": "H33010200001",
            "name": "City Hospital",
            "region_code": "330102",
        }
        unit_id = ops.post("/api/gateway/units", json=unit).json()["id"]
        body = {"unit_id": unit_id, "serial": "QS00000001", "model": "SSC-QS210"}
        terminal = ops.post("/api/gateway/terminals", json=body).json()
        code = ops.post(f"/api/gateway/terminals/{terminal['id']}/enrollment-codes").json()
    agent = TerminalAgent(state_dir)
    agent.enrol(hub.url, code["code"], "QS00000001", "SSC-QS210")
    assert agent.client is not None
    return ScanDesk(agent.client, agent.outbox, attempts=1)


@pytest.mark.postgres
def test_bill_numbers_go_percent_encoded_and_their_signatures_verify(hub, tmp_path):
    desk = _bill_desk(hub, tmp_path)
    # ".." is a bill number the API allows; sent bare, the URL would resolve it away, so the
    # agent sends /api/terminal/bills/%2E%2E and signs exactly that.
    assert desk.create_bill("..", 1_234)["status"] == "open"
    assert desk.bill_status("..")["bill_number"] == ".."
    assert desk.cancel_bill("..")["status"] == "cancelled"
    # A space and a percent sign make no bill number, so the hub has no such bill: it says so,
    # past the signature check.
    with pytest.raises(HubRefused) as refused:
        desk.bill_status("MZ 100%")
    assert (refused.value.status, refused.value.code) == (404, "bill_not_found")
