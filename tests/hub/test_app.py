"""The service skeleton: health, metrics, request ids, JSON errors for every kind of bad request."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from hub.app import create_app
from hub.config import Settings
from hub.disbursements import service as disbursements


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_metrics_count_requests_by_route(client):
    client.get("/api/ledger/accounts/1")
    text = client.get("/metrics").text
    assert 'hub_http_requests_total{method="GET",route="/api/ledger/accounts/{account_id}"' in text


def test_request_id_is_echoed_or_made(client):
    assert (
        client.get("/healthz", headers={"x-request-id": "abc123"}).headers["x-request-id"]
        == "abc123"
    )
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/api/ledger/transfers", b"{not json", 422, "invalid_request"),
        ("post", "/api/ledger/transfers", b"[]", 422, "invalid_request"),
        ("get", "/api/nowhere", None, 404, "not_found"),
        ("delete", "/api/ledger/transfers", None, 405, "method_not_allowed"),
        ("get", "/api/ledger/accounts/not-a-number", None, 422, "invalid_request"),
    ],
)
def test_bad_requests_get_json_errors_not_500(client, method, path, body, status, code):
    response = client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text


def test_body_over_the_limit_is_refused_declared_or_streamed(client, settings):
    too_big = b"x" * (settings.max_body_bytes + 1)
    declared = client.post("/api/ledger/transfers", content=too_big)
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "body_too_large")

    def chunks():
        yield b'{"id": "'
        yield too_big
        yield b'"}'

    streamed = client.post(
        "/api/ledger/transfers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert (streamed.status_code, streamed.json()["error"]["code"]) == (413, "body_too_large")


def test_logs_are_json_with_the_request_id(client, capfd):
    client.post("/api/ledger/transfers", json={"id": "x"}, headers={"x-request-id": "req-77"})
    client.post(
        "/api/ledger/transfers",
        json={"id": "x", "amount": 0, "debit_account_id": 1, "credit_account_id": 2, "code": "t"},
        headers={"x-request-id": "req-78"},
    )
    lines = [
        json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")
    ]
    refused = [line for line in lines if line.get("event") == "request_refused"]
    assert refused and refused[-1]["request_id"] == "req-78"


def test_demo_secrets_refuse_to_start_outside_demo_mode():
    with pytest.raises(ValidationError, match="HUB_KEY_ENCRYPTION_KEY"):
        Settings(demo_mode=False)
    secrets = [name for name, f in Settings.model_fields.items() if f.annotation is SecretStr]
    assert len(secrets) >= 4
    Settings(demo_mode=False, **dict.fromkeys(secrets, "x" * 40))


def test_shutdown_closes_the_outbound_http_clients(settings, db, clock):
    app = create_app(settings, database=db, clock=clock, run_workers=False)
    with TestClient(app):
        his = app.state.checkout.his  # made on first use, as a checkout would
        loans = app.state.outbox.handlers[disbursements.CALLBACK_TOPIC].loan_system
        assert not his._http.is_closed and not loans.http.is_closed
    assert his._http.is_closed and loans.http.is_closed
