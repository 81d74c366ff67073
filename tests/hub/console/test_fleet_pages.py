"""Units, terminals, enrolment, commands, configs and rollouts through the console's forms."""

from __future__ import annotations

import re

import pytest

from devices.protocol.messages import EnrolmentRequest
from devices.protocol.signing import public_key_text
from hub.audit import service as audit
from hub.gateway import service as gateway
from tests.hub.console.conftest import FIRMWARE

# Page flows over services tested on both databases by the gateway: SQLite keeps this quick.
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _last_audit(db):
    with db.session() as s:
        return audit.recent(s, 1)[0]


def test_operator_registers_a_unit(as_role, db):
    client, csrf = as_role("oscar")
    form = {"institution_code": "h37010200005", "name": "Huaiyin Clinic", "region_code": "370104"}
    answer = client.post("/console/units", data={**form, "csrf_token": csrf})
    assert answer.status_code == 303
    page = client.get("/console/units").text
    assert "Huaiyin Clinic" in page and "H37010200005" in page
    assert _last_audit(db).actor == "operator:oscar"


def test_unit_form_names_the_bad_field(as_role):
    client, csrf = as_role("oscar")
    form = {"institution_code": "H3701", "name": "X", "region_code": "37"}
    answer = client.post("/console/units", data={**form, "csrf_token": csrf})
    assert answer.status_code == 422
    assert 'id="e-region_code"' in answer.text and 'value="X"' in answer.text


def test_duplicate_serial_is_shown_on_the_serial_field(as_role, fleet):
    client, csrf = as_role("oscar")
    form = {"unit_id": str(fleet["unit"]), "serial": "CR300-0001", "model": "SSC-CR300"}
    answer = client.post("/console/terminals", data={**form, "csrf_token": csrf})
    assert answer.status_code == 409
    assert 'id="e-serial"' in answer.text


def test_terminal_search_filters_and_ignores_forged_choices(as_role, fleet):
    client, _ = as_role("vera")
    assert "CR300-0001" in client.get("/console/terminals?text=CR300").text
    assert "No terminals match" in client.get("/console/terminals?text=QS210").text
    forged = client.get("/console/terminals?presence=exploded&kind=%3Cscript%3E")
    assert forged.status_code == 200 and "CR300-0001" in forged.text


def test_viewer_sees_the_terminal_but_no_actions(as_role, fleet):
    client, _ = as_role("vera")
    page = client.get(f"/console/terminals/{fleet['terminal']}")
    assert page.status_code == 200
    assert "No heartbeats yet" in page.text
    assert "enrollment-code" not in page.text and "/disable" not in page.text


def _enrol(client, csrf, db, clock, terminal_id) -> str:
    page = client.post(
        f"/console/terminals/{terminal_id}/enrollment-code", data={"csrf_token": csrf}
    )
    assert page.status_code == 200
    assert 'src="data:image/png;base64,' in page.text
    code = re.search(r'id="enrol-code">([^<]+)<', page.text)[1]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    request = EnrolmentRequest(
        code=code,
        serial="CR300-0001",
        model="SSC-CR300",
        public_key=public_key_text(Ed25519PrivateKey.generate().public_key()),
        firmware_version="1.0.0",
    )
    db.transaction(lambda s: gateway.enrol(s, request, now=clock(), interval=60.0))
    return code


def test_enrolment_code_is_shown_once_and_audited(as_role, fleet, db, clock):
    client, csrf = as_role("oscar")
    _enrol(client, csrf, db, clock, fleet["terminal"])
    with db.session() as s:
        actions = {(e.action, e.actor) for e in audit.recent(s, 10)}
    assert ("terminal.enrollment_code_created", "operator:oscar") in actions
    page = client.get(f"/console/terminals/{fleet['terminal']}").text
    assert "enrol-code" not in page  # only the POST answer ever shows it


