"""A real hub for agent tests: `uvicorn hub.app:create_app --factory` in a subprocess on a free
loopback port, on the test's PostgreSQL database, with short gateway intervals.

    def test_x(hub_server):
        hub_server.url            # http://127.0.0.1:<port>
        hub_server.ops(...)       # an httpx client with the ops token
        hub_server.stop(); hub_server.start()   # a hub outage, same port, same database
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.db import Database

ROOT = Path(__file__).resolve().parents[3]
OPS_TOKEN = "agent-test-ops-token"
AGENT = [sys.executable, "-m", "devices.agent.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubServer:
    def __init__(self, database_url: str, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "HUB_DATABASE_URL": database_url,
            "HUB_OPS_API_TOKEN": OPS_TOKEN,
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_GATEWAY_PUBLIC_URL": self.url,
            "HUB_GATEWAY_HEARTBEAT_INTERVAL_SECONDS": "0.5",
            "HUB_GATEWAY_PRESENCE_FLUSH_SECONDS": "0.2",
            "HUB_GATEWAY_CHANGE_POLL_SECONDS": "0.2",
            "HUB_GATEWAY_ROLLOUT_SECONDS": "0.3",
            **settings,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "hub.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("hub did not start within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.process = None

    def ops(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture
def hub_server(pg: Database) -> Iterator[HubServer]:
    """A hub served by uvicorn on the `pg` test database (tables emptied after the test)."""
    server = HubServer(pg.url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hub_server_down(pg: Database) -> Iterator[HubServer]:
    """The same, not started yet: the test starts it when the hub should come up."""
    server = HubServer(pg.url)
    yield server
    server.stop()


def run_agent(*args: str, state_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one `sshub-agent` command as its own process."""
    env = {
        **os.environ,
        "SSHUB_AGENT_STATE_DIR": str(state_dir),
        "SSHUB_AGENT_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [*AGENT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=check
    )


def wait_for(condition: Any, timeout: float = 15.0, every: float = 0.1) -> Any:
    """Poll until `condition()` returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")


# --- in-process: the agent object against the hub app through the FastAPI test client -------


@pytest.fixture
def hub(client: Any, clock: Any) -> Any:
    from tests.hub.gateway.conftest import GatewayDriver

    return GatewayDriver(client, clock)


class HubNetwork(httpx.BaseTransport):
    """The network between agent and hub app: only `host` answers (the app, in-process), and
    the answers to `lose_answers_to` are dropped after the hub has handled the request."""

    def __init__(
        self, client: httpx.Client, lose_answers_to: str | None = None, host: str = "testserver"
    ) -> None:
        self.client, self.lose_answers_to, self.host = client, lose_answers_to, host

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != self.host:
            raise httpx.ConnectError("connection refused", request=request)
        response = self.client.send(request)
        response.read()
        if request.url.path == self.lose_answers_to:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )


def make_agent(hub: Any, state_dir: Path, clock: Any, lose_answers_to: str | None = None) -> Any:
    """A TerminalAgent enrolled with a new SSC-CR300 of a new unit, on the test clock."""
    from devices.agent.agent import TerminalAgent

    unit = hub.unit()
    registered = hub.register(unit["id"])
    network = httpx.Client(transport=HubNetwork(hub.client, lose_answers_to))
    agent = TerminalAgent(state_dir, http=network, clock=lambda: clock().timestamp())
    agent.enrol(
        "http://testserver", hub.code_for(registered["id"]), registered["serial"], "SSC-CR300"
    )
    return agent


@pytest.fixture
def enrolled_agent(hub: Any, tmp_path: Path, clock: Any) -> Any:
    return make_agent(hub, tmp_path, clock)
