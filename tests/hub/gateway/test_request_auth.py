"""Every refusal of a terminal request: its status, its stable code, and its audit entry."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from devices.protocol.messages import HEARTBEAT_PATH
from devices.protocol.signing import HEADER_NONCE, HEADER_SIGNATURE, sign_request
from tests.hub.gateway.conftest import sqlite_only

BEAT = json.dumps(
    {"sequence": 1, "firmware_version": "1.0.0", "heartbeat_interval_seconds": 60}
).encode()


def _send(client, headers, body=BEAT, path=HEARTBEAT_PATH):
    return client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


def _signed(terminal, clock, body=BEAT, *, skew=0, nonce=None, key=None, path=HEARTBEAT_PATH):
    return sign_request(
        key or terminal.key,
        terminal.id,
        "POST",
        path,
        body,
        timestamp=int(clock().timestamp()) + skew,
        nonce=nonce,
    )


def _refused(response, status, code, gateway, db, terminal_id=None):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    refusals = [
        (subject, details["code"])
        for action, subject, details in gateway.audit_actions(db)
        if action == "terminal.request_refused"
    ]
    subject = f"terminal:{terminal_id}" if terminal_id else "terminal:unknown"
    assert (subject, code) in refusals


@pytest.fixture
def terminal(gateway, unit):
    return gateway.new_terminal(unit["id"])


def test_signed_heartbeat_is_accepted(client, terminal, clock):
    response = _send(client, _signed(terminal, clock))
    assert response.status_code == 200
    assert set(response.json()) >= {"next_interval_seconds", "commands", "desired_config"}


@sqlite_only
def test_missing_signature_headers_are_refused(client, gateway, db):
    _refused(_send(client, {}), 401, "signature_missing", gateway, db)


@sqlite_only
def test_malformed_signature_is_refused(client, gateway, db, terminal, clock):
    headers = {**_signed(terminal, clock), HEADER_SIGNATURE: "not-base64!"}
    _refused(_send(client, headers), 401, "signature_malformed", gateway, db, terminal.id)


@sqlite_only
@pytest.mark.parametrize("skew", [-301, 301])
def test_clock_skew_over_five_minutes_is_refused(client, gateway, db, terminal, clock, skew):
    response = _send(client, _signed(terminal, clock, skew=skew))
    _refused(response, 401, "clock_skew", gateway, db, terminal.id)


@sqlite_only
def test_skew_within_five_minutes_is_accepted(client, terminal, clock):
    assert _send(client, _signed(terminal, clock, skew=-299)).status_code == 200


def test_reused_nonce_is_refused(client, gateway, db, terminal, clock):
    headers = _signed(terminal, clock)
    assert _send(client, headers).status_code == 200
    _refused(_send(client, headers), 401, "nonce_reused", gateway, db, terminal.id)


@sqlite_only
def test_unknown_terminal_is_refused(client, gateway, db, terminal, clock):
    headers = sign_request(terminal.key, 999_999, "POST", HEARTBEAT_PATH, BEAT,
                           timestamp=int(clock().timestamp()))  # fmt: skip
    _refused(_send(client, headers), 401, "terminal_unknown", gateway, db, 999_999)


@sqlite_only
def test_terminal_without_an_enrolled_key_is_refused(client, gateway, db, unit, clock):
    registered = gateway.register(unit["id"])
    stranger = gateway.sim(registered, Ed25519PrivateKey.generate())
    response = _send(client, _signed(stranger, clock))
    _refused(response, 401, "key_unknown", gateway, db, registered["id"])


@sqlite_only
def test_wrong_key_is_refused(client, gateway, db, terminal, clock):
    response = _send(client, _signed(terminal, clock, key=Ed25519PrivateKey.generate()))
    _refused(response, 401, "signature_invalid", gateway, db, terminal.id)


@sqlite_only
def test_tampered_body_is_refused(client, gateway, db, terminal, clock):
    headers = _signed(terminal, clock)
    tampered = BEAT.replace(b'"sequence": 1', b'"sequence": 2')
    assert tampered != BEAT
    _refused(_send(client, headers, tampered), 401, "signature_invalid", gateway, db, terminal.id)


@sqlite_only
def test_signature_for_another_path_is_refused(client, gateway, db, terminal, clock):
    headers = _signed(terminal, clock, path="/api/terminal/events")
    _refused(_send(client, headers), 401, "signature_invalid", gateway, db, terminal.id)


ENCODED_HEARTBEAT = "/api/terminal/heart%62eat"  # %62 is "b": the heartbeat's path, encoded


@sqlite_only
def test_the_path_is_signed_as_sent_through_the_heartbeat_lane(client, terminal, clock):
    """The signature covers the path as it travels, percent-encoding kept (the hub verified
    the decoded path, so a client signing what it sent was refused as signature_invalid)."""
    response = _send(
        client, _signed(terminal, clock, path=ENCODED_HEARTBEAT), path=ENCODED_HEARTBEAT
    )
    assert response.status_code == 200, response.text


@sqlite_only
def test_the_path_is_signed_as_sent_through_the_routes(terminal):
    """The agent's client signs what it puts on the wire; the routed endpoints verify that."""
    assert terminal.hub.get("/api/terminal/p%69ng")["terminal_id"] == terminal.id


