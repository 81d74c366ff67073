"""The agent in-process against the real hub app: commands once per id, configs with rollback,
key rotation that survives a lost answer."""

from __future__ import annotations

import pytest

from devices.agent.agent import TerminalAgent
from devices.agent.hub_client import HubRefused
from devices.protocol.signing import key_fingerprint
from hub.gateway.firmware import bundled_documents
from tests.devices.agent.conftest import make_agent

# The hub here is only the agent's counterpart; the hub's own tests cover both databases.
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

READER_V1 = next(d for _, d in bundled_documents() if d["model"] == "SSC-CR300")


def _queue(hub, agent, kind, **extra):
    terminal_id = agent.identity.terminal_id
    return hub.ok(
        "POST", f"/api/gateway/terminals/{terminal_id}/commands", json={"kind": kind, **extra}
    )


def _command(hub, agent, command_id):
    detail = hub.terminal(agent.identity.terminal_id)
    return next(c for c in detail["commands"] if c["id"] == command_id)


def _config(hub, **changes):
    return hub.ok(
        "POST", "/api/gateway/configs",
        json={"document": {**READER_V1, "hub_url": "http://testserver", **changes}},
    )  # fmt: skip


def test_enrolled_agent_heartbeats_with_its_identity(enrolled_agent, hub):
    reply = enrolled_agent.beat()
    assert reply.commands == []
    hub.runtime.flush_presence()
    terminal = hub.terminal(enrolled_agent.identity.terminal_id)["terminal"]
    assert terminal["last_sequence"] == 1
    assert terminal["peripherals"] == {"card_reader": "unknown"}


def test_a_command_runs_once_even_when_delivered_twice(enrolled_agent, hub):
    command = _queue(hub, enrolled_agent, "collect_diagnostics")
    enrolled_agent.beat()
    done = _command(hub, enrolled_agent, command["id"])
    assert done["state"] == "succeeded" and done["result"]["outbox_depth"] == 0
    from devices.protocol.messages import CommandMessage

    again = CommandMessage.model_validate(
        {**command, "issued_at": command["created_at"], "payload": {}}
    )
    enrolled_agent.handle(again)
    assert enrolled_agent.outbox.depth() == 0  # nothing new to say


def test_applied_config_is_reported_by_hash(enrolled_agent, hub):
    config = _config(hub, heartbeat_interval_seconds=30)
    command = _queue(hub, enrolled_agent, "apply_config", config_id=config["id"])
    enrolled_agent.beat()
    assert _command(hub, enrolled_agent, command["id"])["state"] == "succeeded"
    assert enrolled_agent.interval == 30
    assert enrolled_agent.heartbeat_message().config_hash == config["hash"]


def test_a_config_whose_hub_does_not_answer_is_rolled_back_and_reported_failed(enrolled_agent, hub):
    good = _config(hub)
    _queue(hub, enrolled_agent, "apply_config", config_id=good["id"])
    enrolled_agent.beat()
    bad = _config(hub, version=2, hub_url="http://127.0.0.1:9")
    command = _queue(hub, enrolled_agent, "apply_config", config_id=bad["id"])
    enrolled_agent.beat()
    failed = _command(hub, enrolled_agent, command["id"])
    assert (failed["state"], failed["result"]["error"]) == ("failed", "hub_unreachable")
    assert enrolled_agent.config.hash == good["hash"]
    assert enrolled_agent.hub_url == "http://testserver"
    assert TerminalAgent(enrolled_agent.state_dir).config.hash == good["hash"]


def test_the_agent_converges_on_its_desired_config_without_a_command(enrolled_agent, hub, db):
    from hub.gateway import repository

    config = _config(hub)
    with db.session() as s:
        repository.set_desired_config(s, [enrolled_agent.identity.terminal_id], config["id"])
        s.commit()
    hub.runtime.directory.forget([(enrolled_agent.identity.terminal_id, None)])
    enrolled_agent.beat()
    assert enrolled_agent.config.hash == config["hash"]
    with db.session() as s:
        events = repository.terminal_messages_of(s, enrolled_agent.identity.terminal_id)
        assert [e.kind for e in events] == ["config.applied"]


def test_reboot_reports_success_and_restarts(enrolled_agent, hub):
    command = _queue(hub, enrolled_agent, "reboot")
    enrolled_agent.beat()
    assert _command(hub, enrolled_agent, command["id"])["state"] == "succeeded"
    assert enrolled_agent.client is not None
    enrolled_agent.beat()


def test_key_rotation_switches_keys(enrolled_agent, hub):
    old_key = enrolled_agent.store.private_key()
    command = _queue(hub, enrolled_agent, "rotate_key")
    enrolled_agent.beat()
    assert _command(hub, enrolled_agent, command["id"])["state"] == "succeeded"
    assert enrolled_agent.store.private_key() != old_key
    keys = hub.terminal(enrolled_agent.identity.terminal_id)["keys"]
    assert [(k["status"], k["revoked_reason"]) for k in keys] == [
        ("active", None),
        ("revoked", "rotated"),
    ]
    enrolled_agent.beat()


def test_a_lost_rotation_answer_does_not_strand_the_terminal(hub, tmp_path, clock):
    agent = make_agent(hub, tmp_path, clock, lose_answers_to="/api/terminal/keys/rotate")
    command = _queue(hub, agent, "rotate_key")
    agent.beat()  # the hub rotated, the answer was lost; the next refusal names the staged key
    assert agent.store.staged_key() is None
    active = [
        k for k in hub.terminal(agent.identity.terminal_id)["keys"] if k["status"] == "active"
    ]
    assert [k["fingerprint"] for k in active] == [
        key_fingerprint(agent.store.private_key().public_key())
    ]
    assert _command(hub, agent, command["id"])["result"]["error"] == "rotation_not_confirmed"
    agent.beat()


def test_disable_locks_the_terminal_locally(enrolled_agent, hub):
    _queue(hub, enrolled_agent, "disable")
    enrolled_agent.beat()
    assert enrolled_agent.disabled
    assert TerminalAgent(enrolled_agent.state_dir).disabled


def test_a_refused_heartbeat_raises_with_the_hubs_code(enrolled_agent, hub):
    hub.ok("POST", f"/api/gateway/terminals/{enrolled_agent.identity.terminal_id}/disable")
    with pytest.raises(HubRefused) as refused:
        enrolled_agent.beat()
    assert refused.value.code == "terminal_disabled"
