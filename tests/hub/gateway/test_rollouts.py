"""Rollouts: a canary group first, success only when the new hash is reported, a pause on
errors (failures and stuck terminals), newcomers joining, and the operator's controls."""

from __future__ import annotations

import pytest

from devices.protocol.messages import command_reply_path
from tests.hub.gateway.conftest import sqlite_only


def _rollout(gateway, config_id, **fields):
    body = {"name": "PIN threshold 200 CNY", "config_id": config_id, **fields}
    rollout = gateway.ok("POST", "/api/gateway/rollouts", json=body)
    return gateway.ok("POST", f"/api/gateway/rollouts/{rollout['id']}/start")


def _progress(gateway, rollout_id):
    gateway.runtime.flush_presence()
    gateway.runtime.evaluate_rollouts()
    return gateway.ok("GET", f"/api/gateway/rollouts/{rollout_id}")


def _groups(progress, *fields):
    return [tuple(g[f] for f in fields) for g in progress["groups"]]


def _apply(terminal, config, outcome="succeeded"):
    """The terminal takes its command, replies, and (on success) runs the new config."""
    (command,) = terminal.heartbeat()["commands"]
    assert command["kind"] == "apply_config" and command["payload"]["hash"] == config["hash"]
    path = command_reply_path(command["id"])
    terminal.hub.post(path, {"message_id": f"{command['id']}.ack", "status": "acknowledged"})
    detail = {} if outcome == "succeeded" else {"error": "hub_unreachable"}
    body = {"message_id": f"{command['id']}.result", "status": outcome, "detail": detail}
    terminal.hub.post(path, body)
    if outcome == "succeeded":
        terminal.config_hash = config["hash"]
        terminal.heartbeat()


@pytest.fixture
def config(gateway):
    return gateway.publish("SSC-CR300", version=2, log_level="warning")


def test_failing_canary_pauses_before_the_second_group(gateway, unit, config):
    canary = [gateway.new_terminal(unit["id"]) for _ in range(2)]
    other_unit = gateway.unit("H11010500002")
    rest = [gateway.new_terminal(other_unit["id"]) for _ in range(4)]
    rollout = _rollout(gateway, config["id"], canary_unit_id=unit["id"], group_count=2)
    assert rollout["groups_total"] == 3
    assert all(t.heartbeat()["commands"] == [] for t in rest)  # the canary goes first

    _apply(canary[0], config, "failed")
    _apply(canary[1], config)
    progress = _progress(gateway, rollout["id"])
    assert progress["rollout"]["status"] == "paused"
    assert "error threshold" in progress["rollout"]["pause_reason"]
    assert _groups(progress, "state", "failed", "succeeded", "pending") == [
        ("done", 1, 1, 0),
        ("waiting", 0, 0, 2),
        ("waiting", 0, 0, 2),
    ]
    _progress(gateway, rollout["id"])  # evaluating a paused rollout starts nothing
    assert all(t.heartbeat()["commands"] == [] for t in rest)


def test_rollout_completes_only_after_every_terminal_reports_the_new_hash(gateway, unit, config):
    terminals = [gateway.new_terminal(unit["id"]) for _ in range(4)]
    rollout = _rollout(gateway, config["id"], canary_size=1, group_count=1)
    canary, *rest = terminals
    reply = canary.heartbeat()
    assert reply["desired_config"]["hash"] == config["hash"]
    (command,) = reply["commands"]
    canary.hub.post(
        command_reply_path(command["id"]),
        {"message_id": "m-canary-ok", "status": "succeeded"},
    )
    progress = _progress(gateway, rollout["id"])  # the command succeeded, the hash is not seen
    assert _groups(progress, "in_progress", "succeeded") == [(1, 0), (0, 0)]

    canary.config_hash = config["hash"]
    canary.heartbeat()
    progress = _progress(gateway, rollout["id"])
    assert _groups(progress, "state", "succeeded", "in_progress") == [
        ("done", 1, 0),
        ("active", 0, 3),
    ]
    for terminal in rest[:2]:
        _apply(terminal, config)
    assert _progress(gateway, rollout["id"])["rollout"]["status"] == "running"
    _apply(rest[2], config)
    progress = _progress(gateway, rollout["id"])
    assert progress["rollout"]["status"] == "completed"
    assert (progress["started"], progress["errors"]) == (4, 0)