@sqlite_only
def test_a_signature_over_the_decoded_path_does_not_verify_the_sent_one(
    client, gateway, db, terminal, clock
):
    response = _send(client, _signed(terminal, clock), path=ENCODED_HEARTBEAT)
    _refused(response, 401, "signature_invalid", gateway, db, terminal.id)


def test_re_enrollment_revokes_the_old_key(client, gateway, db, unit, clock):
    registered = gateway.register(unit["id"])
    old = gateway.enrol(registered)
    new = gateway.enrol(registered)  # a new code, a new key pair
    assert _send(client, _signed(new, clock)).status_code == 200
    response = _send(client, _signed(old, clock))
    _refused(response, 401, "key_revoked", gateway, db, registered["id"])
    keys = gateway.terminal(registered["id"])["keys"]
    assert [k["status"] for k in keys] == ["active", "revoked"]
    assert keys[1]["revoked_reason"] == "re-enrolled"


def test_disabled_terminal_is_refused_at_once_and_back_when_enabled(
    client, gateway, db, terminal, clock
):
    assert _send(client, _signed(terminal, clock)).status_code == 200  # now cached
    gateway.ok("POST", f"/api/gateway/terminals/{terminal.id}/disable")
    response = _send(client, _signed(terminal, clock))
    _refused(response, 403, "terminal_disabled", gateway, db, terminal.id)
    gateway.ok("POST", f"/api/gateway/terminals/{terminal.id}/enable")
    assert _send(client, _signed(terminal, clock)).status_code == 200


@sqlite_only
def test_disabled_unit_is_refused(client, gateway, db, unit, terminal, clock):
    assert _send(client, _signed(terminal, clock)).status_code == 200
    gateway.ok("POST", f"/api/gateway/units/{unit['id']}/disable")
    _refused(
        _send(client, _signed(terminal, clock)), 403, "unit_disabled", gateway, db, terminal.id
    )


def test_terminal_acting_for_another_unit_is_refused(client, gateway, db, terminal, clock):
    gateway.unit("H11010500002")
    body = json.dumps({**json.loads(BEAT), "institution_code": "H11010500002"}).encode()
    response = _send(client, _signed(terminal, clock, body), body)
    _refused(response, 403, "unit_mismatch", gateway, db, terminal.id)


@sqlite_only
def test_own_unit_is_accepted(client, terminal, clock):
    body = json.dumps({**json.loads(BEAT), "institution_code": "H11010500001"}).encode()
    assert _send(client, _signed(terminal, clock, body), body).status_code == 200


@sqlite_only
def test_malformed_body_with_a_good_signature_is_422(client, terminal, clock):
    body = b'{"sequence": "many"}'
    response = _send(client, _signed(terminal, clock, body), body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


@sqlite_only
def test_oversized_terminal_body_is_413(client, terminal, clock):
    body = b'{"pad": "' + b"x" * 70_000 + b'"}'
    response = _send(client, _signed(terminal, clock, body), body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@sqlite_only
def test_a_nonce_is_per_terminal(client, gateway, unit, terminal, clock):
    other = gateway.new_terminal(unit["id"])
    nonce = "a" * 32
    assert _send(client, _signed(terminal, clock, nonce=nonce)).status_code == 200
    assert _send(client, _signed(other, clock, nonce=nonce)).status_code == 200


@sqlite_only
@pytest.mark.parametrize("raw", [b"\xff", b"\xc3\xa4"])
def test_a_target_that_is_not_ascii_is_refused_as_malformed(
    client, gateway, db, terminal, clock, raw
):
    """A server may pass on target bytes no client percent-encoded. Signed over the text a
    lenient decoding made of them (U+FFFD, or the UTF-8 letter), such a request verified."""

    async def server(scope, receive, send):  # the hub behind a server that kept those bytes
        await client.app({**scope, "raw_path": scope["raw_path"] + raw}, receive, send)

    as_text = HEARTBEAT_PATH + raw.decode("utf-8", "replace")
    headers = _signed(terminal, clock, path=as_text)
    response = _send(TestClient(server), headers)
    _refused(response, 401, "signature_malformed", gateway, db, terminal.id)


@sqlite_only
def test_nonce_header_must_be_well_formed(client, gateway, db, terminal, clock):
    headers = {**_signed(terminal, clock), HEADER_NONCE: "short"}
    _refused(_send(client, headers), 401, "signature_malformed", gateway, db, terminal.id)


@sqlite_only
def test_oversized_chunked_heartbeat_is_413_without_reading_it_all(client):
    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    response = client.post(HEARTBEAT_PATH, content=chunks())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@sqlite_only
def test_heartbeats_are_counted_in_the_request_metrics(client, terminal, clock):
    _send(client, _signed(terminal, clock))
    metrics = client.get("/metrics").text
    assert (
        'hub_http_requests_total{method="POST",route="/api/terminal/heartbeat",status="200"}'
        in metrics
    )
