"""The hub's clients in the day, each behaving as its real counterpart does after a fault.

A terminal signs every request with its own key (`devices.agent.hub_client.HubClient`) and
its own clock; when no answer comes (lost, cut off) it sends the same body again, freshly
signed, and after a `clock_skew` refusal it sets its clock right and sends again. The
cardholder app and the loan system retry the same way over their own credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.agent.hub_client import HubClient, HubRefused, HubUnavailable
from integrations.loans.client import ClientKey, DisbursementApi

ATTEMPTS = 6  # a step has at most a few faults; more failures than this is a finding


class NoAnswer(Exception):
    """A client gave up: the hub did not answer after every retry."""


class Terminal:
    """One enrolled terminal: signed requests, retried like the agent retries them."""

    def __init__(
        self,
        terminal_id: int,
        serial: str,
        key: Ed25519PrivateKey,
        http: httpx.Client,
        clock: Callable[[], float],
    ) -> None:
        self.id = terminal_id
        self.serial = serial
        self.hub = HubClient(str(http.base_url), terminal_id, key, http=http, clock=clock)
        self.retried = False  # whether the last call needed more than one attempt

    def post(self, path: str, body: Any) -> dict[str, Any]:
        return self._call(lambda: self.hub.post(path, body))

    def get(self, path: str) -> dict[str, Any]:
        return self._call(lambda: self.hub.get(path))

    def _call(self, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.retried = False
        for _ in range(ATTEMPTS):
            try:
                return send()
            except HubUnavailable:
                pass  # no answer: the same body again
            except HubRefused as refusal:
                if refusal.code != "clock_skew":
                    raise
            self.retried = True
        raise NoAnswer(f"terminal {self.serial} got no answer")


class App:
    """The cardholder app of one card: bearer-token requests."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        return _retried(lambda: self.http.post(path, json=body, headers=self.headers))


class LoanSystem:
    """The loan system's signed client of the disbursement API."""

    def __init__(self, http: httpx.Client, key: ClientKey, clock: Callable[[], float]) -> None:
        self.api = DisbursementApi(http, key, clock=clock)

    def create(self, order: Mapping[str, Any]) -> httpx.Response:
        return _retried(lambda: self.api.create(order))

    def undo(self, external_id: str) -> httpx.Response:
        return _retried(lambda: self.api.undo(external_id, "borrower cancelled"))


def _retried(send: Callable[[], httpx.Response]) -> httpx.Response:
    for _ in range(ATTEMPTS):
        try:
            response = send()
        except httpx.TransportError:
            continue
        if response.status_code == 401 and error_code(response) == "timestamp_stale":
            continue  # the clock was off: set right, send again
        return response
    raise NoAnswer("no answer from the hub")


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"
