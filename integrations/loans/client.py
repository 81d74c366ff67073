"""The contract between SSC Hub and the loan system, and the HTTP clients of both directions.

Both directions sign the same way: HMAC-SHA256 under the loan client's secret over
`METHOD \\n target \\n timestamp \\n sha256(body)`, where target is the path with its query
string and timestamp is Unix seconds. Headers carry the key id, the timestamp and the hex
signature; callbacks also carry the event id the loan system de-duplicates on.

- `LoanSystem` is what the hub needs from the loan system (deliver a callback);
  `HttpLoanSystem` is its HTTP implementation.
- `DisbursementApi` is the loan system's side: it sends orders to the hub's API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

KEY_ID_HEADER = "X-SSC-Key-Id"
TIMESTAMP_HEADER = "X-SSC-Timestamp"
SIGNATURE_HEADER = "X-SSC-Signature"
EVENT_ID_HEADER = "X-SSC-Event-Id"
MAX_SKEW_SECONDS = 300
DISBURSEMENTS_PATH = "/api/loans/disbursements"
# The daily reconciliation file: this header, `disbursement` and `undo` rows, then the trailer
# `trailer,<date>,<disbursements>,<disbursed_fen>,<undos>,<undone_fen>,<net_fen>,`.
EXPORT_HEADER = (
    "record",
    "external_id",
    "loan_ref",
    "card_number",
    "amount_fen",
    "transfer_id",
    "original_transfer_id",
    "posted_at",
)

Clock = Callable[[], float]


@dataclass(frozen=True, repr=False)
class ClientKey:
    """A loan client's key id and secret; repr=False keeps the secret out of logs."""

    key_id: str
    secret: str


def string_to_sign(method: str, target: str, timestamp: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{target}\n{timestamp}\n{digest}".encode()


def sign(secret: str, method: str, target: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of the request under the client's secret."""
    base = string_to_sign(method, target, timestamp, body)
    return hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signature_valid(
    secret: str, method: str, target: str, timestamp: int, body: bytes, signature: str
) -> bool:
    expected = sign(secret, method, target, timestamp, body)
    return hmac.compare_digest(expected, signature.lower())


def timestamp_fresh(timestamp: int, now: float, max_skew: int = MAX_SKEW_SECONDS) -> bool:
    return abs(now - timestamp) <= max_skew


def signed_headers(
    key: ClientKey, method: str, target: str, body: bytes, now: float
) -> dict[str, str]:
    timestamp = int(now)
    return {
        KEY_ID_HEADER: key.key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key.secret, method, target, timestamp, body),
    }


def id_number_check(id_number: str, key: bytes) -> str:
    """The borrower's identity check: HMAC-SHA256 hex of the upper-cased ID number.

    The loan system and the hub hold the same key, so the ID number itself never travels.
    """
    return hmac.new(key, id_number.strip().upper().encode(), hashlib.sha256).hexdigest()


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The bytes that are signed and sent: stable key order, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_target(url: httpx.URL) -> str:
    """Path and query as sent on the wire, which is what both sides sign."""
    return url.raw_path.decode("ascii")


# The hub's side: delivering callbacks.


class LoanSystemUnreachable(Exception):
    """No answer (refused, reset, timed out): worth retrying."""


class CallbackRejected(Exception):
    """The loan system answered with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"loan system answered {status}")
        self.status = status

    @property
    def permanent(self) -> bool:
        # A 4xx will not change by sending the same bytes again, except timeouts and throttling.
        return 400 <= self.status < 500 and self.status not in (408, 425, 429)


class LoanSystem(Protocol):
    """What the hub needs from the loan system."""

    def send_callback(self, url: str, key: ClientKey, event_id: str, body: bytes) -> None:
        """Deliver one signed callback; raise LoanSystemUnreachable or CallbackRejected."""
        ...


class HttpLoanSystem:
    """`LoanSystem` over HTTP(S)."""

    def __init__(
        self, *, timeout: float = 5.0, clock: Clock = time.time, http: httpx.Client | None = None
    ) -> None:
        self.http = http or httpx.Client(timeout=timeout)
        self.clock = clock

    def send_callback(self, url: str, key: ClientKey, event_id: str, body: bytes) -> None:
        target = request_target(httpx.URL(url))
        headers = signed_headers(key, "POST", target, body, self.clock())
        headers |= {EVENT_ID_HEADER: event_id, "Content-Type": "application/json"}
        try:
            response = self.http.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise LoanSystemUnreachable(type(exc).__name__) from exc
        if not response.is_success:
            raise CallbackRejected(response.status_code)

    def close(self) -> None:
        self.http.close()


# The loan system's side: sending orders.


class DisbursementApi:
    """The loan system's client of the hub's disbursement API; every request is signed.

    `http` carries the hub's base URL (an `httpx.Client(base_url=...)`). Answers are returned
    as they come: the caller reads the status and the `{"error": {"code"}}` body.
    """

    def __init__(self, http: httpx.Client, key: ClientKey, *, clock: Clock = time.time) -> None:
        self.http = http
        self.key = key
        self.clock = clock

    def create(self, order: Mapping[str, Any]) -> httpx.Response:
        return self._send("POST", DISBURSEMENTS_PATH, order)

    def get(self, external_id: str) -> httpx.Response:
        return self._send("GET", f"{DISBURSEMENTS_PATH}/{external_id}")

    def undo(self, external_id: str, reason: str | None = None) -> httpx.Response:
        body = {"reason": reason} if reason else {}
        return self._send("POST", f"{DISBURSEMENTS_PATH}/{external_id}/undo", body)

    def list(self, **filters: str | int) -> httpx.Response:
        return self._send("GET", DISBURSEMENTS_PATH, params=filters)

    def _send(
        self,
        method: str,
        path: str,
        document: Mapping[str, Any] | None = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        body = canonical_json(document) if document is not None else b""
        request = self.http.build_request(
            method, path, content=body, params=params, headers={"Content-Type": "application/json"}
        )
        request.headers.update(
            signed_headers(self.key, method, request_target(request.url), body, self.clock())
        )
        return self.http.send(request)
