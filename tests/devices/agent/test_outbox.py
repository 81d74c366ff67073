"""The outbox: in order, with original ids, deleted only on the hub's acknowledgement; a
message that can never succeed is set aside instead of blocking the rest."""

from __future__ import annotations

import pytest

from devices.agent.hub_client import HubClient
from devices.agent.outbox import Outbox, OutboxFull, connect
from devices.protocol.messages import EVENTS_PATH

# The hub is only the counterpart here; its own tests cover both databases.
sqlite_hub = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _event(message_id, kind="paper_low"):
    return {"message_id": message_id, "kind": kind, "occurred_at": "2026-11-29T08:00:00Z"}


def _stored(db, terminal_id):
    from hub.gateway import repository

    with db.session() as s:
        return [m.message_id for m in repository.terminal_messages_of(s, terminal_id)]


@sqlite_hub
def test_messages_leave_in_order_and_only_once(enrolled_agent, db):
    outbox = enrolled_agent.outbox
    ids = [f"event-{n:04d}" for n in range(5)]
    for message_id in ids:
        assert outbox.put(EVENTS_PATH, _event(message_id), message_id)
    assert not outbox.put(EVENTS_PATH, _event(ids[0]), ids[0])  # the same id is one message
    report = outbox.drain(enrolled_agent.client, batch=3)
    assert (report.delivered, report.remaining) == (3, 2)
    outbox.drain(enrolled_agent.client)
    assert _stored(db, enrolled_agent.identity.terminal_id) == ids


@sqlite_hub
def test_a_message_the_hub_can_never_accept_is_set_aside(enrolled_agent, db):
    outbox = enrolled_agent.outbox
    outbox.put(EVENTS_PATH, _event("event-bad", kind="Not A Kind"), "event-bad")
    outbox.put(EVENTS_PATH, _event("event-good"), "event-good")
    report = outbox.drain(enrolled_agent.client)
    assert (report.delivered, report.dead, report.remaining) == (1, 1, 0)
    assert outbox.dead() == [
        {"message_id": "event-bad", "path": EVENTS_PATH, "error": "invalid_request"}
    ]
    assert _stored(db, enrolled_agent.identity.terminal_id) == ["event-good"]


@sqlite_hub
def test_a_refusal_that_may_pass_keeps_the_message_and_the_order(enrolled_agent, hub, db):
    outbox = enrolled_agent.outbox
    outbox.put(EVENTS_PATH, _event("event-001"), "event-001")
    outbox.put(EVENTS_PATH, _event("event-002"), "event-002")
    terminal_id = enrolled_agent.identity.terminal_id
    hub.ok("POST", f"/api/gateway/terminals/{terminal_id}/disable")
    report = outbox.drain(enrolled_agent.client)
    assert (report.stopped_by, report.remaining) == ("terminal_disabled", 2)
    hub.ok("POST", f"/api/gateway/terminals/{terminal_id}/enable")
    assert outbox.drain(enrolled_agent.client).remaining == 0
    assert _stored(db, terminal_id) == ["event-001", "event-002"]


@sqlite_hub
def test_an_unreachable_hub_stops_the_drain_and_loses_nothing(enrolled_agent, tmp_path):
    outbox = enrolled_agent.outbox
    outbox.put(EVENTS_PATH, _event("event-001"), "event-001")
    offline = HubClient("http://127.0.0.1:9", 1, enrolled_agent.store.private_key(), timeout=1)
    report = outbox.drain(offline)
    assert (report.stopped_by, report.remaining) == ("hub_unavailable", 1)


def test_a_full_outbox_refuses_new_work(tmp_path):
    outbox = Outbox(connect(tmp_path / "agent.db"), max_messages=2)
    outbox.put(EVENTS_PATH, _event("event-001"), "event-001")
    outbox.put(EVENTS_PATH, _event("event-002"), "event-002")
    with pytest.raises(OutboxFull):
        outbox.put(EVENTS_PATH, _event("event-003"), "event-003")


def test_messages_past_their_age_are_set_aside(tmp_path):
    outbox = Outbox(connect(tmp_path / "agent.db"))
    outbox.put(EVENTS_PATH, _event("event-old"), "event-old")
    outbox.conn.execute("UPDATE outbox SET created_at = created_at - 100 * 3600")
    outbox.put(EVENTS_PATH, _event("event-new"), "event-new")
    assert outbox.expire(max_age_hours=72) == 1
    assert outbox.pending_ids() == ["event-new"]


def test_the_outbox_survives_the_process(tmp_path):
    Outbox(connect(tmp_path / "agent.db")).put(EVENTS_PATH, _event("event-001"), "event-001")
    assert Outbox(connect(tmp_path / "agent.db")).pending_ids() == ["event-001"]
