"""Wire messages: the strictness terminals rely on and the config hash both sides compute."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devices.protocol.firmware import config_hash
from devices.protocol.messages import (
    CommandReply,
    EnrolmentRequest,
    Heartbeat,
    HeartbeatReply,
    command_reply_path,
)


def test_config_hash_ignores_key_order_and_whitespace_but_not_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert config_hash({"a": 1}) != config_hash({"a": True})
    assert config_hash({"text": "医保"}) == config_hash({"text": "医保"})


def test_heartbeat_refuses_unknown_fields_and_bad_values():
    good = {"sequence": 1, "firmware_version": "1.0.0", "heartbeat_interval_seconds": 60}
    assert Heartbeat.model_validate(good).outbox_depth == 0
    for bad in [
        {**good, "surprise": 1},
        {**good, "sequence": -1},
        {**good, "sequence": "1"},
        {**good, "config_hash": "ABC"},
        {**good, "peripherals": {"card_reader": "on fire"}},
        {**good, "heartbeat_interval_seconds": 0},
        {**good, "institution_code": "h1; drop"},
    ]:
        with pytest.raises(ValidationError):
            Heartbeat.model_validate(bad)


def test_a_reply_with_a_newer_command_kind_still_parses():
    reply = HeartbeatReply.model_validate(
        {
            "next_interval_seconds": 60,
            "hub_time": "2026-11-29T08:00:00Z",
            "commands": [
                {
                    "id": "a" * 32,
                    "kind": "format_disk_v2",
                    "issued_at": "2026-11-29T08:00:00Z",
                    "expires_at": "2026-11-30T08:00:00Z",
                }
            ],
            "added_later": True,
        }
    )
    assert reply.commands[0].kind == "format_disk_v2"


def test_command_replies_and_enrolment_are_strict():
    with pytest.raises(ValidationError):
        CommandReply.model_validate({"message_id": "m1234567", "status": "done"})
    with pytest.raises(ValidationError):
        EnrolmentRequest.model_validate(
            {
                "code": "X" * 19,
                "serial": "SN 1",
                "model": "SSC-CR300",
                "public_key": "k" * 44,
                "firmware_version": "1",
            }
        )
    assert command_reply_path("ab") == "/api/terminal/commands/ab/reply"
