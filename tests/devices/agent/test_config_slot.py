"""Applying a configuration atomically, keeping the last good one, rolling back on failure."""

from __future__ import annotations

import pytest

from devices.agent.configs import ConfigRejected, ConfigSlot
from devices.protocol.firmware import config_hash
from devices.protocol.messages import ConfigEnvelope
from hub.gateway.firmware import bundled_documents

READER_V1, READER_V2 = (d for _, d in bundled_documents() if d["model"] == "SSC-CR300")


def _envelope(document, config_id=1, hash_=None):
    return ConfigEnvelope(
        config_id=config_id,
        version=document["version"],
        hash=hash_ or config_hash(document),
        document=document,
    )


def test_apply_switches_and_keeps_the_previous_as_last_good(tmp_path):
    slot, activated = ConfigSlot(tmp_path), []
    slot.apply(_envelope(READER_V1), activated.append)
    slot.apply(_envelope(READER_V2, 2), activated.append)
    assert slot.current().envelope.version == 2
    assert [c.envelope.version for c in activated] == [1, 2]
    assert ConfigEnvelope.model_validate_json(slot.last_good_path.read_bytes()).version == 1


def test_a_document_that_does_not_match_its_hash_is_refused_before_any_write(tmp_path):
    slot = ConfigSlot(tmp_path)
    slot.apply(_envelope(READER_V1), lambda c: None)
    with pytest.raises(ConfigRejected) as refused:
        slot.apply(_envelope(READER_V2, 2, hash_=config_hash(READER_V1)[::-1]), lambda c: None)
    assert refused.value.reason == "hash_mismatch"
    assert slot.current().envelope.version == 1
    assert not slot.last_good_path.exists()


def test_a_document_that_does_not_load_is_refused(tmp_path):
    slot = ConfigSlot(tmp_path)
    broken = {**READER_V2, "card_reader": None}
    with pytest.raises(ConfigRejected) as refused:
        slot.apply(_envelope(broken), lambda c: None)
    assert refused.value.reason == "invalid"
    assert slot.current() is None


def test_failed_activation_rolls_back_to_the_last_good(tmp_path):
    slot, running = ConfigSlot(tmp_path), []

    def activate(loaded):
        if loaded.envelope.version == 2:
            raise ConnectionError("new hub URL does not answer")
        running.append(loaded.envelope.version)

    slot.apply(_envelope(READER_V1), activate)
    with pytest.raises(ConfigRejected) as refused:
        slot.apply(_envelope(READER_V2, 2), activate)
    assert refused.value.reason == "activation_failed"
    assert slot.current().envelope.version == 1
    assert running == [1, 1]  # the old one put back in force


def test_a_torn_current_file_falls_back_to_the_last_good_at_start(tmp_path):
    slot = ConfigSlot(tmp_path)
    slot.apply(_envelope(READER_V1), lambda c: None)
    slot.apply(_envelope(READER_V2, 2), lambda c: None)
    slot.current_path.write_bytes(slot.current_path.read_bytes()[:100])  # power cut mid-write
    assert ConfigSlot(tmp_path).current().envelope.version == 1


def test_applying_the_running_config_again_changes_nothing(tmp_path):
    slot, activated = ConfigSlot(tmp_path), []
    slot.apply(_envelope(READER_V1), activated.append)
    slot.apply(_envelope(READER_V1), activated.append)
    assert len(activated) == 1
