"""The technician's path end to end: the agent as its own process against a hub served by
uvicorn on a loopback port. Code -> enrol -> online -> command -> config applied."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from devices.agent.agent import TerminalAgent
from hub.gateway.firmware import bundled_documents
from tests.devices.agent.conftest import AGENT, ROOT, HubNetwork, HubServer, run_agent, wait_for

pytestmark = pytest.mark.postgres


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json()


def _registered_terminal(ops: httpx.Client, model: str = "SSC-CR300") -> dict[str, Any]:
    unit = _ok(
        ops.post(
            "/api/gateway/units",
            json={
                "institution_code": "H11010500001",
                "name": "Chaoyang Hospital",
                "region_code": "110105",
            },
        )
    )
    body = {"unit_id": unit["id"], "serial": "CR300A0001", "model": model}
    return _ok(ops.post("/api/gateway/terminals", json=body))


def _start_agent(state_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SSHUB_AGENT_STATE_DIR": str(state_dir),
        "SSHUB_AGENT_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([*AGENT, "run"], env=env, cwd=ROOT)


def test_technician_path_code_enrol_online_command_config(hub_server: HubServer, tmp_path: Path):
    ops = hub_server.ops()
    terminal = _registered_terminal(ops)
    code = _ok(ops.post(f"/api/gateway/terminals/{terminal['id']}/enrollment-codes"))

    # The technician scans the QR code into the agent.
    enrolled = run_agent(
        "enrol", "--qr", code["qr_payload"], "--model", "SSC-CR300", state_dir=tmp_path
    )
    assert f"enrolled as terminal {terminal['id']}" in enrolled.stdout

    agent = _start_agent(tmp_path)
    try:
        detail = lambda: _ok(ops.get(f"/api/gateway/terminals/{terminal['id']}"))  # noqa: E731
        wait_for(lambda: (detail()["terminal"]["last_sequence"] or 0) >= 2)
        assert detail()["terminal"]["presence"] == "online"

        # A command goes out with a heartbeat, is acknowledged, and succeeds.
        command = _ok(
            ops.post(
                f"/api/gateway/terminals/{terminal['id']}/commands",
                json={"kind": "collect_diagnostics"},
            )
        )
        done = wait_for(lambda: _command(detail(), command["id"], "succeeded"))
        assert done["acknowledged_at"] is not None
        assert done["result"]["agent_version"] == "1.0.0"

        # A config for this hub is applied and the terminal reports its hash.
        document = _document("SSC-CR300", hub_url=hub_server.url, heartbeat_interval_seconds=1)
        config = _ok(ops.post("/api/gateway/configs", json={"document": document}))
        apply = _ok(
            ops.post(
                f"/api/gateway/terminals/{terminal['id']}/commands",
                json={"kind": "apply_config", "config_id": config["id"]},
            )
        )
        wait_for(lambda: detail()["terminal"]["reported_config_hash"] == config["hash"])
        assert _command(detail(), apply["id"], "succeeded")["result"]["hash"] == config["hash"]
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)

    after = TerminalAgent(tmp_path)  # what the agent left on disk
    assert after.config.hash == config["hash"]
    assert after.outbox.depth() == 0


@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_outbox_survives_a_hub_outage_and_each_message_is_applied_once(
    hub_server_down: HubServer, hub, tmp_path: Path, pg
):
    # Enrolled while the hub answered (its app in-process), for the hub URL of the real server.
    unit = hub.unit()
    registered = hub.register(unit["id"])
    in_process = httpx.Client(transport=HubNetwork(hub.client, host="127.0.0.1"))
    TerminalAgent(tmp_path, http=in_process).enrol(
        hub_server_down.url, hub.code_for(registered["id"]), registered["serial"], "SSC-CR300"
    )

    agent = TerminalAgent(tmp_path)  # the real network from now on; nobody listens yet
    queued = [agent.report_event("paper_low", {"tray": n}) for n in range(3)]
    agent.drain()  # hub down: nothing leaves, nothing is lost
    assert agent.outbox.pending_ids() == queued
    assert TerminalAgent(tmp_path).outbox.pending_ids() == queued  # and it is on disk

    hub_server_down.start()
    agent.drain()
    assert agent.outbox.depth() == 0

    # The agent crashed before deleting them: the same messages go again, the hub keeps one each.
    for message_id in queued:
        agent.outbox.put("/api/terminal/events", _event(message_id), message_id)
    agent.drain()
    assert agent.outbox.depth() == 0 and agent.outbox.dead() == []

    from hub.gateway import repository

    with pg.session() as session:
        stored = repository.terminal_messages_of(session, registered["id"])
    assert [m.message_id for m in stored] == queued  # in order, with their original ids
    assert [m.detail for m in stored] == [{"tray": 0}, {"tray": 1}, {"tray": 2}]


def _event(message_id: str) -> dict[str, Any]:
    return {"message_id": message_id, "kind": "paper_low", "occurred_at": "2026-11-29T08:00:00Z"}


def _command(detail: dict[str, Any], command_id: str, state: str) -> dict[str, Any] | None:
    found = next(c for c in detail["commands"] if c["id"] == command_id)
    return found if found["state"] == state else None


def _document(model: str, **changes: Any) -> dict[str, Any]:
    document = next(dict(d) for _, d in bundled_documents() if d["model"] == model)
    return {**document, **changes}
