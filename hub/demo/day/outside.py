"""The systems outside the bank on one day, each a real HTTP server on a loopback port: the
insurance platform and the HIS (both simulators, in this process so the day can inject the
platform's faults and read its books), and the loan system's callback endpoint."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from hub.demo.day.clock import SimClock
from integrations.his.simulator import HisSimulator
from integrations.his.simulator import create_app as his_app
from integrations.loans.simulator import CallbackInbox, CallbackServer
from integrations.medical_insurance.simulator import InsurancePlatform
from integrations.medical_insurance.simulator import create_app as insurance_app


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="critical", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the simulators did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


@dataclass
class Outside:
    """The insurance platform, the HIS and the loan system's callback endpoint of one day."""

    platform: InsurancePlatform
    his: HisSimulator
    inbox: CallbackInbox
    insurance_url: str
    his_url: str
    callback_url: str


@contextmanager
def outside(seed: int, clock: SimClock) -> Iterator[Outside]:
    platform = InsurancePlatform()  # the demo district's insured persons and catalogue
    his = HisSimulator(seed=seed)  # generates the same MZ bills for the same seed
    app = Starlette(
        routes=[Mount("/insurance", insurance_app(platform)), Mount("/his", his_app(his))]
    )
    inbox = CallbackInbox({}, clock=lambda: clock().timestamp())
    with serving(app) as url, CallbackServer(inbox) as callbacks:
        yield Outside(platform, his, inbox, f"{url}/insurance", f"{url}/his", callbacks.url)
