"""Commands: queued -> sent -> acknowledged -> succeeded/failed/expired, delivered with
heartbeats, re-sent without an acknowledgement, and kept across a hub restart."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from devices.agent.hub_client import HubRefused
from devices.protocol.messages import command_reply_path
from hub.app import create_app
from hub.gateway import service
from tests.hub.gateway.conftest import GatewayDriver, sqlite_only


def _queue(gateway, terminal_id, kind="reboot", **extra):
    body = {"kind": kind, **extra}
    return gateway.ok("POST", f"/api/gateway/terminals/{terminal_id}/commands", json=body)


def _state(gateway, terminal_id, command_id):
    commands = gateway.terminal(terminal_id)["commands"]
    return next(c for c in commands if c["id"] == command_id)


def _reply(terminal, command_id, status, n=0, **detail):
    body = {"message_id": f"{command_id}.{status}{n}", "status": status, "detail": detail}
    return terminal.hub.post(command_reply_path(command_id), body)


def test_command_goes_out_with_the_next_heartbeat_and_counts_on_acknowledgement(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    assert terminal.heartbeat()["commands"] == []
    queued = _queue(gateway, terminal.id, "collect_diagnostics")
    assert queued["state"] == "queued"
    (delivered,) = terminal.heartbeat()["commands"]
    assert (delivered["id"], delivered["kind"]) == (queued["id"], "collect_diagnostics")
    assert _state(gateway, terminal.id, queued["id"])["state"] == "sent"
    assert terminal.heartbeat()["commands"] == []  # sent, not yet due again
    assert _reply(terminal, queued["id"], "acknowledged")["applied"] is True
    assert _state(gateway, terminal.id, queued["id"])["state"] == "acknowledged"
    receipt = _reply(terminal, queued["id"], "succeeded", uptime_seconds=5)
    assert receipt == {"command_id": queued["id"], "state": "succeeded", "applied": True}
    done = _state(gateway, terminal.id, queued["id"])
    assert done["result"] == {"uptime_seconds": 5} and done["finished_at"]


@sqlite_only
def test_a_repeated_reply_changes_nothing(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    command = _queue(gateway, terminal.id)
    terminal.heartbeat()
    _reply(terminal, command["id"], "failed", error="reader_jammed")
    assert _reply(terminal, command["id"], "failed", 1)["applied"] is False
    assert _reply(terminal, command["id"], "acknowledged")["applied"] is False
    with pytest.raises(HubRefused) as refused:
        _reply(terminal, command["id"], "succeeded")
    assert (refused.value.status, refused.value.code) == (409, "command_closed")


@sqlite_only
def test_unacknowledged_command_is_sent_again_with_the_same_id(gateway, unit, clock):
    terminal = gateway.new_terminal(unit["id"])
    command = _queue(gateway, terminal.id)
    first = terminal.heartbeat()["commands"]
    clock.advance(119)  # resent after two intervals
    assert terminal.heartbeat()["commands"] == []
    clock.advance(2)
    again = terminal.heartbeat()["commands"]
    assert [c["id"] for c in again] == [c["id"] for c in first] == [command["id"]]
    assert _state(gateway, terminal.id, command["id"])["attempts"] == 2


def test_retry_budget_spent_fails_the_command(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    command = _queue(gateway, terminal.id, max_attempts=2)
    for _ in range(3):
        terminal.heartbeat()
        clock.advance(121)
    db.transaction(lambda s: service.close_overdue_commands(s, clock()))
    failed = _state(gateway, terminal.id, command["id"])
    assert (failed["state"], failed["attempts"]) == ("failed", 2)
    assert failed["result"]["error"] == "not_acknowledged"


def test_command_expires_and_a_late_reply_is_refused(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    command = _queue(gateway, terminal.id, ttl_seconds=60)
    clock.advance(61)
    db.transaction(lambda s: service.close_overdue_commands(s, clock()))
    assert _state(gateway, terminal.id, command["id"])["state"] == "expired"
    assert terminal.heartbeat()["commands"] == []
    with pytest.raises(HubRefused) as refused:
        _reply(terminal, command["id"], "acknowledged")
    assert refused.value.code == "command_closed"


@sqlite_only
def test_a_terminal_cannot_answer_another_terminals_command(gateway, unit):
    owner, other = gateway.new_terminal(unit["id"]), gateway.new_terminal(unit["id"])
    command = _queue(gateway, owner.id)
    with pytest.raises(HubRefused) as refused:
        _reply(other, command["id"], "succeeded")
    assert (refused.value.status, refused.value.code) == (404, "command_not_found")


def test_queued_commands_survive_a_hub_restart(gateway, unit, settings, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    command = _queue(gateway, terminal.id, "rotate_key")
    restarted = create_app(settings, database=db, clock=clock, run_workers=False)
    with TestClient(restarted) as fresh_client:
        fresh = GatewayDriver(fresh_client, clock).sim(
            {"id": terminal.id, "serial": terminal.serial, "model": terminal.model}, terminal.key
        )
        (delivered,) = fresh.heartbeat()["commands"]
    assert delivered["id"] == command["id"]


@sqlite_only
def test_apply_config_needs_a_config_of_the_terminals_model(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    scanner_config = gateway.publish("SSC-QS210")
    for body, code in [
        ({"kind": "apply_config"}, "command_invalid"),
        ({"kind": "apply_config", "config_id": scanner_config["id"]}, "command_invalid"),
        ({"kind": "apply_config", "config_id": 999}, "config_not_found"),
        ({"kind": "reboot", "config_id": scanner_config["id"]}, "command_invalid"),
        ({"kind": "self_destruct"}, "invalid_request"),
    ]:
        response = gateway.client.post(f"/api/gateway/terminals/{terminal.id}/commands", json=body)
        assert response.json()["error"]["code"] == code, body


@sqlite_only
def test_apply_config_carries_the_document_and_its_hash(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    config = gateway.publish("SSC-CR300")
    _queue(gateway, terminal.id, "apply_config", config_id=config["id"])
    (command,) = terminal.heartbeat()["commands"]
    assert command["payload"]["hash"] == config["hash"]
    assert command["payload"]["document"]["model"] == "SSC-CR300"


@sqlite_only
def test_rotate_key_replaces_the_key_and_revokes_the_old(gateway, unit, db):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from devices.protocol.signing import public_key_text

    terminal = gateway.new_terminal(unit["id"])
    new_key = Ed25519PrivateKey.generate()
    body = {"public_key": public_key_text(new_key.public_key())}
    receipt = terminal.hub.post("/api/terminal/keys/rotate", body)
    assert receipt["terminal_id"] == terminal.id
    with pytest.raises(HubRefused) as refused:
        terminal.heartbeat()
    assert refused.value.code == "key_revoked"
    terminal.hub.private_key = new_key
    assert terminal.heartbeat()["commands"] == []
