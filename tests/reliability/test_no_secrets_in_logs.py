"""What users must never see (DESIGN §7), checked on the logs of a working district: the hub's
structured logs, the agents' logs and the simulators' log files over enrolments, heartbeats,
card taps (one with an online PIN), payment and bill codes, checkouts, loans and a console
sign-in, at DEBUG. No full PAN, PIN block, key, card key or password appears in any of them."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import httpx
import pytest

from devices.pcsc.models import TerminalData
from devices.pcsc.tap import read_card
from devices.protocol.card_payments import CARD_PAYMENTS_PATH
from hub.config import DEMO_SECRET, Settings
from hub.db import utcnow
from hub.demo.district import District, DistrictOptions, free_port
from hub.demo.seed import DEMO_CARDS, DEMO_OPERATOR, DEMO_OPERATOR_PASSWORD
from hub.issuer import service as issuer
from hub.issuer.keys import IssuerSecrets

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PIN = "246810"


def _pin_tap(district: District) -> str:
    """A tap above the online-PIN threshold: the PIN block travels; returns it (hex)."""
    assert district.traffic is not None
    holder = district.traffic.cardholders[1]
    flow = district.traffic.windows[0].taps
    secrets = IssuerSecrets.from_settings(district.settings)
    district.db.transaction(lambda s: issuer.set_pin(s, holder.card_number, PIN, secrets, utcnow()))
    flow.pin_pad = lambda: PIN
    amount = district.settings.card_pin_threshold_fen + 100
    with holder.lock:
        channel = holder.channel()
        try:
            terminal = TerminalData(amount=amount)
            read = read_card(channel, terminal)
            body = flow._request(read, terminal, f"pin-{time.time_ns()}")
            flow.client.post(CARD_PAYMENTS_PATH, body)
        finally:
            channel.close()
    return str(body["pin_block"])


def _console_sign_in(hub_url: str) -> None:
    with httpx.Client(base_url=hub_url, follow_redirects=False) as browser:
        token = CSRF.search(browser.get("/console/login").text)
        assert token is not None
        answer = browser.post(
            "/console/login",
            data={
                "username": DEMO_OPERATOR,
                "password": DEMO_OPERATOR_PASSWORD,
                "csrf_token": token[1],
            },
        )
        assert answer.status_code == 303, answer.text
        # A wrong password is logged as a refusal, never with the password it tried.
        browser.post(
            "/console/login",
            data={"username": DEMO_OPERATOR, "password": "wrong-" + DEMO_OPERATOR_PASSWORD},
        )


def test_a_working_district_logs_no_pan_pin_block_key_or_password(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hub.db'}", log_level="DEBUG")
    options = DistrictOptions(
        units=1,
        rate=10.0,
        state_dir=tmp_path / "demo",
        hub_port=free_port(),
        insurance_port=free_port(),
        his_port=free_port(),
        loans_port=free_port(),
        heartbeat_seconds=1.0,
        seed=11,
    )
    district = District(settings, options, say=lambda _line: None)
    district.start()
    try:
        pin_block = _pin_tap(district)
        _console_sign_in(district.hub_url)
        assert district.traffic is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and sum(district.traffic.outcomes().values()) < 25:
            time.sleep(0.5)
        card_keys = [h.chip.profile.icc_master_key for h in district.traffic.cardholders]
        loan_secret = district.traffic.loans.api.key.secret
    finally:
        district.stop()
    assert sum(district.traffic.outcomes().values()) >= 10  # the run did real work

    captured = capfd.readouterr()
    simulator_logs = "".join(p.read_text() for p in (options.state_dir / "logs").glob("*.log"))
    logs = "\n".join([captured.out, captured.err, caplog.text, simulator_logs])
    assert '"event"' in captured.err  # the hub logged, at DEBUG
    assert "623170******" in logs  # and the taps were logged, by their masked numbers
    forbidden = {
        **{f"PAN of {number}": pan for number, _c, _n, _id, pan, _b in DEMO_CARDS},
        "PIN block": pin_block,
        "PIN": f'"{PIN}"',
        "operator password": DEMO_OPERATOR_PASSWORD,
        "demo secret (keys and tokens)": DEMO_SECRET,
        "loan client secret": loan_secret,
        **{f"card key {n}": key for n, key in enumerate(card_keys)},
    }
    found = [name for name, secret in forbidden.items() if secret.lower() in logs.lower()]
    assert found == []
