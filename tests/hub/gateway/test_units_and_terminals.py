"""Units and terminals as bank operations see them: registration, CSV import, search."""

from __future__ import annotations

from hub.gateway.models import Terminal
from tests.hub.gateway.conftest import sqlite_only

CSV = """serial,model,hardware_revision
CR300A0001,SSC-CR300,B2
QS210B0001,SSC-QS210,
CR300A0001,SSC-CR300,B2
,SSC-CR300,
CT500C0001,ACME-X1,
CT500C0002,SSC-CT500,
"""


@sqlite_only
def test_units_are_unique_by_institution_code(gateway, unit):
    again = gateway.client.post(
        "/api/gateway/units",
        json={
            "institution_code": unit["institution_code"],
            "name": "Again",
            "region_code": "110105",
        },
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "unit_exists")


@sqlite_only
def test_registration_checks_model_kind_and_serial(gateway, unit):
    post = lambda body: gateway.client.post("/api/gateway/terminals", json=body)  # noqa: E731
    base = {"unit_id": unit["id"], "serial": "CR300A0009", "model": "SSC-CR300"}
    assert post(base).status_code == 201
    cases = [
        (base, 409, "serial_taken"),
        ({**base, "serial": "X0000001", "model": "ACME-X1"}, 422, "unknown_model"),
        ({**base, "serial": "X0000002", "kind": "qr_scanner"}, 422, "kind_mismatch"),
        ({**base, "serial": "X0000003", "unit_id": 999}, 404, "unit_not_found"),
        ({**base, "serial": "bad serial!"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        response = post(body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body


def test_csv_import_reports_each_row_and_keeps_the_good_ones(gateway, unit, db):
    response = gateway.client.post(
        f"/api/gateway/units/{unit['id']}/terminals/import",
        content=CSV.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200
    results = [(r["line"], r["serial"], r["result"]) for r in response.json()]
    assert results == [
        (2, "CR300A0001", "created"),
        (3, "QS210B0001", "created"),
        (4, "CR300A0001", "exists"),
        (5, None, "invalid_row"),
        (6, "CT500C0001", "unknown_model"),
        (7, "CT500C0002", "created"),
    ]
    with db.session() as s:
        kinds = {t.serial: (t.kind, t.hardware_revision) for t in s.query(Terminal)}
    assert kinds == {
        "CR300A0001": ("card_reader", "B2"),
        "QS210B0001": ("qr_scanner", None),
        "CT500C0002": ("combo", None),
    }


@sqlite_only
def test_csv_without_serial_and_model_columns_is_refused_whole(gateway, unit, db):
    response = gateway.client.post(
        f"/api/gateway/units/{unit['id']}/terminals/import", content=b"serial\nCR300A0001\n"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "import_invalid")
    with db.session() as s:
        assert s.query(Terminal).count() == 0


def test_terminals_are_searched_by_unit_kind_model_presence_and_text(gateway, unit):
    other = gateway.unit("H44030500007", region="440305")
    reader = gateway.new_terminal(unit["id"])
    scanner = gateway.new_terminal(other["id"], "SSC-QS210")
    registered = gateway.register(other["id"], "SSC-CT500")

    def ids(query):
        page = gateway.ok("GET", f"/api/gateway/terminals?{query}")
        return [t["id"] for t in page["items"]]

    assert ids("") == [reader.id, scanner.id, registered["id"]]
    assert ids(f"unit_id={other['id']}") == [scanner.id, registered["id"]]
    assert ids("kind=qr_scanner") == [scanner.id]
    assert ids("model=SSC-CT500") == [registered["id"]]
    assert ids("presence=online") == [reader.id, scanner.id]
    assert ids("status=registered") == [registered["id"]]
    assert ids("text=h44030") == [scanner.id, registered["id"]]
    assert ids(f"text={reader.serial.lower()}") == [reader.id]
    assert ids("limit=1&offset=1") == [scanner.id]
    assert gateway.ok("GET", "/api/gateway/terminals?limit=1")["total"] == 3


@sqlite_only
def test_terminal_detail_shows_keys_presence_events_and_commands(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    gateway.ok("POST", f"/api/gateway/terminals/{terminal.id}/commands", json={"kind": "reboot"})
    detail = gateway.terminal(terminal.id)
    assert detail["unit"]["institution_code"] == unit["institution_code"]
    assert [k["status"] for k in detail["keys"]] == ["active"]
    assert "public_key" not in detail["keys"][0]
    assert [(e["from_presence"], e["to_presence"]) for e in detail["presence_events"]] == [
        ("offline", "online")
    ]
    assert [c["kind"] for c in detail["commands"]] == ["reboot"]


@sqlite_only
def test_ops_api_needs_the_token(gateway):
    response = gateway.client.get("/api/gateway/units", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")
