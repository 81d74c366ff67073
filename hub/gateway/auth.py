"""Authentication of terminal requests: Ed25519 signatures, clock skew, replay, key and status.

Other domains' terminal endpoints depend on `TerminalCaller`:

    @router.post("/api/terminal/payments")
    def pay(caller: TerminalCaller, ...) -> ...:  # caller.terminal_id, caller.unit_id, ...

Every refusal is a `TerminalRefused` (401 or 403 with a stable code) and is written to the audit
trail in its own committed transaction, because the request's own work never happens.

Authentication must cost microseconds, not a database round trip: terminals are read from an
in-memory cache (`TerminalDirectory`) that is dropped entry by entry when a key is revoked or a
terminal or unit is disabled (see changes.py for how other processes learn of that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import structlog
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from devices.protocol.signing import (
    HEADER_TERMINAL,
    SignatureError,
    SignedHeaders,
    check_skew,
    parse_signed_headers,
    signed_target,
    verify_signature,
)
from hub.audit import service as audit
from hub.gateway.directory import TerminalEntry
from hub.gateway.errors import BodyTooLarge, NonceCacheFull, TerminalRefused
from hub.gateway.models import TerminalStatus, UnitStatus

if TYPE_CHECKING:
    from hub.gateway.runtime import GatewayRuntime

log = structlog.get_logger()


@dataclass(frozen=True)
class AuthenticatedTerminal:
    """The terminal behind a request whose signature, clock, nonce and status all passed."""

    terminal_id: int
    unit_id: int
    institution_code: str
    kind: str
    serial: str


class NonceCache:
    """Nonces seen inside the skew window, bucketed by the request's own signed timestamp.

    A replay carries the same signed timestamp as the original, so a nonce is remembered only
    until that timestamp leaves the skew window; after that the clock check refuses the request
    anyway. Memory is bounded: at most `max_entries` (full means 503, never forgetting early).

    The cache lives in this process. With several hub processes a replay sent to another
    process would pass: route each terminal to one process (sticky on X-SSC-Terminal at the
    load balancer) or move this set to a shared store (Redis SET NX EX, or a unique table).
    """

    BUCKET = 60

    def __init__(self, window: int, max_entries: int) -> None:
        self.window = window
        self.max_entries = max_entries
        self._buckets: dict[int, set[int]] = {}
        self._size = 0
        self._pruned_at = -1

    def remember(self, terminal_id: int, timestamp: int, nonce: str, now: float) -> bool:
        """False when this terminal already used this nonce at this timestamp."""
        self._prune(now)
        bucket = self._buckets.setdefault(timestamp // self.BUCKET, set())
        # A 64-bit hash, randomised per process: a collision only refuses one honest request.
        key = hash((terminal_id, nonce))
        if key in bucket:
            return False
        if self._size >= self.max_entries:
            raise NonceCacheFull(message="too many requests in flight, retry shortly")
        bucket.add(key)
        self._size += 1
        return True

    def _prune(self, now: float) -> None:
        minute = int(now) // self.BUCKET
        if minute == self._pruned_at:
            return
        self._pruned_at = minute
        for start in [b for b in self._buckets if (b + 1) * self.BUCKET + self.window < now]:
            self._size -= len(self._buckets.pop(start))

    def __len__(self) -> int:
        return self._size


def _signed_path(request: Request) -> str:
    """The target as the terminal sent and signed it: the raw path, not the decoded one."""
    scope = request.scope
    # A server that keeps no raw path: the decoded path, encoded the way HTTP clients encode.
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    return signed_target(raw, scope.get("query_string", b""))


def _check(
    entry: TerminalEntry | None,
    signed: SignedHeaders,
    request: Request,
    body: bytes,
    runtime: GatewayRuntime,
    now: float,
) -> AuthenticatedTerminal:
    """The in-memory part of authentication; raises TerminalRefused."""
    if entry is None:
        raise TerminalRefused("terminal_unknown", "no such terminal")
    path = _signed_path(request)
    if entry.key is None or not verify_signature(entry.key, signed, request.method, path, body):
        if any(verify_signature(k, signed, request.method, path, body) for k in entry.revoked_keys):
            raise TerminalRefused("key_revoked", "this key has been revoked")
        if entry.key is None:
            raise TerminalRefused("key_unknown", "the terminal has no enrolled key")
        raise TerminalRefused("signature_invalid", "signature does not verify")
    if not runtime.nonces.remember(signed.terminal_id, signed.timestamp, signed.nonce, now):
        raise TerminalRefused("nonce_reused", "this nonce was already used")
    if entry.terminal_status == TerminalStatus.DISABLED:
        raise TerminalRefused("terminal_disabled", "the terminal is disabled", 403)
    if entry.unit_status == UnitStatus.DISABLED:
        raise TerminalRefused("unit_disabled", "the terminal's unit is disabled", 403)
    return AuthenticatedTerminal(
        entry.terminal_id, entry.unit_id, entry.institution_code, entry.kind, entry.serial
    )


def _claimed_terminal(request: Request) -> int | None:
    """The terminal id a request names, even when the rest of its headers are broken."""
    value = request.headers.get(HEADER_TERMINAL, "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


async def authenticate_terminal(request: Request) -> AuthenticatedTerminal:
    """FastAPI dependency: the verified terminal behind this request, or a 401/403/413."""
    runtime: GatewayRuntime = request.app.state.gateway
    body = await request.body()
    if len(body) > runtime.settings.gateway_terminal_body_bytes:
        raise BodyTooLarge(message="terminal request body too large")
    return await verify_terminal_request(request, body)


async def verify_terminal_request(request: Request, body: bytes) -> AuthenticatedTerminal:
    """Everything `authenticate_terminal` checks except the body size, for a route that bounds
    its body itself (e.g. camera frame uploads): signature, skew, key, nonce, terminal and unit
    status. A refusal is audited and raised as TerminalRefused."""
    runtime: GatewayRuntime = request.app.state.gateway
    claimed = _claimed_terminal(request)
    try:
        signed = parse_signed_headers(request.headers)
        now = runtime.clock().timestamp()
        check_skew(signed.timestamp, now, runtime.settings.gateway_max_skew_seconds)
        entry = runtime.directory.cached(signed.terminal_id)
        if entry is None:
            entry = await run_in_threadpool(runtime.directory.load, signed.terminal_id)
        return _check(entry, signed, request, body, runtime, now)
    except SignatureError as exc:
        refusal = TerminalRefused(exc.code, str(exc))
    except TerminalRefused as exc:
        refusal = exc
    await run_in_threadpool(record_refusal, runtime, request, claimed, refusal)
    raise refusal


TerminalCaller = Annotated[AuthenticatedTerminal, Depends(authenticate_terminal)]


def record_refusal(
    runtime: GatewayRuntime, request: Request, claimed: int | None, refusal: TerminalRefused
) -> None:
    """Write one refused terminal request to the audit trail, committed on its own."""
    subject = f"terminal:{claimed}" if claimed is not None else "terminal:unknown"
    details: dict[str, object] = {
        "code": refusal.code,
        "method": request.method,
        "path": request.url.path,
        "client": request.client.host if request.client else None,
    }
    log.info("terminal_refused", terminal_id=claimed, code=refusal.code, path=request.url.path)
    runtime.database.transaction(
        lambda s: audit.record(
            s,
            actor=subject,
            action="terminal.request_refused",
            subject=subject,
            now=runtime.clock(),
            details=details,
        )
    )


def refuse_other_unit(
    request: Request, caller: AuthenticatedTerminal, institution_code: str | None
) -> None:
    """Refuse (403 `unit_mismatch`, audited) a terminal that names a unit other than its own.

    Call it from a sync endpoint (it writes the audit entry before raising).
    """
    if institution_code is None or institution_code == caller.institution_code:
        return
    refusal = TerminalRefused("unit_mismatch", "the terminal belongs to another unit", 403)
    record_refusal(request.app.state.gateway, request, caller.terminal_id, refusal)
    raise refusal
