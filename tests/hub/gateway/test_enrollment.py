"""Enrollment codes and enrolling: one use, expiry, the QR code, nothing half-written."""

from __future__ import annotations

import base64
import hashlib
import io
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from pyzbar.pyzbar import decode as read_qr

from hub.gateway.models import EnrollmentCode, TerminalKey
from tests.hub.gateway.conftest import sqlite_only


def _error(response):
    return response.status_code, response.json()["error"]["code"]


def test_enrolled_terminal_gets_its_id_and_interval_and_is_online(gateway, unit):
    registered = gateway.register(unit["id"])
    key = Ed25519PrivateKey.generate()
    response = gateway.enrol_request(registered, gateway.code_for(registered["id"]), key)
    assert response.status_code == 201
    body = response.json()
    assert body["terminal_id"] == registered["id"]
    assert body["institution_code"] == "H11010500001"
    assert body["kind"] == "card_reader"
    assert body["heartbeat_interval_seconds"] == 60
    terminal = gateway.terminal(registered["id"])["terminal"]
    assert (terminal["status"], terminal["presence"]) == ("active", "online")


@sqlite_only
def test_code_is_shown_once_as_text_and_qr_and_kept_only_as_a_hash(gateway, unit, db):
    registered = gateway.register(unit["id"])
    out = gateway.ok("POST", f"/api/gateway/terminals/{registered['id']}/enrollment-codes")
    png = Image.open(io.BytesIO(base64.b64decode(out["qr_png_base64"])))
    (symbol,) = read_qr(png)
    assert symbol.data.decode() == out["qr_payload"]
    fields = parse_qs(urlsplit(out["qr_payload"]).query)
    assert fields["code"] == [out["code"]] and fields["serial"] == [registered["serial"]]
    with db.session() as s:
        (stored,) = s.query(EnrollmentCode).all()
    assert out["code"] not in stored.code_hash
    normalised = out["code"].replace("-", "")
    assert stored.code_hash == hashlib.sha256(normalised.encode()).hexdigest()


def test_a_code_works_once(gateway, unit):
    registered = gateway.register(unit["id"])
    code = gateway.code_for(registered["id"])
    assert gateway.enrol_request(registered, code, Ed25519PrivateKey.generate()).status_code == 201
    again = gateway.enrol_request(registered, code, Ed25519PrivateKey.generate())
    assert _error(again) == (409, "enrollment_code_used")


@sqlite_only
def test_an_expired_code_is_refused(gateway, unit, clock):
    registered = gateway.register(unit["id"])
    code = gateway.code_for(registered["id"])
    clock.advance(24 * 3600 + 1)
    response = gateway.enrol_request(registered, code, Ed25519PrivateKey.generate())
    assert _error(response) == (401, "enrollment_code_expired")


@sqlite_only
def test_a_newer_code_withdraws_the_older_one(gateway, unit):
    registered = gateway.register(unit["id"])
    older = gateway.code_for(registered["id"])
    newer = gateway.code_for(registered["id"])
    refused = gateway.enrol_request(registered, older, Ed25519PrivateKey.generate())
    assert _error(refused) == (401, "enrollment_code_invalid")
    assert gateway.enrol_request(registered, newer, Ed25519PrivateKey.generate()).status_code == 201


@sqlite_only
def test_code_of_another_serial_is_refused(gateway, unit):
    first, second = gateway.register(unit["id"]), gateway.register(unit["id"])
    code = gateway.code_for(first["id"])
    response = gateway.enrol_request(second, code, Ed25519PrivateKey.generate())
    assert _error(response) == (401, "enrollment_code_invalid")


@sqlite_only
def test_unknown_model_and_other_model_are_refused(gateway, unit):
    registered = gateway.register(unit["id"])
    code = gateway.code_for(registered["id"])
    key = Ed25519PrivateKey.generate()
    unknown = gateway.enrol_request({**registered, "model": "ACME-X1"}, code, key)
    assert _error(unknown) == (422, "unknown_model")
    other = gateway.enrol_request({**registered, "model": "SSC-QS210"}, code, key)
    assert _error(other) == (422, "model_mismatch")
    # Neither attempt used the code.
    assert gateway.enrol_request(registered, code, key).status_code == 201


def test_refused_enrollment_writes_nothing_but_an_audit_entry(gateway, unit, db):
    registered = gateway.register(unit["id"])
    code = gateway.code_for(registered["id"])
    bad_key = {"public_key": base64.b64encode(b"short").decode().ljust(44, "A")}
    response = gateway.client.post(
        "/api/terminal/enrol",
        json={
            "code": code,
            "serial": registered["serial"],
            "model": registered["model"],
            "firmware_version": "1.0.0",
            **bad_key,
        },
    )
    assert _error(response) == (422, "invalid_public_key")
    with db.session() as s:
        assert s.query(TerminalKey).count() == 0
        assert s.query(EnrollmentCode).one().used_at is None
    assert gateway.terminal(registered["id"])["terminal"]["status"] == "registered"
    refusals = [d for a, _, d in gateway.audit_actions(db) if a == "terminal.enrol_refused"]
    assert refusals == [{"code": "invalid_public_key", "serial": registered["serial"],
                         "model": "SSC-CR300"}]  # fmt: skip


@sqlite_only
def test_one_key_cannot_serve_two_terminals(gateway, unit):
    key = Ed25519PrivateKey.generate()
    gateway.enrol(gateway.register(unit["id"]), key)
    other = gateway.register(unit["id"])
    response = gateway.enrol_request(other, gateway.code_for(other["id"]), key)
    assert _error(response) == (409, "public_key_in_use")


@sqlite_only
def test_disabled_terminal_gets_no_code_and_cannot_enrol(gateway, unit):
    registered = gateway.register(unit["id"])
    code = gateway.code_for(registered["id"])
    gateway.ok("POST", f"/api/gateway/terminals/{registered['id']}/disable")
    refused = gateway.client.post(f"/api/gateway/terminals/{registered['id']}/enrollment-codes")
    assert _error(refused) == (403, "terminal_disabled")
    # Disabling withdrew the code it had.
    response = gateway.enrol_request(registered, code, Ed25519PrivateKey.generate())
    assert _error(response) == (401, "enrollment_code_invalid")


@sqlite_only
def test_malformed_enrolment_body_is_422(gateway):
    response = gateway.client.post("/api/terminal/enrol", json={"code": 12})
    assert _error(response) == (422, "invalid_request")