def test_commands_are_queued_for_an_enrolled_terminal(as_role, fleet, db, clock):
    client, csrf = as_role("oscar")
    _enrol(client, csrf, db, clock, fleet["terminal"])
    path = f"/console/terminals/{fleet['terminal']}"
    answer = client.post(f"{path}/commands", data={"kind": "reboot", "csrf_token": csrf})
    assert answer.status_code == 303
    page = client.get(path).text
    assert "reboot" in page and "Queued" in page
    forged = client.post(f"{path}/commands", data={"kind": "format_disk", "csrf_token": csrf})
    assert forged.status_code == 422


def test_command_for_a_terminal_not_enrolled_is_refused(as_role, fleet):
    client, csrf = as_role("oscar")
    path = f"/console/terminals/{fleet['terminal']}"
    answer = client.post(f"{path}/commands", data={"kind": "reboot", "csrf_token": csrf})
    assert answer.status_code == 409 or answer.status_code == 422
    assert "No commands yet" in client.get(path).text


def test_disable_and_enable_a_terminal(as_role, fleet):
    client, csrf = as_role("oscar")
    path = f"/console/terminals/{fleet['terminal']}"
    client.post(f"{path}/disable", data={"csrf_token": csrf})
    assert "Enable terminal" in client.get(path).text
    client.post(f"{path}/enable", data={"csrf_token": csrf})
    assert "Disable terminal" in client.get(path).text


def test_config_is_validated_without_publishing(as_role, fleet):
    client, csrf = as_role("oscar")
    text = (FIRMWARE / "SSC-CR300" / "2.yaml").read_text()
    answer = client.post(
        "/console/configs", data={"document": text, "intent": "validate", "csrf_token": csrf}
    )
    assert answer.status_code == 200 and "Valid. Hash" in answer.text
    assert '<td class="num">v2</td>' not in client.get("/console/configs").text


def test_bad_config_is_refused_with_the_reason(as_role, fleet):
    client, csrf = as_role("oscar")
    for text in ("model: [unclosed", "model: SSC-CR300\nversion: 9\n"):
        answer = client.post(
            "/console/configs", data={"document": text, "intent": "publish", "csrf_token": csrf}
        )
        assert answer.status_code == 422
        assert 'id="e-document"' in answer.text


def test_config_is_published(as_role, fleet, db):
    client, csrf = as_role("oscar")
    text = (FIRMWARE / "SSC-CR300" / "2.yaml").read_text()
    answer = client.post(
        "/console/configs", data={"document": text, "intent": "publish", "csrf_token": csrf}
    )
    assert answer.status_code == 303
    assert "quiet beep" in client.get(answer.headers["location"]).text
    assert _last_audit(db).action == "config.published"


def test_rollout_without_terminals_cannot_start(as_role, fleet):
    client, csrf = as_role("oscar")
    path = f"/console/rollouts/{fleet['rollout']}"
    answer = client.post(f"{path}/start", data={"csrf_token": csrf})
    assert answer.status_code == 422
    assert "Draft" in client.get(path).text


def test_rollout_life_cycle(as_role, fleet, db, clock):
    client, csrf = as_role("oscar")
    _enrol(client, csrf, db, clock, fleet["terminal"])
    path = f"/console/rollouts/{fleet['rollout']}"
    assert "Draft" in client.get(path).text
    assert client.post(f"{path}/start", data={"csrf_token": csrf}).status_code == 303
    assert "Draft" not in client.get(path).text
    assert client.post(f"{path}/pause", data={"csrf_token": csrf}).status_code == 303
    assert "Paused" in client.get(path).text
    assert client.post(f"{path}/resume", data={"csrf_token": csrf}).status_code == 303
    assert "Resume" not in client.get(path).text
    assert client.post(f"{path}/abort", data={"csrf_token": csrf}).status_code == 303
    assert "Aborted" in client.get(path).text
    again = client.post(f"{path}/start", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert client.post(f"{path}/explode", data={"csrf_token": csrf}).status_code == 404


def test_rollout_form_names_bad_fields(as_role, fleet):
    client, csrf = as_role("oscar")
    answer = client.post(
        "/console/rollouts",
        data={
            "name": "",
            "config_id": str(fleet["config"]),
            "group_count": "0",
            "csrf_token": csrf,
        },
    )
    assert answer.status_code == 422
    assert 'id="e-name"' in answer.text and 'id="e-group_count"' in answer.text
