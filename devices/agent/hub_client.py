"""A small signed HTTP client for talking to the hub as a terminal.

Any terminal flow (heartbeats, card taps, QR scans) uses it:

    client = HubClient("https://hub.example", terminal_id, private_key)
    receipt = client.post("/api/terminal/events", {...})   # parsed JSON, or an exception

Each call is signed afresh (new timestamp and nonce), so a retried or long-queued message is
never refused as a replay or for clock skew. The body sent is exactly the bytes signed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from devices.protocol.signing import sign_request, signed_target

M = TypeVar("M", bound=BaseModel)


class HubUnavailable(Exception):
    """The hub could not be reached or answered 5xx: try again later, nothing was refused."""


class HubAnswerInvalid(HubUnavailable):
    """The hub answered, but not with what the protocol promises (not a JSON object, a field
    missing or of the wrong type): as good as no answer, and the outcome is just as unknown."""


class HubRefused(Exception):
    """The hub answered 4xx; `code` is its stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def encode_body(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()


class HubClient:
    """Signed requests of one terminal to one hub."""

    def __init__(
        self,
        base_url: str,
        terminal_id: int,
        private_key: Ed25519PrivateKey,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.terminal_id = terminal_id
        self.private_key = private_key
        self._http = http or httpx.Client(timeout=timeout)

    def post(self, path: str, json_body: Any) -> dict[str, Any]:
        """POST a JSON body; returns the JSON answer, raises HubRefused or HubUnavailable."""
        return read_answer(self.send("POST", path, encode_body(json_body)))

    def get(self, path: str) -> dict[str, Any]:
        return read_answer(self.send("GET", path, b""))

    def send(self, method: str, path: str, body: bytes) -> httpx.Response:
        """Sign and send raw bytes; the response is returned whatever its status.

        `path` may carry a query string; a segment of free text comes percent-encoded
        (`path_segment`). What is signed is the target as it goes on the wire, so the hub
        verifies exactly what it receives, however the path is encoded."""
        request = self._http.build_request(method, self.base_url + path, content=body)
        request.headers.update(
            sign_request(
                self.private_key,
                self.terminal_id,
                method,
                signed_target(request.url.raw_path),
                body,
                timestamp=int(self.clock()),
            )
        )
        if body:
            request.headers["Content-Type"] = "application/json"
        try:
            return self._http.send(request)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._http.close()


def path_segment(value: str) -> str:
    """One path segment from free text (a bill number, a sale's id), percent-encoded so that
    `?`, `#`, `%`, spaces and a bare `.` or `..` (which clients and proxies would resolve) reach
    the hub as one segment.

    Raises ValueError for an empty value (no segment at all) and for one with `/`: the hub's
    server decodes `%2F` to `/` before routing, so no encoding keeps it one segment."""
    if not value or "/" in value:
        raise ValueError("a path segment is not empty and carries no '/'")
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def post_unsigned(
    base_url: str, path: str, body: Any, *, http: httpx.Client | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """For enrollment only: the terminal has no key yet, the one-time code is the credential."""
    client = http or httpx.Client(timeout=timeout)
    try:
        response = client.post(
            base_url.rstrip("/") + path,
            content=encode_body(body),
            headers={"Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise HubUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        if http is None:
            client.close()
    return read_answer(response)


def read_answer(response: httpx.Response) -> dict[str, Any]:
    """The hub's JSON object; HubUnavailable for 5xx, HubRefused with its code for 4xx, and
    HubAnswerInvalid for any other answer that is not a JSON object (a proxy's page, a 3xx)."""
    if response.status_code >= 500:
        raise HubUnavailable(f"hub answered {response.status_code}")
    try:
        payload = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        payload = None
    if response.status_code >= 400:
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {}
        raise HubRefused(
            response.status_code,
            str(error.get("code", "http_error")),
            str(error.get("message", "")),
        )
    if not 200 <= response.status_code < 300 or not isinstance(payload, dict):
        raise HubAnswerInvalid(f"hub answered {response.status_code} without a JSON object")
    return payload


def parse_answer(model: type[M], payload: Any) -> M:
    """An answer read as the protocol model it must be; HubAnswerInvalid when it is not."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors()[:5])
        raise HubAnswerInvalid(
            f"the hub's answer does not fit {model.__name__}: {fields}"
        ) from None
