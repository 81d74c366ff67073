"""The hub under test and the network in front of it.

The hub runs in this process (a Starlette TestClient on the app from `create_app`), because a
crash must be exact: dropping the app object loses what a dead process loses (nonce cache,
terminal cache, presence board, insurance clients, posting queue) and nothing else, at a chosen
point, on every replay. Every client of the day (terminals, the cardholder app, the loan
system) talks to it through `Network`, an httpx transport that loses, doubles or cuts requests
as the step's faults say. The insurance platform, the HIS and the loan system's callback
endpoint are real HTTP servers, because the hub reaches them with its own HTTP clients.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy import event

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.demo.day.faults import DUPLICATE, KILLED, LOST, KillSwitch, StepFaults
from hub.outbox.worker import OutboxWorker

with warnings.catch_warnings():  # the in-process hub is on purpose; the notice is noise here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE_URL = "http://hub.day"


class HubFailed(Exception):
    """The hub answered 5xx: a user must never see one (DESIGN §7)."""


class Hub:
    """One hub process on the day's database; `crash` replaces it with a fresh one."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime], rng: random.Random):
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.starts = 0
        self._start()

    def _start(self) -> None:
        self.db = Database(self.settings.database_url)
        self.kill = KillSwitch()
        event.listen(self.db.sessions, "before_commit", self.kill.before_commit)
        self.app = create_app(self.settings, database=self.db, clock=self.clock, run_workers=False)
        self.client = TestClient(self.app, base_url=BASE_URL)
        self.client.__enter__()
        # The app's own worker, sharing its checkout flow: the wiring a deployed hub runs.
        self.outbox: OutboxWorker = self.app.state.outbox
        self.outbox.rng = random.Random(self.rng.getrandbits(64))  # retry jitter, replayable
        self.starts += 1

    def run_outbox(self, kill_before_commit: int = 0) -> int | None:
        """One outbox run; None when the hub died in it (before that commit) and was restarted."""
        kill, delivered = self.kill, 0
        kill.arm(kill_before_commit)
        try:
            delivered = self.outbox.drain()
        except Exception:
            if not kill.fired:
                raise
        finally:
            kill.disarm()
        if not kill.fired:
            return delivered
        self.crash()
        return None

    def crash(self) -> None:
        """The process dies: everything it held in memory is gone, the database stays."""
        self.stop()
        self._start()

    def stop(self) -> None:
        self.client.__exit__(None, None, None)  # the app's shutdown closes its outbox's clients
        self.db.dispose()


class Network(httpx.BaseTransport):
    """Delivers each request to the hub as it now is; loses, doubles or cuts it on cue."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.faults = StepFaults()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.faults.next_request()
        kind = fault.kind if fault else None
        kill = self.hub.kill
        if fault is not None and kind == KILLED:
            kill.arm(fault.detail)
        try:
            answer = self._deliver(request)
            if fault is not None and kind == DUPLICATE:
                self._duplicate(request, after_restart=fault.detail == 1)
        except Exception:
            if not kill.fired:  # whatever the hub made of its own death, it died
                raise
        finally:
            kill.disarm()
        if fault is not None and kind == KILLED:
            # It dies before that commit, or, done sooner, before its answer leaves.
            where = f"commit{fault.detail}" if kill.fired else "answer"
            self.faults.note(KILLED, f"{KILLED}@{where}")
            self.hub.crash()
            raise httpx.RemoteProtocolError("the hub went away", request=request)
        if kind == LOST:
            self.faults.note(LOST)
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return answer

    def _duplicate(self, request: httpx.Request, *, after_restart: bool) -> None:
        """The same signed bytes once more: at once (the nonce cache refuses it), or after the
        hub restarted, whose nonce cache is gone (then only idempotency keeps money still)."""
        if after_restart:
            self.hub.crash()
        again = self._deliver(request)
        late = " after a restart" if after_restart else ""
        self.faults.note(DUPLICATE, f"{DUPLICATE}{late}→{again.status_code}{_code(again)}")

    def _deliver(self, request: httpx.Request) -> httpx.Response:
        inner = self.hub.client.send(request)
        if inner.status_code >= 500:
            raise HubFailed(f"{request.method} {request.url.path} answered {inner.status_code}")
        return httpx.Response(inner.status_code, headers=inner.headers, content=inner.content)


def _code(response: httpx.Response) -> str:
    """The stable error code of a refusal, for the log (' nonce_reused'), or ''."""
    if response.status_code < 400:
        return ""
    try:
        return f" {response.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return ""
