"""A real hub process killed with SIGKILL while the platform books the settlement, and a new
hub process started on the same database: its outbox resends the same msgid, learns the
settlement the dead hub never heard of, and posts the money once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from devices.agent.hub_client import HubClient, HubUnavailable
from integrations.medical_insurance.platform import Fault
from tests.hub.checkout.test_worked_example import BILL_LINES
from tests.hub.checkout.window import INSTITUTION, PATH, ZHANG_WEI, Window

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.parametrize("db", ["postgres"], indirect=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def hub_process(window: Window, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`uvicorn hub.app:create_app` in its own process, on the test's database and simulators."""
    port = free_port()
    settings = window.settings
    environment = {
        **os.environ,
        "HUB_DATABASE_URL": settings.database_url,
        "HUB_INSURANCE_BASE_URL": settings.insurance_base_url,
        "HUB_HIS_BASE_URL": settings.his_base_url,
        "HUB_LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "hub.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the hub process exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the hub process did not start")


def terminal_of(window: Window, url: str) -> HubClient:
    """The window's terminal, talking to a real hub over HTTP with the real clock."""
    own = window.terminal
    return HubClient(url, own.terminal_id, own.private_key, timeout=30)


def test_the_hub_killed_while_the_platform_settles_resumes_in_a_new_process(window):
    window.his_bill(*BILL_LINES, bill_no="MZ700001")
    # The first hub waits for the platform and never runs its outbox worker itself.
    with hub_process(
        window,
        HUB_OUTBOX_POLL_SECONDS="3600",
        HUB_CHECKOUT_CALL_LEASE_SECONDS="1",
        HUB_INSURANCE_TIMEOUT_SECONDS="20",
    ) as (first, process):
        terminal = terminal_of(window, first)
        checkout_id = terminal.post(PATH, {"bill_no": "MZ700001"})["checkout_id"]
        split = terminal.post(f"{PATH}/{checkout_id}/identify", {"card": ZHANG_WEI})
        assert split["state"] == "pre_settled"
        # The platform books 2207, then sits on the answer; the hub is killed meanwhile.
        window.sims.platform.add_fault(Fault(kind="timeout_after", infno="2207", hold_seconds=10))
        outcome: list[object] = []
        paying = threading.Thread(
            target=lambda: outcome.append(_post(terminal, f"{PATH}/{checkout_id}/self-pay")),
            daemon=True,
        )
        paying.start()
        _wait_for(lambda: window.sims.platform.booked_settlements() != [])
        process.send_signal(signal.SIGKILL)  # no shutdown, no rollback: the process is gone
        paying.join(timeout=10)
        assert isinstance(outcome[0], HubUnavailable)  # the terminal never heard back

    assert window.view(checkout_id)["state"] == "self_pay_collected"
    assert window.posted("unit_settlement", INSTITUTION) == 0  # held, not moved

    with hub_process(
        window, HUB_OUTBOX_POLL_SECONDS="0.1", HUB_OUTBOX_BACKOFF_BASE_SECONDS="0.2"
    ) as (second, _):
        terminal = terminal_of(window, second)
        _wait_for(lambda: terminal.get(f"{PATH}/{checkout_id}")["state"] == "completed")
        receipt = terminal.get(f"{PATH}/{checkout_id}/receipt")

    (booked,) = window.sims.platform.booked_settlements()
    assert receipt["setl_id"] == booked.setl_id
    assert receipt["split"] == {"medfee": 10_160, "fund": 1_184, "account": 3_000, "cash": 5_976}
    assert window.posted("unit_settlement", INSTITUTION) == 10_160
    assert window.available("K10000001") == 50_000 - 5_976
    assert window.invariants() == []


def _post(terminal: HubClient, path: str) -> object:
    try:
        return terminal.post(path, {"method": "card"})
    except HubUnavailable as exc:
        return exc


def _wait_for(condition: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