def test_a_stuck_terminal_times_out_into_the_error_count(gateway, unit, config, clock):
    reporting, stuck = gateway.new_terminal(unit["id"]), gateway.new_terminal(unit["id"])
    gateway.new_terminal(unit["id"])
    rollout = _rollout(gateway, config["id"], canary_size=2, stuck_timeout_seconds=600)
    _apply(reporting, config)
    stuck.heartbeat()  # takes the command, never answers, never switches
    clock.advance(599)
    assert _progress(gateway, rollout["id"])["rollout"]["status"] == "running"
    clock.advance(2)
    progress = _progress(gateway, rollout["id"])
    assert progress["rollout"]["status"] == "paused"
    assert _groups(progress, "succeeded", "timed_out") == [(1, 1), (0, 0)]
    assert progress["errors"] == 1


@sqlite_only
def test_errors_under_both_thresholds_do_not_pause(gateway, unit, config):
    terminals = [gateway.new_terminal(unit["id"]) for _ in range(3)]
    rollout = _rollout(
        gateway,
        config["id"],
        canary_size=3,
        error_threshold_pct=50,
        error_threshold_count=2,
        success_threshold=0.6,
    )
    _apply(terminals[0], config, "failed")
    for terminal in terminals[1:]:
        _apply(terminal, config)
    progress = _progress(gateway, rollout["id"])
    assert progress["rollout"]["status"] == "completed"
    assert progress["errors"] == 1


@sqlite_only
def test_a_group_settled_below_the_success_threshold_pauses(gateway, unit, config):
    terminals = [gateway.new_terminal(unit["id"]) for _ in range(3)]
    rollout = _rollout(gateway, config["id"], canary_size=3, error_threshold_pct=50)
    _apply(terminals[0], config, "failed")
    for terminal in terminals[1:]:
        _apply(terminal, config)
    progress = _progress(gateway, rollout["id"])
    assert progress["rollout"]["status"] == "paused"
    assert "below the success threshold" in progress["rollout"]["pause_reason"]


@sqlite_only
def test_terminals_enrolled_after_the_start_join_the_last_group(gateway, unit, config):
    first = gateway.new_terminal(unit["id"])
    rollout = _rollout(gateway, config["id"], canary_size=1)
    assert rollout["groups_total"] == 1
    late = gateway.new_terminal(unit["id"])
    other_model = gateway.new_terminal(unit["id"], "SSC-QS210")
    progress = _progress(gateway, rollout["id"])
    assert _groups(progress, "total", "in_progress") == [(2, 2)]
    _apply(late, config)
    _apply(first, config)
    assert other_model.heartbeat()["commands"] == []
    assert _progress(gateway, rollout["id"])["rollout"]["status"] == "completed"


@sqlite_only
def test_operator_pauses_resumes_and_aborts(gateway, unit, config):
    canary, follower = gateway.new_terminal(unit["id"]), gateway.new_terminal(unit["id"])
    rollout = _rollout(gateway, config["id"], canary_size=1)
    base = f"/api/gateway/rollouts/{rollout['id']}"
    assert gateway.ok("POST", f"{base}/pause")["status"] == "paused"
    refused = gateway.client.post(f"{base}/pause")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "rollout_state_invalid")
    _apply(canary, config, "failed")
    assert _progress(gateway, rollout["id"])["rollout"]["status"] == "paused"
    resumed = gateway.ok("POST", f"{base}/resume")
    assert resumed["status"] == "running"
    assert _progress(gateway, rollout["id"])["rollout"]["errors_accepted"] == 1
    assert gateway.ok("POST", f"{base}/abort")["status"] == "aborted"
    reply = follower.heartbeat()
    assert reply["commands"] == [] and reply["desired_config"] is None
    follower_commands = gateway.terminal(follower.id)["commands"]
    assert [c["state"] for c in follower_commands] == ["expired"]


@sqlite_only
def test_a_rollout_needs_matching_terminals(gateway, unit, config):
    gateway.new_terminal(unit["id"], "SSC-QS210")
    rollout = gateway.ok(
        "POST", "/api/gateway/rollouts", json={"name": "nobody", "config_id": config["id"]}
    )
    response = gateway.client.post(f"/api/gateway/rollouts/{rollout['id']}/start")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "rollout_invalid")


def test_an_error_threshold_past_its_column_is_refused(gateway, config):
    """The count is a 32-bit column: 2**31 answered 500 on PostgreSQL, 2**63 on SQLite."""
    for count in (2**31, 2**63):
        body = {"name": "too many", "config_id": config["id"], "error_threshold_count": count}
        response = gateway.client.post("/api/gateway/rollouts", json=body)
        assert response.status_code == 422, response.text
        assert "error_threshold_count" in response.json()["error"]["message"]
