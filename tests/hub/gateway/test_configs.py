"""Publishing configurations: validated first, named by hash, one document per version."""

from __future__ import annotations

import pytest

from devices.agent.hub_client import HubRefused
from devices.protocol.firmware import config_hash
from hub.gateway.firmware import bundled_documents
from tests.hub.gateway.conftest import sqlite_only


def _publish(gateway, document):
    return gateway.client.post("/api/gateway/configs", json={"document": document})


def _bundled(model):
    return next(dict(d) for _, d in bundled_documents() if d["model"] == model)


def test_a_valid_config_is_published_under_its_hash(gateway):
    document = _bundled("SSC-CT500")
    response = _publish(gateway, document)
    assert response.status_code == 201
    published = response.json()
    assert (published["model"], published["version"]) == ("SSC-CT500", 1)
    assert published["hash"] == config_hash(document)
    assert gateway.ok("GET", f"/api/gateway/configs/{published['id']}")["document"] == document


@sqlite_only
def test_publishing_the_same_document_again_returns_the_first(gateway):
    first = _publish(gateway, _bundled("SSC-QS210")).json()
    again = _publish(gateway, _bundled("SSC-QS210")).json()
    assert again == first
    assert len(gateway.ok("GET", "/api/gateway/configs?model=SSC-QS210")) == 1


@sqlite_only
def test_another_document_under_a_published_version_is_refused(gateway):
    _publish(gateway, _bundled("SSC-CR300"))
    changed = {**_bundled("SSC-CR300"), "log_level": "debug"}
    response = _publish(gateway, changed)
    assert (response.status_code, response.json()["error"]["code"]) == (
        409,
        "config_version_exists",
    )


@sqlite_only
def test_invalid_configs_are_refused_with_the_reason(gateway):
    reader = _bundled("SSC-CR300")
    cases = [
        ({**reader, "heartbeat_interval_seconds": 0}, "config_invalid"),
        ({**reader, "scanner": _bundled("SSC-QS210")["scanner"]}, "config_invalid"),
        ({k: v for k, v in reader.items() if k != "card_reader"}, "config_invalid"),
        ({**reader, "kind": "qr_scanner"}, "config_invalid"),  # the catalog says otherwise
        ({**reader, "surprise": True}, "config_invalid"),
        ({**reader, "model": "ACME-X1"}, "unknown_model"),
    ]
    for document, code in cases:
        response = _publish(gateway, document)
        assert (response.status_code, response.json()["error"]["code"]) == (422, code), document
    assert gateway.ok("GET", "/api/gateway/configs") == []


@sqlite_only
def test_a_terminal_fetches_its_desired_config(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    refused = gateway.client.get("/api/terminal/config")
    assert refused.status_code == 401
    with pytest.raises(HubRefused) as refused:
        terminal.hub.get("/api/terminal/config")
    assert refused.value.code == "no_desired_config"
